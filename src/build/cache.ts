import { hasCode } from '../errdefs/index.js';
import { snapshotResource } from '../images/index.js';
import type { NamespaceScope } from '../metadata/index.js';
import type { Descriptor, Digest } from '../oci/index.js';
import type { SnapshotService } from '../snapshots/index.js';

// The build cache: one lease per step that touched the filesystem, named by the step's key (its
// parent's key, the instruction and its arguments, the build args in scope, and for COPY and ADD
// the sources' digest). The lease holds the layer blob and the committed snapshot, so collection
// keeps them, and its labels say what the step made. `builder prune` deletes these leases.

export const CACHE_LEASE_PREFIX = 'build-cache-';
const LABEL = 'berth.build.cache';

/** What a cached step made: a layer (blob and diffID), or nothing (a step that changed no file). */
export type CachedStep = { empty: true } | { empty?: false; layer: Descriptor; diffID: Digest; chainID: Digest };

export class BuildCache {
  constructor(
    readonly ns: NamespaceScope,
    readonly sn: SnapshotService,
  ) {}

  /** The step's result, when the cache has it whole (its blob and snapshot still there). */
  async get(key: string): Promise<CachedStep | undefined> {
    let labels: Record<string, string>;
    try {
      labels = this.ns.leases.get(CACHE_LEASE_PREFIX + key).labels;
    } catch (err) {
      if (hasCode(err, 'NOT_FOUND')) return undefined;
      throw err;
    }
    if (labels['berth.build.empty'] === 'true') return { empty: true };
    const digest = labels['berth.build.layer'] as Digest | undefined;
    const diffID = labels['berth.build.diffid'] as Digest | undefined;
    const chainID = labels['berth.build.chainid'] as Digest | undefined;
    if (!digest || !diffID || !chainID || !this.sn.has(chainID, 'committed')) return undefined;
    try {
      await this.ns.content.info(digest);
    } catch (err) {
      if (hasCode(err, 'NOT_FOUND')) return undefined;
      throw err;
    }
    return {
      layer: { mediaType: labels['berth.build.mediatype'] as string, digest, size: Number(labels['berth.build.size']) },
      diffID,
      chainID,
    };
  }

  /** Records a step's result (a concurrent build recording the same key first is fine). */
  put(key: string, step: CachedStep, description: string): void {
    const labels: Record<string, string> = { [LABEL]: description.slice(0, 200) };
    if (step.empty) labels['berth.build.empty'] = 'true';
    else {
      Object.assign(labels, {
        'berth.build.layer': step.layer.digest,
        'berth.build.mediatype': step.layer.mediaType,
        'berth.build.size': String(step.layer.size),
        'berth.build.diffid': step.diffID,
        'berth.build.chainid': step.chainID,
      });
    }
    const id = CACHE_LEASE_PREFIX + key;
    try {
      this.ns.leases.delete(id); // an entry found incomplete is replaced
    } catch (err) {
      if (!hasCode(err, 'NOT_FOUND')) throw err;
    }
    try {
      this.ns.leases.create({ id, labels });
    } catch (err) {
      if (hasCode(err, 'ALREADY_EXISTS')) return;
      throw err;
    }
    if (!step.empty) {
      this.ns.leases.addResource(id, { type: 'content', id: step.layer.digest });
      this.ns.leases.addResource(id, snapshotResource(this.sn, step.chainID));
    }
  }
}

/** The cache entries of a namespace: lease ID, what made it, the layer's size. */
export function cacheEntries(ns: NamespaceScope): { id: string; description: string; size: number; createdAt: Date; chainID?: string }[] {
  return ns.leases
    .list()
    .filter((l) => l.id.startsWith(CACHE_LEASE_PREFIX))
    .map((l) => ({
      id: l.id.slice(CACHE_LEASE_PREFIX.length),
      description: l.labels[LABEL] ?? '',
      size: Number(l.labels['berth.build.size'] ?? 0),
      createdAt: l.createdAt,
      ...(l.labels['berth.build.chainid'] ? { chainID: l.labels['berth.build.chainid'] } : {}),
    }));
}
