import { createRequire } from 'node:module';

/** The functions of berth's addon (native/berth_native.c). Errors carry Node's shape: code, errno, syscall, path. */
interface Native {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lutimes(path: string, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
  futimes(fd: number, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
  lsetxattr(path: string, name: string, value: Uint8Array): void;
  lgetxattr(path: string, name: string): Buffer | undefined;
  llistxattr(path: string): string[];
  flock(fd: number, op: number): void;
}

// dist/src/sys/native.js → native/build/Release (the addon is built by scripts/setup.sh).
const native = createRequire(import.meta.url)('../../../native/build/Release/berth_native.node') as Native;

/** mknod(2): a character device, block device or FIFO; `mode` includes the file type bits. */
export function mknod(path: string, mode: number, major = 0, minor = 0): void {
  native.mknod(path, mode, major, minor);
}

/** A time with nanoseconds, as tar PAX headers and statx carry it. */
export interface Timespec {
  sec: number;
  nsec: number;
}

/** utimensat(2) with AT_SYMLINK_NOFOLLOW: sets atime and mtime to the nanosecond, on a symlink itself too. */
export function lutimes(path: string, atime: Timespec, mtime: Timespec): void {
  native.lutimes(path, atime.sec, atime.nsec, mtime.sec, mtime.nsec);
}

/** futimens(2): the same, on an open file. */
export function futimes(fd: number, atime: Timespec, mtime: Timespec): void {
  native.futimes(fd, atime.sec, atime.nsec, mtime.sec, mtime.nsec);
}

/** Extended attributes, never following a final symlink. */
export const xattr = {
  set(path: string, name: string, value: Uint8Array): void {
    native.lsetxattr(path, name, value);
  },
  /** @returns undefined when the attribute is absent */
  get(path: string, name: string): Buffer | undefined {
    return native.lgetxattr(path, name);
  },
  list(path: string): string[] {
    return native.llistxattr(path);
  },
};

const LOCK = { sh: 1, ex: 2, nb: 4, un: 8 } as const;

/** flock(2). `nonBlocking` makes a held lock throw EWOULDBLOCK instead of waiting. */
export function flock(fd: number, mode: 'sh' | 'ex' | 'un', nonBlocking = false): void {
  native.flock(fd, LOCK[mode] | (nonBlocking ? LOCK.nb : 0));
}
