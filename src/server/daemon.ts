import { chmodSync, chownSync, closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { createServer as createTLSServer, type Server as TLSServer } from 'node:tls';
import { FailedPreconditionError, InvalidArgumentError } from '../errdefs/index.js';
import { Pods } from '../pods/index.js';
import { Session, type SessionOpts } from '../remotes/index.js';
import { Berth } from '../services/index.js';
import type { SnapshotterName } from '../snapshots/index.js';
import { flock } from '../sys/index.js';
import { StreamingServer, startCriServer } from './cri/index.js';
import { Engine, engineServer } from './engine/index.js';

export interface DaemonOpts {
  root: string;
  snapshotter?: SnapshotterName;
  /** The namespace the Engine API works in. */
  namespace?: string;
  /** docker's `-H`: `unix:///path` or `tcp://host:port`; default `unix:///run/berth/berth.sock`. */
  hosts?: string[];
  /** TLS for tcp:// hosts (docker's --tlscacert, --tlscert, --tlskey; `verify` asks clients for a certificate). */
  tls?: { cert: string; key: string; ca?: string; verify?: boolean };
  /** Default: `berth.pid` in the root's runtime directory. */
  pidFile?: string;
  session?: SessionOpts;
  version: string;
  /** Serve the Engine API on `hosts` (default true). */
  engineApi?: boolean;
  /** Serve CRI (kubelet, crictl) on this socket, `unix:///path`, in the `k8s.io` namespace. */
  cri?: string;
  /** Where pods' CNI network config is read (default /etc/cni/net.d). */
  cniConfDir?: string;
}

export const defaultCriSocket = 'unix:///run/berth/cri.sock';

export const defaultHost = 'unix:///run/berth/berth.sock';

/** A running daemon: its engine, the addresses it listens on, and its graceful stop. */
export interface Daemon {
  engine: Engine;
  /** Socket paths, or `host:port` for TCP. */
  addresses: string[];
  /** The CRI socket's path, when it serves CRI. */
  criSocket?: string;
  pidFile: string;
  close(): Promise<void>;
}

const loopback = (host: string) => host === 'localhost' || host === '::1' || /^127\./.test(host) || host === '[::1]';

/** The `docker` group's ID, when the group exists. */
function dockerGroup(): number | undefined {
  try {
    const line = readFileSync('/etc/group', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('docker:'));
    const gid = line ? Number(line.split(':')[2]) : Number.NaN;
    return Number.isInteger(gid) ? gid : undefined;
  } catch {
    return undefined;
  }
}

/** One `-H` value, checked. @throws InvalidArgumentError */
export function parseHost(host: string, tls: boolean): { unix: string } | { host: string; port: number } {
  if (host.startsWith('unix://')) {
    const path = host.slice('unix://'.length);
    if (!path.startsWith('/')) throw new InvalidArgumentError(`invalid host "${host}": want unix:///absolute/path`);
    return { unix: path };
  }
  if (host.startsWith('tcp://')) {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(host);
    if (!m) throw new InvalidArgumentError(`invalid host "${host}": want tcp://HOST:PORT`);
    const h = (m[1] as string).replace(/^\[|\]$/g, '');
    if (!tls && !loopback(h)) {
      throw new InvalidArgumentError(
        `refusing plain tcp on "${host}": anyone who reaches it is root on this machine; use --tlsverify with --tlscacert, --tlscert and --tlskey, or a unix socket`,
      );
    }
    return { host: h, port: m[2] ? Number(m[2]) : tls ? 2376 : 2375 };
  }
  throw new InvalidArgumentError(`invalid host "${host}": want unix:///path or tcp://host:port`);
}

function listen(server: Server | TLSServer, at: { unix: string } | { host: string; port: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      if ('unix' in at) resolve(at.unix);
      else {
        const a = server.address() as AddressInfo;
        resolve(`${a.address}:${a.port}`);
      }
    };
    if ('unix' in at) server.listen(at.unix, done);
    else server.listen(at.port, at.host, done);
  });
}

/**
 * Starts `berth daemon`: takes the root's daemon lock (one daemon per root), writes the pid file,
 * adopts the containers on disk and serves the Engine API on every host. Containers belong to their
 * monitors: closing the daemon leaves them running, and the next daemon finds them.
 * @throws FailedPreconditionError when another daemon holds the root
 */
export async function startDaemon(opts: DaemonOpts): Promise<Daemon> {
  const engineApi = opts.engineApi ?? true;
  const hosts = engineApi
    ? (opts.hosts?.length ? opts.hosts : [defaultHost]).map((h) => ({ raw: h, at: parseHost(h, opts.tls !== undefined) }))
    : [];
  const criAt = opts.cri === undefined ? undefined : parseHost(opts.cri, false);
  if (criAt && !('unix' in criAt)) throw new InvalidArgumentError(`--cri "${opts.cri}": want unix:///path`);
  if (!engineApi && !criAt) throw new InvalidArgumentError('nothing to serve: the Engine API is off and no --cri socket is given');
  const berth = await Berth.open({ root: opts.root, ...(opts.snapshotter ? { snapshotter: opts.snapshotter } : {}) });
  const lockFd = openSync(join(berth.root, 'daemon.lock'), 'a');
  try {
    flock(lockFd, 'ex', true);
  } catch {
    closeSync(lockFd);
    berth.close();
    throw new FailedPreconditionError(`another berth daemon is running on root "${berth.root}"`);
  }
  const pidFile = opts.pidFile ?? join(berth.runDir, 'berth.pid');
  const engine = new Engine(berth, {
    version: opts.version,
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
    ...(opts.session ? { session: opts.session } : {}),
  });
  const http = engineServer(engine);
  const servers: (Server | TLSServer)[] = [];
  const sockets: string[] = [];
  let cri: { pods: Pods; server?: { close(): Promise<void> }; streaming?: StreamingServer } | undefined;
  const release = () => {
    engine.close();
    cri?.pods.close();
    for (const s of sockets) rmSync(s, { force: true });
    rmSync(pidFile, { force: true });
    berth.close();
    closeSync(lockFd);
  };
  try {
    await mkdir(dirname(pidFile), { recursive: true });
    writeFileSync(pidFile, `${process.pid}\n`);
    await engine.start();
    // CRI first: when the Engine API answers, both do
    let criSocket: string | undefined;
    if (criAt && 'unix' in criAt) {
      const pods = new Pods(berth, opts.cniConfDir ? { cniConfDir: opts.cniConfDir } : {});
      cri = { pods };
      const repaired = await pods.recover();
      if (repaired.length)
        process.stderr.write(
          `berth daemon: took apart ${repaired.length} pod sandbox(es) an interrupted RunPodSandbox left: ${repaired.join(', ')}\n`,
        );
      await pods.watchExits();
      const streaming = new StreamingServer(pods);
      cri.streaming = streaming;
      await streaming.listen();
      cri.server = await startCriServer(
        {
          pods,
          streaming,
          version: opts.version,
          session: (c) =>
            new Session({
              ...opts.session,
              credentialsFile: null,
              auth: c ? { [c.domain]: { username: c.username, secret: c.secret } } : {},
            }),
        },
        criAt.unix,
      );
      criSocket = criAt.unix;
    }
    const addresses: string[] = [];
    const gid = dockerGroup();
    for (const { at } of hosts) {
      if ('unix' in at) {
        await mkdir(dirname(at.unix), { recursive: true, mode: 0o755 });
        rmSync(at.unix, { force: true }); // a socket left by a daemon that died; the lock says none runs
        const s = engineServer(engine);
        addresses.push(await listen(s, at));
        sockets.push(at.unix);
        chmodSync(at.unix, 0o660);
        if (gid !== undefined) chownSync(at.unix, 0, gid);
        servers.push(s);
      } else if (opts.tls) {
        const t = createTLSServer(
          {
            cert: readFileSync(opts.tls.cert),
            key: readFileSync(opts.tls.key),
            ...(opts.tls.ca ? { ca: readFileSync(opts.tls.ca) } : {}),
            requestCert: opts.tls.verify ?? false,
            rejectUnauthorized: opts.tls.verify ?? false,
          },
          (socket) => http.emit('connection', socket as unknown as Socket),
        );
        addresses.push(await listen(t, at));
        servers.push(t);
      } else {
        const s = engineServer(engine);
        addresses.push(await listen(s, at));
        servers.push(s);
      }
    }
    engine.events.emitEvent('daemon', 'start', berth.root);
    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        await Promise.all(
          servers.map(
            (s) =>
              new Promise<void>((resolve) => {
                s.close(() => resolve());
                (s as Server).closeAllConnections?.();
              }),
          ),
        );
        http.closeAllConnections();
        await cri?.server?.close();
        await cri?.streaming?.close();
        release();
      })();
      return closing;
    };
    return { engine, addresses, pidFile, close, ...(criSocket ? { criSocket } : {}) };
  } catch (err) {
    for (const s of servers) s.close();
    await cri?.server?.close();
    await cri?.streaming?.close();
    release();
    throw err;
  }
}
