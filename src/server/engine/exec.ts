import { randomBytes } from 'node:crypto';
import type { ExecProcess } from '../../containers/index.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../errdefs/index.js';
import type { Engine } from './engine.js';
import { intValue, readJSON, sendEmpty, sendJSON } from './http.js';
import type { Route, UpgradeRequest } from './router.js';
import { frame, hijack, multiplexedStream, rawStream, type StreamConn, streamResponse, upgradeBody } from './streams.js';

/** One exec as docker keeps it: made by create, run once by start, inspected for its exit code. */
interface ExecRecord {
  id: string;
  containerId: string;
  cmd: string[];
  env: string[];
  user: string;
  workingDir: string;
  tty: boolean;
  privileged: boolean;
  attachStdin: boolean;
  attachStdout: boolean;
  attachStderr: boolean;
  running: boolean;
  started: boolean;
  exitCode: number | null;
  pid: number;
  /** The terminal's size from the start. */
  size?: { rows: number; cols: number };
  proc?: ExecProcess;
}

/** Each engine's execs; a finished one is forgotten after {@link execMemory}. */
const execsOf = new WeakMap<Engine, Map<string, ExecRecord>>();
const execMemory = 10 * 60_000;

function execTable(e: Engine): Map<string, ExecRecord> {
  let m = execsOf.get(e);
  if (!m) {
    m = new Map();
    execsOf.set(e, m);
  }
  return m;
}

function execOf(e: Engine, id: string): ExecRecord {
  const x = execTable(e).get(id);
  if (!x) throw new NotFoundError(`No such exec instance: ${id}`);
  return x;
}

/**
 * Runs the exec's process, its output to `conn` (framed without a TTY) and the client's input to
 * its stdin. The exit code is recorded before the stream closes: the docker CLI reads it right after.
 */
async function runExec(e: Engine, x: ExecRecord, conn: StreamConn | undefined): Promise<void> {
  const proc = await e.containers.spawnExec(x.containerId, {
    cmd: x.cmd,
    env: x.env,
    tty: x.tty,
    privileged: x.privileged,
    stdin: x.attachStdin,
    detach: conn === undefined,
    ...(x.size ? { size: x.size } : {}),
    ...(x.workingDir ? { workingDir: x.workingDir } : {}),
    ...(x.user ? { user: x.user } : {}),
  });
  const child = proc.child;
  x.proc = proc;
  x.running = true;
  x.pid = child.pid ?? 0;
  if (conn) {
    const out = (stream: 1 | 2) => (d: Buffer) => {
      if (stream === 1 ? !x.attachStdout : !x.attachStderr) return;
      conn.write(x.tty ? d : frame(stream, d));
    };
    child.stdout?.on('data', out(1));
    child.stderr?.on('data', out(2));
    if (child.stdin) {
      if (x.attachStdin && conn.input) {
        void (async () => {
          try {
            for await (const chunk of conn.input as AsyncIterable<Buffer>) child.stdin?.write(chunk);
          } catch {
            // the client went
          }
          // script passes an end of input on as a NUL byte; with a TTY, the input just stops.
          if (!x.tty) child.stdin?.end();
        })();
      } else if (!x.tty) child.stdin.end();
    }
    void conn.gone.then(() => {
      if (x.running) child.kill('SIGKILL');
    });
  }
  x.exitCode = await proc.exited;
  x.running = false;
  setTimeout(() => execTable(e).delete(x.id), execMemory).unref();
  if (conn) {
    await conn.drained();
    conn.end();
  }
}

/** The exec start body: `ConsoleSize` is `[height, width]` (API 1.42), what the docker CLI sends for a TTY. */
interface ExecStart {
  Detach?: boolean;
  Tty?: boolean;
  ConsoleSize?: [number, number] | null;
}

async function startExec(e: Engine, id: string, body: ExecStart, conn: () => StreamConn): Promise<void> {
  const x = execOf(e, id);
  if (x.started) throw new FailedPreconditionError(`exec ${id} has already been started`);
  const c = await e.containers.get(x.containerId);
  if (c.state.status !== 'running') throw new FailedPreconditionError(`container ${c.id} is not running`);
  x.started = true;
  if (body.Tty !== undefined) x.tty = body.Tty || x.tty;
  const [rows, cols] = Array.isArray(body.ConsoleSize) ? body.ConsoleSize : [];
  if (Number.isInteger(rows) && Number.isInteger(cols)) x.size = { rows: rows as number, cols: cols as number };
  await runExec(e, x, body.Detach ? undefined : conn());
}

async function execStartUpgrade(e: Engine, r: UpgradeRequest): Promise<void> {
  const { body, rest } = await upgradeBody(r.req, r.socket, r.head);
  const b = body as ExecStart;
  const x = execOf(e, r.params.id as string);
  await startExec(e, x.id, b, () => hijack(r.socket, rest, (b.Tty ?? x.tty) ? rawStream : multiplexedStream));
  if (b.Detach) {
    r.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  }
}

export const execRoutes: Route[] = [
  {
    method: 'POST',
    pattern: '/containers/{id}/exec',
    handle: async (e, { req, res, params }) => {
      const body = await readJSON<{
        Cmd: string[];
        Env: string[] | null;
        User: string;
        WorkingDir: string;
        Tty: boolean;
        Privileged: boolean;
        AttachStdin: boolean;
        AttachStdout: boolean;
        AttachStderr: boolean;
      }>(req);
      const c = await e.containers.get(params.id as string);
      if (c.state.status !== 'running') throw new FailedPreconditionError(`container ${c.id} is not running`);
      if (c.state.paused) throw new FailedPreconditionError(`container ${c.id} is paused, unpause the container before exec`);
      if (!Array.isArray(body.Cmd) || body.Cmd.length === 0 || body.Cmd.some((a) => typeof a !== 'string')) {
        throw new InvalidArgumentError('exec: no command given');
      }
      const id = randomBytes(32).toString('hex');
      execTable(e).set(id, {
        id,
        containerId: c.id,
        cmd: body.Cmd,
        env: Array.isArray(body.Env) ? body.Env : [],
        user: body.User ?? '',
        workingDir: body.WorkingDir ?? '',
        tty: body.Tty ?? false,
        privileged: body.Privileged ?? false,
        attachStdin: body.AttachStdin ?? false,
        attachStdout: body.AttachStdout ?? false,
        attachStderr: body.AttachStderr ?? false,
        running: false,
        started: false,
        exitCode: null,
        pid: 0,
      });
      e.events.container(`exec_create: ${body.Cmd.join(' ')}`, c, { execID: id });
      sendJSON(res, 201, { Id: id });
    },
  },
  {
    method: 'POST',
    pattern: '/exec/{id}/start',
    handle: async (e, r) => {
      const body = await readJSON<ExecStart>(r.req);
      const x = execOf(e, r.params.id as string);
      if (body.Detach) {
        await startExec(e, x.id, body, () => {
          throw new Error('unreachable');
        });
        sendEmpty(r.res, 200);
        return;
      }
      await startExec(e, x.id, body, () => streamResponse(r.req, r.res, (body.Tty ?? x.tty) ? rawStream : multiplexedStream));
    },
    upgrade: execStartUpgrade,
  },
  {
    method: 'POST',
    pattern: '/exec/{id}/resize',
    handle: async (e, { res, params, query }) => {
      const x = execOf(e, params.id as string);
      const rows = intValue(query, 'h', 0) as number;
      const cols = intValue(query, 'w', 0) as number;
      if (x.tty && x.running) await x.proc?.resize({ rows, cols });
      sendEmpty(res, 200);
    },
  },
  {
    method: 'GET',
    pattern: '/exec/{id}/json',
    handle: async (e, { res, params }) => {
      const x = execOf(e, params.id as string);
      sendJSON(res, 200, {
        ID: x.id,
        ContainerID: x.containerId,
        Running: x.running,
        ExitCode: x.exitCode,
        Pid: x.pid,
        OpenStdin: x.attachStdin,
        OpenStdout: x.attachStdout,
        OpenStderr: x.attachStderr,
        CanRemove: false,
        DetachKeys: '',
        ProcessConfig: {
          tty: x.tty,
          entrypoint: x.cmd[0],
          arguments: x.cmd.slice(1),
          privileged: x.privileged,
          user: x.user,
        },
      });
    },
  },
];
