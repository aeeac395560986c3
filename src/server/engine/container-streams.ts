// A container's output through the Engine API: attach (hijacked or streamed) and logs.
import type { Container } from '../../containers/index.js';
import { FailedPreconditionError, InvalidArgumentError } from '../../errdefs/index.js';
import { type Attachment, type AttachPacket, dockerTime, parseLogTime } from '../../runtime/index.js';
import type { Engine } from './engine.js';
import { boolValue, type Request } from './http.js';
import type { UpgradeRequest } from './router.js';
import { frame, hijack, multiplexedStream, rawStream, type StreamConn, streamResponse, upgradeBody } from './streams.js';

/** Writes one packet of a container's output: framed, unless the container has a TTY. */
function writePacket(conn: StreamConn, tty: boolean, p: AttachPacket, want: { stdout: boolean; stderr: boolean }): void {
  if (p.stream === 1 ? !want.stdout : !want.stderr) return;
  conn.write(tty ? p.data : frame(p.stream, p.data));
}

/**
 * Streams a container's stdio over `conn` through its monitor: output until the container ends
 * (or the client goes), the client's input to its stdin when asked. A created container is
 * connected when it starts, so nothing it writes is missed.
 */
export async function serveAttach(e: Engine, c: Container, conn: StreamConn, q: URLSearchParams): Promise<void> {
  const tty = c.config.Config.Tty;
  const want = { stdout: boolValue(q, 'stdout'), stderr: boolValue(q, 'stderr') };
  const stdin = boolValue(q, 'stdin') && c.config.Config.OpenStdin;
  let attachment: Attachment | undefined;
  if (c.state.status === 'running') {
    attachment = e.containers.attach(c.id);
  } else {
    let unregister = () => {};
    attachment = await new Promise<Attachment | undefined>((resolve) => {
      unregister = e.onStart(c.id, () => {
        try {
          resolve(e.containers.attach(c.id));
        } catch {
          resolve(undefined);
        }
      });
      void conn.gone.then(() => resolve(undefined));
    });
    unregister();
  }
  if (!attachment) {
    conn.end();
    return;
  }
  const a = attachment;
  void conn.gone.then(() => a.close());
  if (stdin && conn.input) {
    void (async () => {
      try {
        for await (const chunk of conn.input as AsyncIterable<Buffer>) a.write(chunk);
      } catch {
        // the client went
      }
      a.closeStdin();
    })();
  }
  try {
    for await (const p of a.output) writePacket(conn, tty, p, want);
  } finally {
    a.close();
  }
  await conn.drained();
  conn.end();
}

export async function attachUpgrade(e: Engine, r: UpgradeRequest): Promise<void> {
  const c = await e.containers.get(r.params.id as string);
  if (c.state.status === 'exited' && !boolValue(r.query, 'logs')) {
    throw new FailedPreconditionError('You cannot attach to a stopped container, start it first');
  }
  // dockerode sends its options as a body too: what follows it is stdin.
  const { rest } = await upgradeBody(r.req, r.socket, r.head);
  const conn = hijack(r.socket, rest, c.config.Config.Tty ? rawStream : multiplexedStream);
  await serveAttach(e, c, conn, r.query);
}

/** The logs endpoint's stream: the records the query asks for, framed unless the container has a TTY. */
export async function serveLogs(e: Engine, r: Request): Promise<void> {
  const c = await e.containers.get(r.params.id as string);
  const q = r.query;
  const want = { stdout: boolValue(q, 'stdout'), stderr: boolValue(q, 'stderr') };
  if (!want.stdout && !want.stderr) throw new InvalidArgumentError('Bad parameters: you must choose at least one stream');
  const tailArg = q.get('tail') ?? 'all';
  const tail = tailArg === 'all' || tailArg === '' ? undefined : Number(tailArg);
  if (tail !== undefined && !(Number.isInteger(tail) && tail >= 0)) throw new InvalidArgumentError(`invalid tail "${tailArg}"`);
  const since = q.get('since');
  const until = q.get('until');
  const tty = c.config.Config.Tty;
  const conn = streamResponse(r.req, r.res, tty ? rawStream : multiplexedStream);
  const ac = new AbortController();
  void conn.gone.then(() => ac.abort());
  const timestamps = boolValue(q, 'timestamps');
  try {
    for await (const rec of e.containers.logs(c, {
      signal: ac.signal,
      ...(tail !== undefined ? { tail } : {}),
      ...(since && since !== '0' ? { since: parseLogTime(since) } : {}),
      ...(until && until !== '0' ? { until: parseLogTime(until) } : {}),
      follow: boolValue(q, 'follow'),
    })) {
      const data = timestamps ? Buffer.concat([Buffer.from(`${dockerTime(rec.time)} `), rec.data]) : rec.data;
      writePacket(conn, tty, { stream: rec.stream === 'stdout' ? 1 : 2, data }, want);
      await conn.drained();
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
  }
  conn.end();
}
