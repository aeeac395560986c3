import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoreImage } from './types.js';

/**
 * The bytes of a tree's files as docker counts an image's size: every non-directory's length,
 * each hardlinked inode once, directories and empty files nothing.
 */
export async function fileBytes(root: string): Promise<number> {
  const seen = new Set<bigint>();
  let size = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        await walk(path);
        continue;
      }
      const st = await lstat(path, { bigint: true });
      if (st.size === 0n || seen.has(st.ino)) continue;
      seen.add(st.ino);
      size += Number(st.size);
    }
  };
  await walk(root);
  return size;
}

/**
 * Fills each image's onDisk, unique and shared from its parts: a part counts once per image, and
 * is unique when no image of another ID (or the same ID in another namespace) uses it.
 */
export function shareParts(images: StoreImage[]): void {
  const users = new Map<string, Set<string>>();
  for (const img of images) {
    for (const p of img.parts) {
      const u = users.get(p.key) ?? new Set<string>();
      users.set(p.key, u);
      u.add(`${img.namespace}\0${img.id}`);
    }
  }
  for (const img of images) {
    img.onDisk = 0;
    img.unique = 0;
    img.shared = 0;
    for (const p of img.parts) {
      img.onDisk += p.size;
      if ((users.get(p.key)?.size ?? 0) > 1) img.shared += p.size;
      else img.unique += p.size;
    }
  }
}

/** The sum of the parts of `images`, each counted once. */
export function partsTotal(images: StoreImage[], prefix: string): { count: number; size: number } {
  const parts = new Map<string, number>();
  for (const img of images) for (const p of img.parts) if (p.key.startsWith(prefix)) parts.set(p.key, p.size);
  return { count: parts.size, size: [...parts.values()].reduce((n, s) => n + s, 0) };
}
