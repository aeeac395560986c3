import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createConnection, Socket as NetSocket } from 'node:net';
import type { WebSocket, WebSocketServer } from 'ws';
import { FailedPreconditionError, InvalidArgumentError } from '../../errdefs/index.js';
import { type Pods, podContainer } from '../../pods/index.js';
import { netnsConnect } from '../../sys/index.js';

// CRI's streaming server: Exec, Attach and PortForward answer with a URL here, and the client
// (kubelet's proxy, kubectl, crictl) opens a WebSocket on it speaking Kubernetes' channel
// protocols: each message's first byte is its channel. remotecommand (exec, attach): 0 stdin,
// 1 stdout, 2 stderr, 3 the error channel (a Status at the end), 4 terminal resize; v5 adds 255, a
// client's "close channel N". Port-forward: channels 2i and 2i+1 carry port i's data and errors,
// each opening with the port number (2 bytes, little-endian). A URL is good once, for a minute.

const remotecommandProtocols = [
  'v5.channel.k8s.io',
  'v4.channel.k8s.io',
  'channel.k8s.io',
  'v5.base64.channel.k8s.io',
  'v4.base64.channel.k8s.io',
  'base64.channel.k8s.io',
];
const portforwardProtocols = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io'];
const tokenLife = 60_000;

export type StreamRequest =
  | { kind: 'exec'; containerId: string; cmd: string[]; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }
  | { kind: 'attach'; containerId: string; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }
  | { kind: 'portforward'; sandboxId: string; ports: number[] };

/** One WebSocket with Kubernetes' channel framing, binary or base64. */
class Channels {
  readonly ws: WebSocket;
  readonly base64: boolean;
  readonly version: number;

  /** Messages that came before a reader was set (the stream's process was still starting). */
  #early: [number, Buffer][] | undefined = [];
  #reader: ((channel: number, data: Buffer) => void) | undefined;

  constructor(ws: WebSocket) {
    this.ws = ws;
    this.base64 = ws.protocol.includes('base64');
    this.version = Number(/^v(\d)\./.exec(ws.protocol)?.[1] ?? 1);
    ws.on('message', (raw: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      const buf = Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw);
      if (buf.length === 0) return;
      let msg: [number, Buffer];
      if (this.base64 && !isBinary) {
        const text = buf.toString('latin1');
        msg = [text.charCodeAt(0) - 48, Buffer.from(text.slice(1), 'base64')];
      } else msg = [buf[0] as number, buf.subarray(1)];
      if (this.#reader) this.#reader(...msg);
      else this.#early?.push(msg);
    });
  }

  send(channel: number, data: Uint8Array | string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
    if (this.base64) this.ws.send(String.fromCharCode(48 + channel) + bytes.toString('base64'));
    else this.ws.send(Buffer.concat([Buffer.of(channel), bytes]));
  }

  /** The first terminal size the client sent (channel 4), waiting up to `ms` for it; kubectl sends one at once. */
  async firstSize(ms: number): Promise<{ rows: number; cols: number } | undefined> {
    const end = Date.now() + ms;
    for (;;) {
      const m = this.#early?.find(([ch]) => ch === 4);
      if (m) return terminalSize(m[1]);
      if (Date.now() >= end || this.ws.readyState !== this.ws.OPEN) return undefined;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Hands every message to `fn`, those that came already first. */
  onMessage(fn: (channel: number, data: Buffer) => void): void {
    this.#reader = fn;
    for (const m of this.#early?.splice(0) ?? []) fn(...m);
    this.#early = undefined;
  }

  close(): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
  }
}

/** A resize message (channel 4): `{"Width":W,"Height":H}`. */
function terminalSize(data: Buffer): { rows: number; cols: number } {
  const s = JSON.parse(data.toString()) as { Width?: number; Height?: number };
  return { rows: s.Height ?? 0, cols: s.Width ?? 0 };
}

/** The Status remotecommand's v4 and v5 end with on the error channel. */
function exitStatus(code: number): string {
  if (code === 0) return JSON.stringify({ metadata: {}, status: 'Success' });
  return JSON.stringify({
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: exit status ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  });
}

export class StreamingServer {
  readonly #pods: Pods;
  readonly #tokens = new Map<string, { req: StreamRequest; expires: number }>();
  readonly #server: Server;
  #wss: WebSocketServer | undefined;
  #base = '';

  constructor(pods: Pods) {
    this.#pods = pods;
    this.#server = createServer((_req, res) => {
      res.writeHead(400, { 'Content-Type': 'text/plain' });
      res.end('berth streams over WebSocket (v5.channel.k8s.io, v4.channel.k8s.io); SPDY is not served\n');
    });
    this.#server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.#upgrade(req, socket, head));
  }

  /** Listens on `host` (loopback by default: kubelet proxies the client's stream) and a free port. */
  async listen(host = '127.0.0.1', port = 0): Promise<string> {
    // loaded here: the CLI's other commands do not pay for it
    const { WebSocketServer } = await import('ws');
    this.#wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => this.#pick(offered) });
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve());
    });
    const a = this.#server.address() as AddressInfo;
    this.#base = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    return this.#base;
  }

  /** A one-time URL for a stream. */
  url(req: StreamRequest): string {
    const now = Date.now();
    for (const [t, v] of this.#tokens) if (v.expires < now) this.#tokens.delete(t);
    const token = randomBytes(12).toString('base64url');
    this.#tokens.set(token, { req, expires: now + tokenLife });
    return `${this.#base}/${req.kind}/${token}`;
  }

  close(): Promise<void> {
    for (const c of this.#wss?.clients ?? []) c.terminate();
    this.#wss?.close();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #pick(offered: Set<string>): string | false {
    for (const p of [...remotecommandProtocols, ...portforwardProtocols]) if (offered.has(p)) return p;
    return false;
  }

  #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/(exec|attach|portforward)\/([\w-]+)$/.exec(url.pathname);
    const entry = m ? this.#tokens.get(m[2] as string) : undefined;
    const wss = this.#wss;
    if (!wss || !m || !entry || entry.req.kind !== m[1] || entry.expires < Date.now()) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.#tokens.delete(m[2] as string);
    let sr = entry.req;
    if (sr.kind === 'portforward') {
      const asked = url.searchParams
        .getAll('port')
        .flatMap((p) => p.split(','))
        .map(Number);
      if (asked.length) sr = { ...sr, ports: asked };
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const ch = new Channels(ws);
      const run = sr.kind === 'exec' ? this.#exec(ch, sr) : sr.kind === 'attach' ? this.#attach(ch, sr) : this.#portForward(ch, sr);
      run.catch((err: Error) => {
        ch.send(
          sr.kind === 'portforward' ? 1 : 3,
          ch.version >= 4 && sr.kind !== 'portforward'
            ? JSON.stringify({ metadata: {}, status: 'Failure', message: err.message })
            : err.message,
        );
        ch.close();
      });
    });
  }

  async #exec(ch: Channels, r: Extract<StreamRequest, { kind: 'exec' }>): Promise<void> {
    const c = await podContainer(this.#pods, r.containerId);
    const size = r.tty ? await ch.firstSize(200) : undefined;
    const proc = await this.#pods.containers.spawnExec(c.id, { cmd: r.cmd, tty: r.tty, stdin: r.stdin, ...(size ? { size } : {}) });
    const child = proc.child;
    if (r.stdout || r.tty) child.stdout?.on('data', (d: Buffer) => ch.send(1, d));
    if (r.stderr && !r.tty) child.stderr?.on('data', (d: Buffer) => ch.send(2, d));
    ch.onMessage((channel, data) => {
      if (channel === 0 && r.stdin) child.stdin?.write(data);
      else if (channel === 4) void proc.resize(terminalSize(data));
      else if (channel === 255 && data[0] === 0 && !r.tty) child.stdin?.end();
    });
    ch.ws.on('close', () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    if (!r.stdin && !r.tty) child.stdin?.end();
    const code = await proc.exited;
    ch.send(3, ch.version >= 4 ? exitStatus(code) : code === 0 ? '' : `command terminated with non-zero exit code: ${code}`);
    ch.close();
  }

  async #attach(ch: Channels, r: Extract<StreamRequest, { kind: 'attach' }>): Promise<void> {
    const c = await podContainer(this.#pods, r.containerId);
    if (c.state !== 'CONTAINER_RUNNING') throw new FailedPreconditionError(`container ${c.id} is not running`);
    const a = this.#pods.containers.attach(c.id);
    ch.onMessage((channel, data) => {
      if (channel === 0 && r.stdin) a.write(data);
      else if (channel === 4) {
        const size = terminalSize(data);
        if (size.rows > 0 && size.cols > 0) this.#pods.containers.resize(c.id, size);
      } else if (channel === 255 && data[0] === 0) a.closeStdin();
    });
    ch.ws.on('close', () => a.close());
    for await (const p of a.output) {
      if (p.stream === 1 ? r.stdout || r.tty : r.stderr) ch.send(r.tty ? 1 : p.stream, p.data);
    }
    if (ch.version >= 4) ch.send(3, exitStatus(0));
    ch.close();
  }

  async #portForward(ch: Channels, r: Extract<StreamRequest, { kind: 'portforward' }>): Promise<void> {
    const sb = await this.#pods.sandbox(r.sandboxId);
    if (sb.state !== 'SANDBOX_READY' || sb.container.state.pid === undefined)
      throw new FailedPreconditionError(`pod sandbox ${sb.id} is not ready`);
    if (r.ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535))
      throw new InvalidArgumentError(`invalid ports ${r.ports.join(',')}`);
    // the namespace berth bound for the pod (a process's /proc/PID/ns/net may not be ours to open); none: the host's
    const netns = sb.pod.netns;
    const conns: (NetSocket | undefined)[] = [];
    r.ports.forEach((port, i) => {
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16LE(port);
      ch.send(2 * i, prefix);
      ch.send(2 * i + 1, prefix);
      try {
        const sock = netns
          ? new NetSocket({ fd: netnsConnect(netns, port), readable: true, writable: true })
          : createConnection(port, '127.0.0.1');
        sock.on('data', (d: Buffer) => ch.send(2 * i, d));
        sock.on('error', (err) => ch.send(2 * i + 1, `error forwarding port ${port}: ${err.message}`));
        sock.on('close', () => {
          conns[i] = undefined;
          if (conns.every((s) => s === undefined)) ch.close();
        });
        conns[i] = sock;
      } catch (err) {
        ch.send(2 * i + 1, `error forwarding port ${port} to pod ${sb.id}: ${(err as Error).message}`);
      }
    });
    ch.onMessage((channel, data) => {
      const s = conns[channel / 2];
      if (channel % 2 === 0 && s) s.write(data);
    });
    ch.ws.on('close', () => {
      for (const s of conns) s?.destroy();
    });
    if (conns.every((s) => s === undefined)) ch.close();
  }
}
