import { type BigIntStats, createReadStream, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError, throwIfAborted } from '../errdefs/index.js';
import { xattr } from '../sys/index.js';
import { OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX } from './apply.js';
import { deviceNumbers, isWhiteout, lstatOrUndefined, SMALL_FILE, timesOf, xattrsOf } from './fs-meta.js';
import { type EntryType, headerOf, type TarHeader } from './tar/header.js';
import { encodeHeader, TAR_END, tarPadding } from './tar/writer.js';

export interface DiffOpts {
  signal?: AbortSignal;
  /** Clamp every time to at most this many seconds since the epoch (SOURCE_DATE_EPOCH), for reproducible layers. */
  clampMtime?: number;
}

/**
 * The changes an overlayfs upper directory holds over its lowers, as an OCI layer tar: everything in
 * it is an addition or a change, 0/0 character devices are deletions (whiteouts) and opaque
 * directories get `.wh..wh..opq`. Entries are sorted, so one tree always gives the same bytes.
 */
export async function* diffOverlay(upper: string, opts: DiffOpts = {}): AsyncGenerator<Uint8Array> {
  const w = new LayerWriter(opts);
  const walk = async function* (rel: string): AsyncGenerator<Uint8Array> {
    for (const name of sortedNames(join(upper, rel))) {
      throwIfAborted(opts.signal);
      const r = rel ? `${rel}/${name}` : name;
      const path = join(upper, r);
      const st = lstatOrUndefined(path);
      if (!st) continue;
      if (isWhiteout(st)) {
        yield* w.whiteout(r);
        continue;
      }
      yield* w.entry(r, path, st);
      if (st.isDirectory()) {
        if (xattr.get(path, OVERLAY_OPAQUE_XATTR)?.toString() === 'y') yield* w.opaque(r);
        yield* walk(r);
      }
    }
  };
  yield* walk('');
  yield TAR_END;
}

/**
 * The changes from tree `lower` to tree `upper` (the native snapshotter: both are whole trees), as an
 * OCI layer tar: additions and changes (type, mode, owner, time, size, content, link target, xattrs),
 * and whiteouts for what is gone. Entries are sorted. Without `lower`, everything is an addition.
 */
export async function* diffTrees(lower: string | undefined, upper: string, opts: DiffOpts = {}): AsyncGenerator<Uint8Array> {
  const w = new LayerWriter(opts);
  const walk = async function* (rel: string, lowerHasDir: boolean): AsyncGenerator<Uint8Array> {
    const upperNames = sortedNames(join(upper, rel));
    const lowerNames = lower !== undefined && lowerHasDir ? new Set(sortedNames(join(lower, rel))) : new Set<string>();
    const names = [...new Set([...upperNames, ...lowerNames])].sort(byName);
    const inUpper = new Set(upperNames);
    for (const name of names) {
      throwIfAborted(opts.signal);
      const r = rel ? `${rel}/${name}` : name;
      if (!inUpper.has(name)) {
        yield* w.whiteout(r);
        continue;
      }
      const path = join(upper, r);
      const st = lstatOrUndefined(path);
      if (!st) continue;
      const was = lower !== undefined && lowerNames.has(name) ? join(lower, r) : undefined;
      const before = was === undefined ? undefined : lstatOrUndefined(was);
      if (!before || !(await sameEntry(was as string, before, path, st))) yield* w.entry(r, path, st);
      if (st.isDirectory()) yield* walk(r, before?.isDirectory() === true);
    }
  };
  yield* walk('', true);
  yield TAR_END;
}

/**
 * One path — a file, a link, or a directory with everything under it — as a tar whose entries are
 * named from `name` (what `docker cp` reads out of a container). Links are not followed.
 */
export async function* pathTar(path: string, name: string, opts: DiffOpts = {}): AsyncGenerator<Uint8Array> {
  const w = new LayerWriter(opts);
  const walk = async function* (host: string, rel: string): AsyncGenerator<Uint8Array> {
    throwIfAborted(opts.signal);
    const st = lstatOrUndefined(host);
    if (!st) return;
    yield* w.entry(rel, host, st);
    if (st.isDirectory()) for (const n of sortedNames(host)) yield* walk(join(host, n), `${rel}/${n}`);
  };
  yield* walk(path, name);
  yield TAR_END;
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedNames(dir: string): string[] {
  return readdirSync(dir).sort(byName);
}

/** Whether two entries are the same for a layer: type, mode, owner, times, size, link, device, xattrs (and bytes when times are coarse). */
async function sameEntry(aPath: string, a: BigIntStats, bPath: string, b: BigIntStats): Promise<boolean> {
  if ((a.mode & 0o177777n) !== (b.mode & 0o177777n) || a.uid !== b.uid || a.gid !== b.gid) return false;
  if (a.mtimeNs !== b.mtimeNs) return false;
  if (a.isSymbolicLink() && readlinkSync(aPath) !== readlinkSync(bPath)) return false;
  if ((a.isCharacterDevice() || a.isBlockDevice()) && a.rdev !== b.rdev) return false;
  if (a.isFile()) {
    if (a.size !== b.size) return false;
    // Same size and time to the nanosecond: the same file. A time without nanoseconds may hide a
    // change made within the second, so then the bytes decide (as containerd does).
    if (a.mtimeNs % 1_000_000_000n === 0n && !(await sameBytes(aPath, bPath))) return false;
  }
  const ax = xattrsOf(aPath);
  const bx = xattrsOf(bPath);
  if (ax.size !== bx.size) return false;
  for (const [k, v] of ax) if (!bx.get(k)?.equals(v)) return false;
  return true;
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const ba = Buffer.alloc(1 << 16);
    const bb = Buffer.alloc(1 << 16);
    for (let pos = 0; ; ) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, ba.length, pos), fb.read(bb, 0, bb.length, pos)]);
      if (ra.bytesRead !== rb.bytesRead) return false;
      if (ra.bytesRead === 0) return true;
      if (!ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
      pos += ra.bytesRead;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

/** Writes layer entries from files on disk: hardlinks inside one diff become link entries. */
class LayerWriter {
  readonly #links = new Map<bigint, string>();
  constructor(readonly opts: DiffOpts) {}

  *whiteout(rel: string): Generator<Uint8Array> {
    const slash = rel.lastIndexOf('/');
    yield this.#header(`${rel.slice(0, slash + 1)}${WHITEOUT_PREFIX}${rel.slice(slash + 1)}`, 'file', 0o644, 0, 0);
  }

  *opaque(rel: string): Generator<Uint8Array> {
    yield this.#header(`${rel}/${OPAQUE_MARKER}`, 'file', 0o644, 0, 0);
  }

  #header(name: string, type: EntryType, mode: number, uid: number, gid: number, extra: Partial<TarHeader> = {}): Buffer {
    return encodeHeader(headerOf({ name, type, mode, uid, gid, mtime: { sec: this.opts.clampMtime ?? 0, nsec: 0 }, ...extra }));
  }

  async *entry(rel: string, path: string, st: BigIntStats): AsyncGenerator<Uint8Array> {
    let mtime = timesOf(st).mtime;
    const clamp = this.opts.clampMtime;
    if (clamp !== undefined && (mtime.sec > clamp || (mtime.sec === clamp && mtime.nsec > 0))) mtime = { sec: clamp, nsec: 0 };
    const xattrs = new Map([...xattrsOf(path)].filter(([k]) => !k.startsWith('trusted.overlay.')).sort(([a], [b]) => byName(a, b)));
    const base = { mtime, xattrs };
    const mode = Number(st.mode) & 0o7777;
    const uid = Number(st.uid);
    const gid = Number(st.gid);
    if (st.isDirectory()) {
      yield this.#header(rel, 'dir', mode, uid, gid, base);
    } else if (st.isSymbolicLink()) {
      yield this.#header(rel, 'symlink', mode, uid, gid, { ...base, linkname: readlinkSync(path) });
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const d = deviceNumbers(st.rdev);
      yield this.#header(rel, st.isCharacterDevice() ? 'char' : 'block', mode, uid, gid, { ...base, devmajor: d.major, devminor: d.minor });
    } else if (st.isFIFO()) {
      yield this.#header(rel, 'fifo', mode, uid, gid, base);
    } else if (st.isFile()) {
      const first = st.nlink > 1n ? this.#links.get(st.ino) : undefined;
      if (first !== undefined) {
        yield this.#header(rel, 'link', mode, uid, gid, { ...base, linkname: first });
        return;
      }
      if (st.nlink > 1n) this.#links.set(st.ino, rel);
      const size = Number(st.size);
      yield this.#header(rel, 'file', mode, uid, gid, { ...base, size });
      let n = 0;
      if (size > 0 && st.size <= SMALL_FILE) {
        const bytes = readFileSync(path);
        n = bytes.length;
        if (n === size) yield bytes;
      } else if (size > 0) {
        for await (const chunk of createReadStream(path, { highWaterMark: 1 << 18, end: size - 1, signal: this.opts.signal })) {
          n += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      }
      if (n !== size) throw new FailedPreconditionError(`diff "${rel}": the file changed while it was read (${n} bytes, expected ${size})`);
      yield tarPadding(size);
    }
    // Sockets are not carried by layers.
  }
}
