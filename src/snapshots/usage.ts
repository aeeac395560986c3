import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Usage } from './snapshotter.js';

/** Disk usage of a tree as du(1) counts it: allocated blocks, each hardlinked inode once. */
export async function diskUsage(root: string): Promise<Usage> {
  const seen = new Set<bigint>();
  let size = 0;
  let inodes = 0;
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path, { bigint: true });
    if (st.nlink > 1n) {
      if (seen.has(st.ino)) return;
      seen.add(st.ino);
    }
    inodes++;
    size += Number(st.blocks) * 512;
    if (st.isDirectory()) for (const name of await readdir(path)) await walk(join(path, name));
  };
  await walk(root);
  return { size, inodes };
}
