// Test support: `berth daemon` run as its own process on a private root and socket, and the docker
// clients that drive it.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pushBusyboxImage } from './busybox.js';
import { berthMain, cleanupRoots, type Result, runProgram } from './cli.js';
import { type RegistryOpts, startRegistry, type TestRegistry } from './registry.js';

export interface BerthDaemon {
  sock: string;
  /** `DOCKER_HOST` for this daemon. */
  host: string;
  pid: number;
  /** What it wrote to stderr so far. */
  log(): string;
  /** Sends `signal` and waits for the exit; resolves to the exit code (null after a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `berth --root ROOT daemon -H unix://DIR/berth.sock` and waits until `/_ping` answers. */
export async function startBerthDaemon(root: string, dir: string, extra: string[] = []): Promise<BerthDaemon> {
  await mkdir(dir, { recursive: true });
  const sock = join(dir, 'berth.sock');
  const child: ChildProcess = spawn(
    process.execPath,
    [berthMain, '--root', root, 'daemon', '-H', `unix://${sock}`, '--pidfile', join(dir, 'berth.pid'), ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BERTH_NAMESPACE: '' } },
  );
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => {
    done = true;
  });
  for (let i = 0; ; i++) {
    if (done) throw new Error(`berth daemon exited: ${log}`);
    if (existsSync(sock) && (await ping(sock))) break;
    if (i > 300) throw new Error(`berth daemon did not answer in 30 s: ${log}`);
    await sleep(100);
  }
  return {
    sock,
    host: `unix://${sock}`,
    pid: child.pid as number,
    log: () => log,
    stop: async (signal = 'SIGTERM') => {
      if (!done) child.kill(signal);
      return exited;
    },
  };
}

function ping(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: sock, path: '/_ping', method: 'GET' }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** The docker CLIs the daemon is tested with: 28 (API 1.50) and Debian's 20.10 (API 1.41). */
export const dockerClis = { 'docker 28': '/usr/local/bin/docker', 'docker 20.10': '/usr/bin/docker' } as const;

/** Runs a docker CLI against `host` with a private config directory; stdin from `input`. */
export function dockerCli(
  bin: string,
  host: string,
  args: string[],
  opts: { input?: string; config?: string; timeout?: number } = {},
): Promise<Result> {
  return runProgram(bin, args, {
    env: { DOCKER_HOST: host, DOCKER_CONFIG: opts.config ?? '/nonexistent-berth-docker-config', DOCKER_BUILDKIT: '0' },
    input: opts.input ?? '',
    killAfter: opts.timeout ?? 60_000,
  });
}

/** What a daemon test works with; filled in by the `before` hook {@link daemonFixture} registers. */
export interface DaemonFixture {
  work: string;
  root: string;
  registry: TestRegistry;
  /** `REGISTRY/busybox:latest`, pushed by skopeo. */
  image: string;
  daemon: BerthDaemon;
}

/**
 * Registers the hooks of a daemon test file: a work directory, the reference registry with the
 * busybox image pushed, and `berth daemon` on a fresh root (its socket in `<work>/run`), then
 * `ready`; all gone after. (The file's own `before` hooks may run before this one has finished.)
 */
export function daemonFixture(
  name: string,
  opts: { registry?: RegistryOpts; ready?: (f: DaemonFixture) => Promise<void>; daemonArgs?: (f: DaemonFixture) => Promise<string[]> } = {},
): DaemonFixture {
  const f = {} as DaemonFixture;
  before(async () => {
    f.work = await mkdtemp(join(tmpdir(), `berth-${name}-`));
    f.root = join(f.work, 'root');
    f.registry = await startRegistry(opts.registry);
    f.image = await pushBusyboxImage(f.work, f.registry.host, 'busybox');
    f.daemon = await startBerthDaemon(f.root, join(f.work, 'run'), (await opts.daemonArgs?.(f)) ?? []);
    await opts.ready?.(f);
  });
  after(async () => {
    await f.daemon?.stop('SIGKILL');
    if (f.root) await cleanupRoots([f.root]);
    await f.registry?.stop();
    if (f.work) await rm(f.work, { recursive: true, force: true });
  });
  return f;
}
