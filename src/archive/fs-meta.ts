import {
  type BigIntStats,
  chmodSync,
  closeSync,
  copyFileSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { lutimes, mknod, type Timespec, xattr } from '../sys/index.js';

/** Files up to this size are read whole rather than streamed (one syscall each way, no stream to set up). */
export const SMALL_FILE = 256n * 1024n;

/** Only root can chown; a rootless caller keeps its own ids. */
export const canChown = process.getuid?.() === 0;

/** lstat with nanosecond times; undefined when nothing is there. */
export function lstatOrUndefined(path: string): BigIntStats | undefined {
  try {
    return lstatSync(path, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

export function timesOf(st: BigIntStats): { atime: Timespec; mtime: Timespec } {
  const ts = (ns: bigint) => ({
    sec: Number(ns / 1_000_000_000n),
    nsec: Number(((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n),
  });
  return { atime: ts(st.atimeNs), mtime: ts(st.mtimeNs) };
}

/** Splits a dev_t as glibc's major() and minor() do. */
export function deviceNumbers(rdev: bigint): { major: number; minor: number } {
  return {
    major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}

/** An overlay whiteout: a character device 0/0. */
export function isWhiteout(st: BigIntStats): boolean {
  return st.isCharacterDevice() && st.rdev === 0n;
}

export function xattrsOf(path: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of xattr.list(path)) {
    const v = xattr.get(path, name);
    if (v !== undefined) out.set(name, v);
  }
  return out;
}

/**
 * Copies one entry (not a directory's children) with its owner, mode, xattrs and times: how overlayfs
 * copies up a lower file or directory before the upper layer changes it. `as` overrides the owner
 * and mode (COPY --chown, --chmod).
 */
export function copyEntry(src: string, dst: string, st: BigIntStats, as: { uid?: number; gid?: number; mode?: number } = {}): void {
  const mode = as.mode ?? Number(st.mode) & 0o7777;
  if (st.isDirectory()) mkdirSync(dst, { mode: 0o700 });
  else if (st.isFile()) {
    // A small file is cheaper read and written than copied by copy_file_range (half the time on overlayfs).
    if (st.size <= SMALL_FILE) writeFileSync(dst, readFileSync(src), { mode: 0o600 });
    else copyFileSync(src, dst);
  } else if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
  else if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) {
    const d = deviceNumbers(st.rdev);
    mknod(dst, (Number(st.mode) & 0o170000) | mode, d.major, d.minor);
  } else {
    // Sockets are not carried by layers.
    closeSync(openSync(dst, 'wx', 0o600));
  }
  if (canChown) lchownSync(dst, as.uid ?? Number(st.uid), as.gid ?? Number(st.gid));
  if (!st.isSymbolicLink()) chmodSync(dst, mode);
  // overlayfs's own attributes (opaque, origin) describe where the source sits, not what it holds
  for (const [k, v] of xattrsOf(src)) if (!k.startsWith('trusted.overlay.')) xattr.set(dst, k, v);
  const t = timesOf(st);
  lutimes(dst, t.atime, t.mtime);
}
