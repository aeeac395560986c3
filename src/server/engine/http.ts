import type { IncomingMessage, ServerResponse } from 'node:http';
import { codeOf, httpStatuses, InvalidArgumentError } from '../../errdefs/index.js';

// The HTTP pieces every handler shares: docker's booleans and filters, capped JSON bodies, and
// error bodies the docker CLI parses (`Content-Type: application/json`, exactly).

/** One request as a handler sees it: the path's parameters and the query. */
export interface Request {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The API version the client asked for (the path's `/vX.Y`), or the maximum. */
  version: string;
}

/** The largest JSON body accepted (docker's create bodies are a few KiB). */
export const maxJSONBody = 1 << 20;

/** dockerd's `httputils.BoolValue`: "", 0, no, false and none (any case) are false; anything else is true. */
export function boolValue(q: URLSearchParams, key: string): boolean {
  const v = q.get(key);
  if (v === null) return false;
  return !['', '0', 'no', 'false', 'none'].includes(v.trim().toLowerCase());
}

/** An integer query value, or `fallback` when absent. @throws InvalidArgumentError */
export function intValue(q: URLSearchParams, key: string, fallback?: number): number | undefined {
  const v = q.get(key);
  if (v === null || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`invalid value for ${key}: "${v}"`);
  return n;
}

/**
 * docker's `filters` query value as `key=value` strings: the CLI sends `{"key":{"value":true}}`,
 * dockerode `{"key":["value"]}`; both are accepted.
 */
export function filterList(q: URLSearchParams): string[] {
  const raw = q.get('filters');
  if (raw === null || raw === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new InvalidArgumentError(`invalid filters: ${JSON.stringify(raw.slice(0, 100))} is not JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new InvalidArgumentError('invalid filters: want an object');
  const out: string[] = [];
  for (const [key, values] of Object.entries(parsed)) {
    const list = Array.isArray(values) ? values : typeof values === 'object' && values !== null ? Object.keys(values) : undefined;
    if (!list) throw new InvalidArgumentError(`invalid filter "${key}"`);
    for (const v of list) out.push(`${key}=${String(v)}`);
  }
  return out;
}

/** Reads a request body of at most `limit` bytes. @throws InvalidArgumentError beyond it (docker's clients read a 400) */
export async function readBody(req: IncomingMessage, limit = maxJSONBody): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new InvalidArgumentError(`request body of ${declared} bytes is larger than ${limit}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new InvalidArgumentError(`request body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The JSON object of a request body; an empty body is `{}`. @throws InvalidArgumentError */
export async function readJSON<T extends object>(req: IncomingMessage): Promise<Partial<T>> {
  const body = await readBody(req);
  if (body.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`invalid JSON body: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError('invalid JSON body: want an object');
  return v as Partial<T>;
}

export function sendJSON(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}

/** The status an error is answered with. */
export function statusOf(err: unknown): number {
  return httpStatuses[codeOf(err)];
}

/** docker's error body; after the headers went out, the connection is cut instead. */
export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJSON(res, statusOf(err), { message: err instanceof Error ? err.message : String(err) });
}

/** A JSON message stream (pull, push, load): one object per line, errors in-band. */
export class MessageStream {
  readonly #res: ServerResponse;

  constructor(res: ServerResponse) {
    this.#res = res;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
  }

  send(msg: Record<string, unknown>): void {
    if (!this.#res.destroyed) this.#res.write(`${JSON.stringify(msg)}\r\n`);
  }

  error(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.send({ errorDetail: { message }, error: message });
  }

  end(): void {
    this.#res.end();
  }
}
