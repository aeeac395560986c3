// A read-only reader of bbolt files (go.etcd.io/bbolt), the key/value store containerd keeps its
// metadata in. It reads a private copy of the file, never the writer's lock or pages in place.
import { DataLossError, InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { readFileHead } from '../sys/index.js';

const magic = 0xed0cdaed;
const pageHeaderSize = 16;
const elementSize = 16;
const flags = { branch: 0x01, leaf: 0x02, meta: 0x04, freelist: 0x10 } as const;
const bucketLeafFlag = 0x01;
/** Bucket nesting deeper than any real store; a deeper walk is a loop in a corrupt file. */
const maxDepth = 64;

/** A torn or damaged file: what a retry over a fresh copy may cure. */
export class BoltCorruptError extends DataLossError {}

interface Meta {
  pageSize: number;
  root: bigint;
  pgid: bigint;
  txid: bigint;
}

/** FNV-1a, 64 bits: the checksum of a meta page. */
function fnv64a(buf: Buffer): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of buf) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

function readMeta(file: Buffer, offset: number): Meta | undefined {
  if (file.length < offset + pageHeaderSize + 64) return undefined;
  if ((file.readUInt16LE(offset + 8) & flags.meta) === 0) return undefined;
  const m = offset + pageHeaderSize;
  if (file.readUInt32LE(m) !== magic || file.readUInt32LE(m + 4) !== 2) return undefined;
  if (fnv64a(file.subarray(m, m + 56)) !== file.readBigUInt64LE(m + 56)) return undefined;
  return {
    pageSize: file.readUInt32LE(m + 8),
    root: file.readBigUInt64LE(m + 16),
    pgid: file.readBigUInt64LE(m + 40),
    txid: file.readBigUInt64LE(m + 48),
  };
}

/** The page size a file was made with, from its first meta page (it may be damaged: then the usual sizes are tried). */
function metaOffsets(file: Buffer): number[] {
  const out = new Set<number>();
  if (file.length >= pageHeaderSize + 16 && file.readUInt32LE(pageHeaderSize) === magic) out.add(file.readUInt32LE(pageHeaderSize + 8));
  for (const size of [4096, 8192, 16384, 65536]) out.add(size);
  return [...out].filter((s) => s >= 1024 && s <= 1 << 20);
}

/** One key of a bucket: a value, or a nested bucket. */
export interface BoltEntry {
  key: Buffer;
  value?: Buffer;
  bucket?: BoltBucket;
}

/** A bucket of a snapshot; keys come in bbolt's order (bytewise). */
export class BoltBucket {
  readonly #db: BoltDB;
  readonly #root: bigint;
  /** An inline bucket's page, held in its parent's value. */
  readonly #inline: Buffer | undefined;
  readonly #depth: number;

  constructor(db: BoltDB, root: bigint, inline: Buffer | undefined, depth: number) {
    if (depth > maxDepth) throw new BoltCorruptError('bbolt: buckets nested too deep');
    this.#db = db;
    this.#root = root;
    this.#inline = inline;
    this.#depth = depth;
  }

  *entries(): Generator<BoltEntry> {
    yield* this.#walk(this.#inline ?? this.#db.page(this.#root), new Set());
  }

  get(key: string): Buffer | undefined {
    return this.#find(key)?.value;
  }

  bucket(...path: string[]): BoltBucket | undefined {
    let b: BoltBucket | undefined = this;
    for (const key of path) {
      if (!b) return undefined;
      b = b.#find(key)?.bucket;
    }
    return b;
  }

  /** The string value of a key, or undefined. */
  text(key: string): string | undefined {
    return this.get(key)?.toString('utf8');
  }

  #find(key: string): BoltEntry | undefined {
    const k = Buffer.from(key);
    for (const e of this.entries()) {
      const c = Buffer.compare(e.key, k);
      if (c === 0) return e;
      if (c > 0) return undefined;
    }
    return undefined;
  }

  *#walk(page: Buffer, seen: Set<bigint>): Generator<BoltEntry> {
    const pageFlags = page.readUInt16LE(8);
    const count = page.readUInt16LE(10);
    if (pageHeaderSize + count * elementSize > page.length) throw new BoltCorruptError('bbolt: a page holds more elements than fit');
    for (let i = 0; i < count; i++) {
      const at = pageHeaderSize + i * elementSize;
      if (pageFlags & flags.branch) {
        const pos = page.readUInt32LE(at);
        const ksize = page.readUInt32LE(at + 4);
        this.#slice(page, at + pos, ksize);
        const child = page.readBigUInt64LE(at + 8);
        if (seen.has(child)) throw new BoltCorruptError(`bbolt: page ${child} is reached twice`);
        seen.add(child);
        yield* this.#walk(this.#db.page(child), seen);
      } else if (pageFlags & flags.leaf) {
        const elemFlags = page.readUInt32LE(at);
        const pos = page.readUInt32LE(at + 4);
        const ksize = page.readUInt32LE(at + 8);
        const vsize = page.readUInt32LE(at + 12);
        const key = this.#slice(page, at + pos, ksize);
        const value = this.#slice(page, at + pos + ksize, vsize);
        if (elemFlags & bucketLeafFlag) {
          if (value.length < 16) throw new BoltCorruptError('bbolt: a bucket header is cut short');
          const root = value.readBigUInt64LE(0);
          const inline = root === 0n ? value.subarray(16) : undefined;
          if (inline && inline.length < pageHeaderSize) throw new BoltCorruptError('bbolt: an inline bucket is cut short');
          yield { key, bucket: new BoltBucket(this.#db, root, inline, this.#depth + 1) };
        } else yield { key, value };
      } else throw new BoltCorruptError(`bbolt: page of type 0x${pageFlags.toString(16)} where a branch or leaf belongs`);
    }
  }

  #slice(page: Buffer, start: number, length: number): Buffer {
    if (start + length > page.length) throw new BoltCorruptError('bbolt: an element points past its page');
    return page.subarray(start, start + length);
  }
}

/** The valid meta page with the highest txid. */
function newestMeta(file: Buffer): Meta | undefined {
  let best: Meta | undefined;
  for (const size of metaOffsets(file)) {
    for (const m of [readMeta(file, 0), readMeta(file, size)]) {
      if (m && m.pageSize === size && (!best || m.txid > best.txid)) best = m;
    }
  }
  return best;
}

/** A consistent, private snapshot of a bbolt file: the pages its newest valid meta page reaches. */
export class BoltDB {
  readonly txid: bigint;
  readonly #file: Buffer;
  readonly #meta: Meta;
  /** Pages read so far: a damaged file's pages can point in loops, which this bounds. */
  #visits = 0;

  /**
   * @throws BoltCorruptError when neither meta page is valid
   */
  constructor(file: Buffer, what = 'bbolt file') {
    const best = newestMeta(file);
    if (!best) {
      throw file.length < 4096
        ? new BoltCorruptError(`${what}: truncated (${file.length} bytes), not a bbolt database`)
        : new BoltCorruptError(`${what}: no valid meta page; not a bbolt database, or damaged`);
    }
    if (BigInt(file.length) < best.pgid * BigInt(best.pageSize)) {
      throw new BoltCorruptError(`${what}: truncated (${file.length} bytes; its meta page counts ${best.pgid} pages of ${best.pageSize})`);
    }
    this.#file = file;
    this.#meta = best;
    this.txid = best.txid;
  }

  /** The page `id` with its overflow pages. */
  page(id: bigint): Buffer {
    const { pageSize, pgid } = this.#meta;
    if (++this.#visits > Math.max(1_000_000, 200 * Number(pgid))) throw new BoltCorruptError('bbolt: the pages point in a loop');
    if (id < 2n || id >= pgid) throw new BoltCorruptError(`bbolt: page ${id} is outside the database (${pgid} pages)`);
    const start = Number(id) * pageSize;
    if (start + pageHeaderSize > this.#file.length) throw new BoltCorruptError(`bbolt: page ${id} is past the end of the file`);
    if (this.#file.readBigUInt64LE(start) !== id)
      throw new BoltCorruptError(`bbolt: page ${id} names itself ${this.#file.readBigUInt64LE(start)}`);
    const end = start + (1 + this.#file.readUInt32LE(start + 12)) * pageSize;
    if (end > this.#file.length) throw new BoltCorruptError(`bbolt: page ${id} runs past the end of the file`);
    return this.#file.subarray(start, end);
  }

  /** The root bucket. */
  root(): BoltBucket {
    return new BoltBucket(this, this.#meta.root, undefined, 0);
  }
}

/** The file's first `limit` bytes (all of it without a limit). */
function readWhole(path: string, limit?: number): Buffer {
  try {
    return readFileHead(path, limit);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new NotFoundError(`${path}: no such file`);
    if (e.code === 'EISDIR') throw new InvalidArgumentError(`${path}: a directory, not a bbolt database`);
    throw err;
  }
}

/**
 * Reads `path` as it is now, while its owner may be writing: the file is copied into memory and
 * `read` runs over the copy; the copy is trusted when its newest meta page is still the newest
 * after the read (bbolt writes a transaction's pages before its meta page, and does not reuse a
 * page the newest meta reaches). A torn copy is taken again, up to `attempts` times.
 * @throws NotFoundError when the file is missing; BoltCorruptError when it stays unreadable
 */
export function readBolt<T>(path: string, read: (db: BoltDB) => T, attempts = 5): T {
  let failure: { err: unknown } | undefined;
  for (let i = 0; i < attempts; i++) {
    let txid: bigint | undefined;
    let result: T | undefined;
    failure = undefined;
    try {
      const db = new BoltDB(readWhole(path), path);
      txid = db.txid;
      result = read(db);
    } catch (err) {
      // Any error over a torn copy (a bucket missing, a page of another tree) is the tear's.
      if (!(err instanceof BoltCorruptError) && txid === undefined) throw err;
      failure = { err };
    }
    if (txid !== undefined && newestTxid(path) === txid) {
      if (!failure) return result as T;
      break;
    }
  }
  const last = failure?.err;
  if (!(last instanceof Error)) throw new BoltCorruptError(`${path}: changed on every read; try again`);
  if (!(last instanceof BoltCorruptError)) throw last;
  throw new BoltCorruptError(last.message.startsWith(path) ? last.message : `${path}: ${last.message}`);
}

/** The txid of the file's newest valid meta page now (the two meta pages lie in its first 2 MiB). */
function newestTxid(path: string): bigint | undefined {
  return newestMeta(readWhole(path, 2 << 20))?.txid;
}
