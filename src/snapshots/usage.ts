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

/**
 * A stored snapshot's disk usage: a committed snapshot never changes, so its figure is measured
 * once and `keep` records it; after that the recorded one serves. Others are measured each time.
 */
export async function storedUsage(
  driver: { usage(id: number): Promise<Usage> },
  row: { id: number; kind: string; size: number | null; inodes: number | null },
  keep: (id: number, usage: Usage) => void,
): Promise<Usage> {
  if (row.kind === 'committed' && row.size !== null && row.inodes !== null) return { size: row.size, inodes: row.inodes };
  const usage = await driver.usage(row.id);
  if (row.kind === 'committed') keep(row.id, usage);
  return usage;
}
