import type { Timespec } from '../../sys/index.js';

export const BLOCK = 512;

export type EntryType = 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';

/** A data segment of a sparse file; everything between segments is a hole. */
export interface SparseSegment {
  offset: number;
  length: number;
}

/** One tar member's metadata, with the PAX and GNU extensions already folded in. */
export interface TarHeader {
  /** As stored: relative, maybe with `./` or a trailing slash; hostile until resolved inside a root. */
  name: string;
  type: EntryType;
  /** Permission bits with setuid, setgid and sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** File size (the real size for sparse files); 0 for other types. */
  size: number;
  mtime: Timespec;
  atime?: Timespec | undefined;
  /** Symlink target, or the member a hardlink points to. */
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** From `SCHILY.xattr.*` PAX records, values as raw bytes. */
  xattrs: Map<string, Buffer>;
  sparse?: SparseSegment[];
}

/** A header with the fields that vary; the rest zero or empty (owner root, no times, no xattrs). */
export function headerOf(h: Pick<TarHeader, 'name' | 'type' | 'mode'> & Partial<TarHeader>): TarHeader {
  return {
    uid: 0,
    gid: 0,
    size: 0,
    mtime: { sec: 0, nsec: 0 },
    linkname: '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(),
    ...h,
  };
}
