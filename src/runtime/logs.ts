import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError } from '../errdefs/index.js';

/** One line a container wrote, as the CRI log keeps it (partial chunks joined). */
export interface LogRecord {
  /** RFC 3339 with nanoseconds, as written (conmon writes `+00:00`). */
  time: string;
  stream: 'stdout' | 'stderr';
  /** The bytes, with the newline when the line had one. */
  data: Buffer;
}

export interface ReadLogOpts {
  signal?: AbortSignal;
  /** Only records at or after this time (ms since the epoch). */
  since?: number;
  /** Only records before this time (ms since the epoch). */
  until?: number;
  /** Only the last n records (before following). */
  tail?: number;
  /** Keep reading new records while this says the writer may still write. */
  follow?: () => boolean;
}

/**
 * Reads a CRI-format log (`<time> <stream> <P|F> <content>`, what conmon writes and kubelet and
 * crictl read), joining `P` (partial) chunks to their line. Streams: memory holds one chunk, and
 * the last `tail` records.
 */
export async function* readLog(path: string, opts: ReadLogOpts = {}): AsyncGenerator<LogRecord> {
  const fh = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!fh) return;
  try {
    const partial: Record<'stdout' | 'stderr', { time: string; parts: Buffer[] } | undefined> = { stdout: undefined, stderr: undefined };
    let rest = Buffer.alloc(0);
    let pos = 0;
    const buf = Buffer.alloc(64 * 1024);
    const ring: LogRecord[] = [];
    let tailing = opts.tail !== undefined;
    const keep = (r: LogRecord): LogRecord | undefined => {
      const t = Date.parse(r.time);
      if (opts.since !== undefined && t < opts.since) return undefined;
      if (opts.until !== undefined && t >= opts.until) return undefined;
      if (!tailing) return r;
      ring.push(r);
      if (ring.length > (opts.tail as number)) ring.shift();
      return undefined;
    };
    for (;;) {
      opts.signal?.throwIfAborted();
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) {
        if (tailing) {
          tailing = false;
          yield* ring.splice(0);
        }
        if (!opts.follow?.()) break;
        await sleep(100, undefined, { signal: opts.signal });
        // The writer may have written since follow() was asked: one more read before stopping.
        continue;
      }
      pos += bytesRead;
      let data = Buffer.concat([rest, buf.subarray(0, bytesRead)]);
      for (;;) {
        const nl = data.indexOf(10);
        if (nl < 0) break;
        const rec = parseLine(data.subarray(0, nl), partial);
        data = data.subarray(nl + 1);
        if (rec) {
          const r = keep(rec);
          if (r) yield r;
        }
      }
      rest = Buffer.from(data);
    }
  } finally {
    await fh.close();
  }
}

function parseLine(
  line: Buffer,
  partial: Record<'stdout' | 'stderr', { time: string; parts: Buffer[] } | undefined>,
): LogRecord | undefined {
  const s1 = line.indexOf(32);
  const s2 = line.indexOf(32, s1 + 1);
  const s3 = line.indexOf(32, s2 + 1);
  if (s1 < 0 || s2 < 0) return undefined;
  const time = line.subarray(0, s1).toString();
  const stream = line.subarray(s1 + 1, s2).toString();
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  const tag = line.subarray(s2 + 1, s3 < 0 ? line.length : s3).toString();
  const content = s3 < 0 ? Buffer.alloc(0) : line.subarray(s3 + 1);
  const p = partial[stream];
  if (tag.startsWith('P')) {
    if (p) p.parts.push(Buffer.from(content));
    else partial[stream] = { time, parts: [Buffer.from(content)] };
    return undefined;
  }
  partial[stream] = undefined;
  const data = Buffer.concat([...(p?.parts ?? []), content, Buffer.from('\n')]);
  return { time: p?.time ?? time, stream, data };
}

/** docker's form of a log time: UTC with `Z` and nanoseconds. */
export function dockerTime(time: string): string {
  return time.replace(/\+00:00$/, 'Z');
}

/**
 * A `--since`/`--until` value as docker takes it: an RFC 3339 time, a Unix time (`1700000000.5`),
 * or a duration back from now (`10m`, `1h30m`, `45s`). @throws InvalidArgumentError
 */
export function parseLogTime(value: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const ms = parseDuration(value);
  if (ms !== undefined) return now - ms;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new InvalidArgumentError(`invalid time "${value}" (want RFC 3339, a Unix time or a duration like 10m)`);
  return t;
}

/** A Go duration (`10m`, `1h30m`, `45s`, `500ms`) in milliseconds; undefined when `value` is not one. */
export function parseDuration(value: string): number | undefined {
  if (!/^((\d+(\.\d+)?)(ns|us|ms|s|m|h))+$/.test(value)) return undefined;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
  let ms = 0;
  for (const m of value.matchAll(/(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g)) ms += Number(m[1]) * (unit[m[2] as string] as number);
  return ms;
}
