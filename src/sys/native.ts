import { unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from './package-root.js';

/** The functions of berth's addon (native/berth_native.c). Errors carry Node's shape: code, errno, syscall, path. */
interface Native {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lutimes(path: string, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
  futimes(fd: number, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
  lsetxattr(path: string, name: string, value: Uint8Array): void;
  lgetxattr(path: string, name: string): Buffer | undefined;
  llistxattr(path: string): string[];
  flock(fd: number, op: number): void;
  seqpacketConnect(path: string): number;
  shutdown(fd: number, how: number): void;
  mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount(target: string, flags: number): void;
  netnsCreate(path: string): void;
  netnsConnect(nsPath: string, port: number): number;
}

// The addon is built by scripts/setup.sh into native/build/Release.
const native = createRequire(import.meta.url)(join(packageRoot, 'native', 'build', 'Release', 'berth_native.node')) as Native;

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

/**
 * A blocking AF_UNIX SOCK_SEQPACKET socket connected to `path` (libuv opens only stream sockets).
 * Read it with `fs.createReadStream(null, { fd })` (one packet per chunk, on the thread pool) and write
 * it with `fs.writeSync`. Paths longer than a socket address can go through `/proc/self/fd/N/name`.
 */
export function seqpacketConnect(path: string): number {
  return native.seqpacketConnect(path);
}

/** shutdown(2): `write` lets the peer read end of file; `both` also ends a read blocked on the socket. */
export function shutdown(fd: number, how: 'write' | 'both'): void {
  native.shutdown(fd, how === 'write' ? 1 : 2);
}

/** mount(2) flags berth uses. */
export const MS = { RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, REMOUNT: 32, BIND: 4096, REC: 16384 } as const;

/** mount(2): a filesystem (overlay with its options as `data`), or a bind (`fstype` null, flags MS.BIND). */
export function mount(source: string, target: string, fstype: string | null, flags: number, data: string | null = null): void {
  native.mount(source, target, fstype, flags, data);
}

/** umount2(2) without flags: a busy mount is an error (EBUSY), not detached. */
export function umount(target: string): void {
  native.umount(target, 0);
}

/** A new network namespace, bound at `path` (an existing empty file) as `ip netns add` binds one. */
export function netnsCreate(path: string): void {
  native.netnsCreate(path);
}

/**
 * A TCP connection to 127.0.0.1:`port` inside the network namespace at `nsPath` (CRI's
 * port-forward into a pod), as a connected socket's fd. @throws with `code` ECONNREFUSED, ENOENT…
 */
export function netnsConnect(nsPath: string, port: number): number {
  return native.netnsConnect(nsPath, port);
}

/** Lets go of a namespace bound at `path` (`ip netns delete`): a lazy unmount, then the file goes. */
export function netnsDelete(path: string): void {
  try {
    native.umount(path, 2); // MNT_DETACH
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL' && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
