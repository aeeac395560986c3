import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type BuildHost, CACHE_LEASE_PREFIX, cacheEntries } from '../build/index.js';
import type { StoreUsage } from '../images/index.js';
import { runcFor } from '../runtime/index.js';
import type { Berth } from './berth.js';

/** What a build in namespace `namespace` of this root runs on; `image` finds (or pulls) base images. */
export function buildHost(b: Berth, namespace: string, image: BuildHost['image']): BuildHost {
  return {
    ns: b.namespace(namespace),
    sn: b.snapshotter(namespace),
    runc: runcFor(b.runDir),
    network: b.network,
    runDir: b.runDir,
    cacheMountDir: cacheMountDir(b),
    image,
  };
}

const cacheMountDir = (b: Berth) => join(b.root, 'build', 'cache-mounts');

export interface BuildCacheItem {
  id: string;
  description: string;
  /** Disk usage of the step's snapshot. */
  size: number;
  /** An image's layers include it: pruning the cache frees nothing of it. */
  shared: boolean;
  createdAt: Date;
}

/** The build cache of a namespace, as `system df` counts it (`usage` tells which snapshots images use). */
export async function buildCacheUsage(b: Berth, namespace: string, usage: StoreUsage): Promise<BuildCacheItem[]> {
  const inImages = new Set(usage.images.filter((u) => u.namespace === namespace).flatMap((u) => u.layers.map((l) => l.chainID as string)));
  const sn = b.snapshotter(namespace);
  const out: BuildCacheItem[] = [];
  for (const e of cacheEntries(b.namespace(namespace))) {
    const size = e.chainID && sn.has(e.chainID, 'committed') ? (await sn.usage(e.chainID)).size : 0;
    out.push({
      id: e.id,
      description: e.description,
      size,
      shared: e.chainID !== undefined && inImages.has(e.chainID),
      createdAt: e.createdAt,
    });
  }
  return out;
}

/**
 * `builder prune`: forgets the build cache of a namespace (with `all`, also the cache mounts, which
 * every namespace shares), then collects what nothing else holds (unless `collect` is false: the
 * caller collects). Returns the entries and the bytes freed.
 */
export async function pruneBuildCache(
  b: Berth,
  namespace: string,
  opts: { all?: boolean; collect?: boolean } = {},
): Promise<{ removed: string[]; reclaimed: number }> {
  const ns = b.namespace(namespace);
  const removed: string[] = [];
  for (const e of cacheEntries(ns)) {
    ns.leases.delete(CACHE_LEASE_PREFIX + e.id);
    removed.push(e.id);
  }
  if (opts.all) await rm(cacheMountDir(b), { recursive: true, force: true });
  if (opts.collect === false) return { removed, reclaimed: 0 };
  const gc = await b.gc();
  return { removed, reclaimed: gc.reclaimed };
}
