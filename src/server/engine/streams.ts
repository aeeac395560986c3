import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { InvalidArgumentError } from '../../errdefs/index.js';

// The byte streams of attach, exec and logs: docker's 8-byte frames for a container without a
// TTY, and the two ways a client gets the stream (a 101 hijack, or a plain 200 response).

export const rawStream = 'application/vnd.docker.raw-stream';
export const multiplexedStream = 'application/vnd.docker.multiplexed-stream';

/** One frame of the multiplexed stream: [stream, 0, 0, 0, size (uint32 BE)] then the bytes. */
export function frame(stream: 0 | 1 | 2 | 3, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(data.byteLength, 4);
  return Buffer.concat([head, data]);
}

/**
 * Output bytes queued for one client at most: a client that stops reading is cut off beyond it, so
 * the daemon's memory stays bounded and the container's monitor is never held up (it keeps the log).
 */
export const maxBacklog = 8 << 20;

/** Where a stream's output goes and its input comes from, hijacked or not. */
export interface StreamConn {
  /** Queues output; the client is cut off when it falls more than {@link maxBacklog} behind. */
  write(data: Uint8Array): void;
  /** Resolves when the queued output has gone out (or the client has). */
  drained(): Promise<void>;
  /** Ends the output; the connection closes. */
  end(): void;
  /** The client's bytes after the request (stdin), on a hijacked connection; the end is the client's half-close. */
  readonly input: AsyncIterable<Buffer> | undefined;
  /** Resolves when the client is gone (not at its half-close: it still reads until we end). */
  readonly gone: Promise<void>;
  readonly isGone: () => boolean;
}

function connOver(out: Duplex | ServerResponse, socket: Duplex, input: AsyncIterable<Buffer> | undefined): StreamConn {
  let gone = false;
  let behind = false;
  const gonePromise = new Promise<void>((resolve) => {
    const done = () => {
      gone = true;
      resolve();
    };
    socket.once('close', done);
    socket.once('error', done);
  });
  return {
    write(data) {
      if (gone) return;
      if (out.writableLength > maxBacklog) {
        socket.destroy();
        return;
      }
      if (!out.write(data)) behind = true;
    },
    drained() {
      // 'drain' comes only after a write that returned false.
      if (gone || !behind) return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => {
          behind = false;
          out.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        out.once('drain', done);
        socket.once('close', done);
      });
    },
    end() {
      if (!gone) out.end();
    },
    input,
    gone: gonePromise,
    isGone: () => gone,
  };
}

/** The sockets answered with a 101: an error after it cannot be an HTTP answer any more. */
export const hijacked = new WeakSet<Duplex>();

/** Answers an Upgrade request with docker's `101 UPGRADED`; the socket is then raw both ways. */
export function hijack(socket: Duplex, head: Buffer, contentType: string): StreamConn {
  hijacked.add(socket);
  socket.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
  socket.on('error', () => {});
  async function* input(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    // Not destroyed at the end of the input: the client's half-close leaves our side writable.
    for await (const chunk of (socket as Readable).iterator({ destroyOnReturn: false })) yield chunk as Buffer;
  }
  // The client's half-close ends `input`; the socket stays writable (http.Server allows half-open).
  return connOver(socket, socket, input());
}

/** Answers a plain request with a 200 that streams until the output ends (dockerode's attach). */
export function streamResponse(req: IncomingMessage, res: ServerResponse, contentType: string): StreamConn {
  res.writeHead(200, { 'Content-Type': contentType });
  res.flushHeaders();
  return connOver(res, req.socket, undefined);
}

/**
 * Reads the JSON body of an upgraded request (exec start) from `head` and the socket, up to its
 * Content-Length; what follows is the client's stdin, returned as the new head.
 */
export async function upgradeBody(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<{ body: unknown; rest: Buffer }> {
  const length = Number(req.headers['content-length'] ?? 0);
  if (!Number.isInteger(length) || length < 0 || length > 1 << 20) throw new InvalidArgumentError('invalid Content-Length');
  let buf = head;
  while (buf.length < length) {
    const chunk = await new Promise<Buffer | null>((resolve) => {
      const onData = (d: Buffer) => {
        cleanup();
        socket.pause();
        resolve(d);
      };
      const onEnd = () => {
        cleanup();
        resolve(null);
      };
      const cleanup = () => {
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('close', onEnd);
      };
      socket.on('data', onData);
      socket.once('end', onEnd);
      socket.once('close', onEnd);
      socket.resume();
    });
    if (chunk === null) throw new InvalidArgumentError('request body ended early');
    buf = Buffer.concat([buf, chunk]);
  }
  const text = buf.subarray(0, length).toString('utf8');
  let body: unknown = {};
  if (text.trim() !== '') {
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new InvalidArgumentError(`invalid JSON body: ${(err as Error).message}`);
    }
  }
  return { body, rest: buf.subarray(length) };
}
