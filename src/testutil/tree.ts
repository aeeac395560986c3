// Test support: a filesystem tree as comparable records (what `berth image mount` shows against what
// `umoci unpack` made).
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { deviceNumbers, xattrsOf } from '../archive/index.js';

export interface TreeEntry {
  path: string;
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  link?: string;
  rdev?: string;
  mtime: string;
  xattrs: Record<string, string>;
  /** The first path (in walk order) of this entry's hardlink group, when it has several names. */
  hardlinkOf?: string;
}

export interface TreeOpts {
  /** Compare directory mtimes too (default true). */
  dirTimes?: boolean;
}

/** Walks `root` (not itself) in sorted order and describes each entry. xattrs of overlayfs are left out. */
export async function describeTree(root: string, opts: TreeOpts = {}): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const inodes = new Map<bigint, string>();
  const walk = async (rel: string) => {
    const names = (await readdir(join(root, rel))).sort();
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const full = join(root, path);
      const st = await lstat(full, { bigint: true });
      const type = st.isDirectory()
        ? 'dir'
        : st.isFile()
          ? 'file'
          : st.isSymbolicLink()
            ? 'symlink'
            : st.isCharacterDevice()
              ? 'char'
              : st.isBlockDevice()
                ? 'block'
                : st.isFIFO()
                  ? 'fifo'
                  : 'other';
      const xattrs: Record<string, string> = {};
      for (const [k, v] of [...xattrsOf(full)].sort(([a], [b]) => (a < b ? -1 : 1)))
        if (!k.startsWith('trusted.overlay.')) xattrs[k] = v.toString('hex');
      const e: TreeEntry = {
        path,
        type,
        mode: (Number(st.mode) & 0o7777).toString(8),
        uid: Number(st.uid),
        gid: Number(st.gid),
        mtime: type === 'dir' && opts.dirTimes === false ? '-' : String(st.mtimeNs),
        xattrs,
      };
      if (type === 'symlink') {
        e.link = await readlink(full);
        e.mode = '-';
      }
      if (type === 'file') {
        e.size = Number(st.size);
        e.sha256 = createHash('sha256')
          .update(await readFile(full))
          .digest('hex');
      }
      if (type === 'char' || type === 'block') {
        const d = deviceNumbers(st.rdev);
        e.rdev = `${d.major},${d.minor}`;
      }
      if (type !== 'dir' && st.nlink > 1n) {
        const first = inodes.get(st.ino);
        if (first) e.hardlinkOf = first;
        else inodes.set(st.ino, path);
      }
      out.push(e);
      if (type === 'dir') await walk(path);
    }
  };
  await walk('');
  return out;
}
