import { spawn } from 'node:child_process';
import { closeSync, createReadStream, openSync, readFileSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FailedPreconditionError, NotFoundError } from '../errdefs/index.js';
import { seqpacketConnect, shutdown } from '../sys/index.js';
import type { Runc } from './runc.js';

/** Where one container's monitor keeps its files. */
export interface MonitorPaths {
  /** The bundle (config.json); conmon adds `attach`, `ctl` and `winsz` here. */
  bundle: string;
  /** The CRI-format log. */
  log: string;
  /** conmon writes `<exitDir>/<id>` with the exit code when the container exits. */
  exitDir: string;
  /** Kept on disk: `exit` (the code) and `oom` (present after an out-of-memory kill). */
  persistDir: string;
  socketDir: string;
}

export interface LaunchOpts {
  id: string;
  name: string;
  runc: Runc;
  paths: MonitorPaths;
  tty?: boolean;
  /** Keep the container's stdin open for attach clients. */
  stdin?: boolean;
  /** A command conmon runs after the container exits (the cleanup of a detached container). */
  exitCommand?: string[];
  /** The terminal size to set before the process starts. */
  size?: { rows: number; cols: number };
}

/** A monitor launched for a created (not yet started) container. */
export interface Monitor {
  /** The container's init process. */
  pid: number;
  monitorPid: number;
  /** Resolves when the container has exited (conmon closes the sync pipe then). */
  exited: Promise<void>;
  /** Stops waiting for the exit (lets the process end while the container runs on). */
  release(): void;
}

/**
 * Launches conmon (the monitor podman uses) for a container: it runs `runc create`, keeps the
 * container's stdio (a pty with `tty`), writes the CRI log and, at exit, the exit code; it outlives
 * the caller. The caller then starts the container with `runc start`.
 * @throws FailedPreconditionError (NotFoundError for a missing executable) with runc's message
 */
export async function launchMonitor(opts: LaunchOpts): Promise<Monitor> {
  const { id, paths } = opts;
  const args = [
    '--api-version',
    '1',
    '-c',
    id,
    '-u',
    id,
    '-n',
    opts.name,
    '-r',
    opts.runc.bin,
    '-b',
    paths.bundle,
    '-p',
    join(paths.bundle, 'pidfile'),
    '-P',
    join(paths.bundle, 'conmon.pid'),
    '-l',
    `k8s-file:${paths.log}`,
    '--exit-dir',
    paths.exitDir,
    '-0',
    paths.persistDir,
    '--socket-dir-path',
    paths.socketDir,
    '--syslog=false',
    '--log-level',
    'error',
    ...opts.runc.globalArgs.flatMap((a, i, all) => (i % 2 === 0 ? ['--runtime-arg', `${a}=${all[i + 1]}`] : [])),
  ];
  if (opts.tty) args.push('-t');
  if (opts.stdin) args.push('-i');
  if (opts.exitCommand) {
    const [cmd, ...rest] = opts.exitCommand;
    args.push('--exit-command', cmd as string, ...rest.flatMap((a) => ['--exit-command-arg', a]));
  }
  const child = spawn('conmon', args, {
    cwd: paths.bundle,
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    env: { ...process.env, _OCI_SYNCPIPE: '3' },
  });
  const sync = child.stdio[3] as Readable;
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.unref();
  const exited = new Promise<void>((resolve) => {
    sync.on('close', resolve);
    sync.on('error', () => resolve());
  });
  const first = await firstLine(sync).catch((err: Error) => {
    throw new FailedPreconditionError(`conmon for "${id}": ${stderr.trim() || err.message}`, { cause: err });
  });
  let msg: { data?: number; message?: string };
  try {
    msg = JSON.parse(first) as typeof msg;
  } catch {
    throw new FailedPreconditionError(`conmon for "${id}": unexpected reply ${JSON.stringify(first.slice(0, 200))}`);
  }
  if (typeof msg.data !== 'number' || msg.data <= 0) {
    sync.destroy();
    const clean = (msg.message ?? stderr)
      .trim()
      .replace(/\\"/g, '"')
      .replace(/^.*?runc create failed: /s, '')
      .replace(/^unable to start container process: /, '');
    if (/executable file not found|no such file or directory/.test(clean)) throw new NotFoundError(`create container: ${clean}`);
    throw new FailedPreconditionError(`create container: ${clean || 'runc create failed'}`);
  }
  const monitorPid = Number((await readFile(join(paths.bundle, 'conmon.pid'), 'utf8')).trim());
  if (opts.size && opts.tty) resize(paths.bundle, opts.size);
  return {
    pid: msg.data,
    monitorPid,
    exited,
    release: () => {
      sync.destroy();
      child.stderr?.destroy();
    },
  };
}

function firstLine(s: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        s.off('data', onData);
        s.off('end', onEnd);
        s.pause();
        resolve(buf.slice(0, nl));
      }
    };
    const onEnd = () => reject(new Error(buf.length ? `truncated reply ${JSON.stringify(buf)}` : 'exited without a reply'));
    s.on('data', onData);
    s.on('end', onEnd);
    s.on('error', reject);
  });
}

/** Sets the container's terminal size through conmon's control FIFO. */
export function resize(bundle: string, size: { rows: number; cols: number }): void {
  control(bundle, `1 ${size.rows} ${size.cols}\n`);
}

/** Asks the monitor of a running container to reopen its log file (after a rotation moved it away). */
export function reopenLog(bundle: string): void {
  control(bundle, '2 0 0\n');
}

/** One message to conmon's control fifo: `<type> <height> <width>`. */
function control(bundle: string, message: string): void {
  const fd = openSync(join(bundle, 'ctl'), 'w');
  try {
    writeSync(fd, message);
  } finally {
    closeSync(fd);
  }
}

/** One packet from the container: 1 = stdout, 2 = stderr. */
export interface AttachPacket {
  stream: 1 | 2;
  data: Buffer;
}

/** A connection to conmon's attach socket. */
export interface Attachment {
  output: AsyncIterable<AttachPacket>;
  /** Sends bytes to the container's stdin (conmon was launched with `stdin`). */
  write(data: Uint8Array): void;
  /** Ends the container's stdin. */
  closeStdin(): void;
  close(): void;
}

/**
 * Connects to the attach socket of a running (or created) container's monitor. conmon sends one
 * packet per read: a type byte (2 stdout, 3 stderr) and up to 8192 bytes; it closes at exit.
 */
export function attach(bundle: string): Attachment {
  // The directory's fd keeps the socket path short whatever the bundle's length.
  const dir = openSync(bundle, 'r');
  let fd: number;
  try {
    fd = seqpacketConnect(`/proc/self/fd/${dir}/attach`);
  } finally {
    closeSync(dir);
  }
  // The stream owns the fd and closes it; a read blocked on the thread pool ends at shutdown.
  const stream = createReadStream('', { fd, highWaterMark: 8193 });
  stream.on('error', () => {});
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      shutdown(fd, 'both');
    } catch {
      // closed already
    }
    stream.destroy();
  };
  async function* output(): AsyncGenerator<AttachPacket> {
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (chunk.length === 0) continue;
        const type = chunk[0];
        if (type === 2 || type === 3) yield { stream: type === 2 ? 1 : 2, data: chunk.subarray(1) };
      }
    } catch (err) {
      if (!closed) throw err;
    }
  }
  return {
    output: output(),
    write: (data) => {
      let off = 0;
      while (off < data.byteLength) off += writeSync(fd, data, off);
    },
    closeStdin: () => {
      if (!closed) shutdown(fd, 'write');
    },
    close,
  };
}

/** The exit code and OOM flag conmon left in its persist directory, or undefined before the exit. */
export function exitStatus(persistDir: string): { exitCode: number; oomKilled: boolean } | undefined {
  let text: string;
  try {
    text = readFileSync(join(persistDir, 'exit'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (text.trim() === '') return undefined; // being written
  const code = Number.parseInt(text.trim(), 10);
  let oom = false;
  try {
    readFileSync(join(persistDir, 'oom'));
    oom = true;
  } catch {
    // no OOM kill
  }
  return { exitCode: Number.isFinite(code) ? code : -1, oomKilled: oom };
}
