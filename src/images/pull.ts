import { hasCode, NotFoundError } from '../errdefs/index.js';
import type { Image, NamespaceScope } from '../metadata/index.js';
import {
  type Descriptor,
  formatPlatform,
  formatReference,
  hostPlatform,
  isIndex,
  isLayer,
  type Platform,
  parseReference,
  platformMatcher,
  type Reference,
} from '../oci/index.js';
import { Repository, type Session } from '../remotes/index.js';
import type { SnapshotService } from '../snapshots/index.js';
import { matchingManifests, readIndex, readManifest } from './image.js';
import { BlobTee } from './tee.js';
import { fetchInto, mapLimit, type TransferOpts } from './transfer.js';
import { snapshotResource, type UnpackEvent, type UnpackResult, unpack } from './unpack.js';

export interface PullOpts extends TransferOpts {
  session: Session;
  /** The platform to pull from an index; the host's by default. */
  platform?: Platform;
  /** Pull every manifest of an index. */
  allPlatforms?: boolean;
  /** Blobs downloaded at once (default 3, as docker). */
  concurrency?: number;
  /** Unpack the platform's layers into this snapshotter as they arrive. */
  unpack?: SnapshotService;
  onUnpackEvent?: (e: UnpackEvent) => void;
  /**
   * Once the layers are unpacked, drop their compressed blobs from the namespace (docker's classic
   * store keeps only the unpacked layers; containerd offers it to kubelet). Pushing the image then
   * needs a pull with the blobs kept.
   */
  discardUnpackedLayers?: boolean;
}

export interface PullResult {
  image: Image;
  reference: Reference;
  /** The manifests pulled (one, or all with allPlatforms). */
  manifests: Descriptor[];
  /** Blobs transferred, and found already present. */
  downloaded: number;
  existing: number;
  unpacked?: UnpackResult;
}

/**
 * Pulls an image into a namespace: resolves the reference, fetches the index (if any), the
 * platform's manifest(s), configs and layers — each streamed through the digest check into the
 * content store, concurrently, resuming after resets — then records the image, named by the full
 * reference, pointing at what the reference names (index or manifest), as containerd does.
 * The work runs under a lease, so a concurrent garbage collection keeps what it fetched.
 */
export async function pull(ns: NamespaceScope, ref: string | Reference, opts: PullOpts): Promise<PullResult> {
  const reference = typeof ref === 'string' ? parseReference(ref) : ref;
  const repo = new Repository(opts.session, reference);
  const name = formatReference(reference);
  return ns.leases.withLease(
    async (lease) => {
      const target = await repo.resolve(reference, opts);
      opts.onEvent?.({ type: 'resolved', name, desc: target });
      let downloaded = 0;
      let existing = 0;
      const arrivals = new Arrivals();
      // The layers being unpacked as they download: each gets a tee the unpacker reads from.
      const tees = new Map<string, BlobTee>();
      const claimed = new Set<string>();
      const fetching = new Map<string, Promise<void>>();
      const fetch = (desc: Descriptor): Promise<void> => {
        let p = fetching.get(desc.digest);
        if (!p) {
          const tee = tees.get(desc.digest);
          p = (async () => {
            ns.leases.addResource(lease.id, { type: 'content', id: desc.digest });
            try {
              const r = await fetchInto(ns.content, repo, desc, { ...opts, tee });
              if (r.created) downloaded++;
              else existing++;
            } catch (err) {
              tee?.cancel(err);
              throw err;
            }
            tee?.cancel(); // when the blob was already stored: the unpacker reads it from the store
            arrivals.arrived(desc.digest);
          })();
          fetching.set(desc.digest, p);
        }
        return p;
      };
      await fetch(target);
      let manifests = [target];
      if (isIndex(target.mediaType)) {
        const index = await readIndex(ns.content, target, opts);
        const platform = opts.platform ?? hostPlatform();
        manifests = opts.allPlatforms ? index.value.manifests : matchingManifests(index.value, platformMatcher(platform)).slice(0, 1);
        if (manifests.length === 0) {
          throw new NotFoundError(`pull "${name}": no matching manifest for ${formatPlatform(platform)} in the manifest list entries`);
        }
      }
      const sn = opts.unpack;
      let unpacking: Promise<UnpackResult> | undefined;
      try {
        if (sn && manifests.length === 1) {
          const m = manifests[0] as Descriptor;
          await fetch(m);
          for (const l of (await readManifest(ns.content, m, opts)).value.layers) {
            if (isLayer(l.mediaType)) tees.set(l.digest, new BlobTee(l.size));
          }
          unpacking = unpack(ns.content, sn, m, {
            ...opts,
            ready: (d) => arrivals.wait(d.digest),
            open: async (d) => {
              // One reader per tee: a layer listed twice reads the store the second time.
              if (claimed.has(d.digest)) return undefined;
              claimed.add(d.digest);
              return tees.get(d.digest)?.stream();
            },
            onEvent: opts.onUnpackEvent,
            onSnapshot: (key) => ns.leases.addResource(lease.id, snapshotResource(sn, key)),
          });
          unpacking.catch(() => {});
        }
        for (const m of manifests) {
          await fetch(m);
          const manifest = await readManifest(ns.content, m, opts);
          await mapLimit([manifest.value.config, ...manifest.value.layers], opts.concurrency ?? 3, fetch);
        }
      } catch (err) {
        arrivals.fail(err);
        for (const tee of tees.values()) tee.cancel(err);
        await unpacking?.catch(() => {});
        throw err;
      }
      const unpacked = await unpacking;
      const image = ns.images.put({ name, target });
      if (unpacked && opts.discardUnpackedLayers) {
        for (const l of (await readManifest(ns.content, manifests[0] as Descriptor, opts)).value.layers) {
          if (isLayer(l.mediaType))
            await ns.content.delete(l.digest).catch((err: unknown) => {
              if (!hasCode(err, 'NOT_FOUND')) throw err;
            });
        }
      }
      const result: PullResult = { image, reference, manifests, downloaded, existing };
      if (unpacked) result.unpacked = unpacked;
      return result;
    },
    { expiresIn: 24 * 3_600_000, labels: { 'berth.pull': name } },
  );
}

/** Blobs a pull has fetched, for an unpack that waits on them. */
class Arrivals {
  readonly #done = new Set<string>();
  readonly #waiting = new Map<string, { resolve: () => void; reject: (e: unknown) => void }[]>();
  #failed: unknown;

  arrived(digest: string): void {
    this.#done.add(digest);
    for (const w of this.#waiting.get(digest) ?? []) w.resolve();
    this.#waiting.delete(digest);
  }

  fail(err: unknown): void {
    this.#failed = err ?? new Error('pull failed');
    for (const ws of this.#waiting.values()) for (const w of ws) w.reject(this.#failed);
    this.#waiting.clear();
  }

  wait(digest: string): Promise<void> {
    if (this.#done.has(digest)) return Promise.resolve();
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      const ws = this.#waiting.get(digest) ?? [];
      ws.push({ resolve, reject });
      this.#waiting.set(digest, ws);
    });
  }
}
