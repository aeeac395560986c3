import { randomBytes } from 'node:crypto';
import { applyLayer, decompress } from '../archive/index.js';
import type { BlobReader, Provider } from '../content/index.js';
import { DataLossError, FailedPreconditionError, hasCode, withContext } from '../errdefs/index.js';
import type { LeaseResource, NamespaceScope } from '../metadata/index.js';
import { chainIDs, type Descriptor, type Digest, isLayer } from '../oci/index.js';
import { SNAPSHOT_REF_LABEL, type SnapshotService } from '../snapshots/index.js';
import { type ResolvedImage, readConfig, readManifest } from './image.js';

export type UnpackEvent =
  | { type: 'layer-applied'; digest: Digest; chainID: Digest; unpackedSize: number }
  | { type: 'layer-exists'; digest: Digest; chainID: Digest };

export interface UnpackOpts {
  signal?: AbortSignal;
  /** Resolves once a blob is in the store (pull passes its downloads here); by default everything is. */
  ready?: (desc: Descriptor) => Promise<void>;
  /** A layer's bytes as they download, when they can be had (pull's tees); else the stored blob is read. */
  open?: (desc: Descriptor) => Promise<AsyncIterable<Uint8Array> | undefined>;
  /** Layers applied at once where the snapshotter allows it (overlayfs); default 3. */
  concurrency?: number;
  onEvent?: (e: UnpackEvent) => void;
  /** Called with each snapshot key (chainIDs, extraction keys) before it is looked up or filled, to hold it in a lease. */
  onSnapshot?: (key: string) => void;
}

export interface UnpackResult {
  chainIDs: Digest[];
  /** Layers applied now (the others were already unpacked, here or in another namespace). */
  applied: number;
}

/**
 * Unpacks an image manifest into snapshots: one committed snapshot per layer stack, named by its
 * chainID. A layer is decompressed, applied and checked against the config's diffID; only then is
 * its snapshot committed, so a failed or interrupted unpack leaves nothing a later one would trust.
 * With overlayfs the layers are applied in parallel, each into its own directory, and committed in order.
 * @throws FailedPreconditionError when the layers and the config's diffIDs disagree
 */
export async function unpack(
  content: Provider,
  sn: SnapshotService,
  manifestDesc: Descriptor,
  opts: UnpackOpts = {},
): Promise<UnpackResult> {
  const ready = opts.ready ?? (async () => {});
  await ready(manifestDesc);
  const manifest = await readManifest(content, manifestDesc, opts);
  await ready(manifest.value.config);
  const config = await readConfig(content, manifest.value.config, opts);
  const layers = manifest.value.layers.filter((l) => isLayer(l.mediaType));
  const diffIDs = config.value.rootfs.diff_ids;
  if (layers.length !== diffIDs.length) {
    throw new FailedPreconditionError(`unpack ${manifestDesc.digest}: ${layers.length} layers but ${diffIDs.length} diffIDs in the config`);
  }
  const chain = chainIDs(diffIDs);

  // Each layer's commit waits for its parent's; with rebase, its apply does not.
  const committed: Promise<void>[] = [];
  let applied = 0;
  const parallel = sn.impl.rebase;
  let slots = parallel ? (opts.concurrency ?? 3) : 1;
  const waiting: (() => void)[] = [];
  const acquire = async () => {
    while (slots === 0) await new Promise<void>((r) => waiting.push(r));
    slots--;
  };
  const release = () => {
    slots++;
    waiting.shift()?.();
  };

  const one = async (i: number): Promise<void> => {
    const layer = layers[i] as Descriptor;
    const name = chain[i] as Digest;
    const parent = i > 0 ? (chain[i - 1] as Digest) : undefined;
    const parentDone = i > 0 ? (committed[i - 1] as Promise<void>) : Promise.resolve();
    // Held before it is looked for: a collection running now keeps what this unpack finds or makes.
    opts.onSnapshot?.(name);
    if (sn.has(name)) {
      await parentDone;
      opts.onEvent?.({ type: 'layer-exists', digest: layer.digest, chainID: name });
      return;
    }
    if (!parallel) await parentDone;
    const live = await opts.open?.(layer);
    if (!live) await ready(layer);
    const key = `extract-${randomBytes(6).toString('hex')} ${name}`;
    await acquire();
    let holding = true;
    try {
      opts.onSnapshot?.(key);
      try {
        await sn.prepare(key, { parent: parallel ? undefined : parent, labels: { [SNAPSHOT_REF_LABEL]: name } });
      } catch (err) {
        if (!hasCode(err, 'ALREADY_EXISTS') || !sn.has(name)) throw err;
        await parentDone;
        opts.onEvent?.({ type: 'layer-exists', digest: layer.digest, chainID: name });
        return;
      }
      try {
        const target = sn.applyTarget(key);
        const lowers = async (): Promise<string[]> => {
          // Waiting for the parent gives up the slot, so the parent can take it.
          if (holding) release();
          holding = false;
          await parentDone;
          await acquire();
          holding = true;
          return sn.stackDirs(parent as string);
        };
        await using reader = live ? undefined : await content.reader(layer, opts);
        const compressed = live ?? (reader as BlobReader).read({}, opts);
        const result = await applyLayer(target.root, decompress(compressed, layer.mediaType, opts), {
          ...opts,
          whiteouts: target.whiteouts,
          ...(parent ? { lowers } : {}),
        });
        if (result.diffID !== diffIDs[i]) {
          throw new DataLossError(`uncompressed digest ${result.diffID}, but the config says ${diffIDs[i]}`);
        }
        // Bytes read as they downloaded count once the store has checked their digest.
        if (live) await ready(layer);
        release();
        holding = false;
        await parentDone;
        try {
          await sn.commit(name, key, {
            parent: parallel ? parent : undefined,
            unpackedSize: result.unpackedSize,
            tarSize: result.tarSize,
            ...opts,
          });
          applied++;
          opts.onEvent?.({ type: 'layer-applied', digest: layer.digest, chainID: name, unpackedSize: result.unpackedSize });
        } catch (err) {
          if (!hasCode(err, 'ALREADY_EXISTS')) throw err;
          await sn.remove(key); // committed meanwhile by another unpack: theirs serves
        }
      } catch (err) {
        await sn.remove(key).catch(() => {});
        throw withContext(err, `unpack layer ${layer.digest}`);
      }
    } finally {
      if (holding) release();
    }
  };

  for (let i = 0; i < layers.length; i++) committed.push(one(i));
  const results = await Promise.allSettled(committed);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return { chainIDs: chain, applied };
}

/** The lease resource that holds a snapshot of `sn` against garbage collection. */
export function snapshotResource(sn: SnapshotService, key: string): LeaseResource {
  return { type: `snapshots/${sn.driver}`, id: key };
}

/**
 * The chainID of an image's top layer stack (none for an image without layers), unpacked first
 * when this namespace's snapshotter lacks it: what a container or a build starts from.
 */
export async function unpackedTop(ns: NamespaceScope, sn: SnapshotService, image: ResolvedImage): Promise<Digest | undefined> {
  const top = chainIDs(image.config.value.rootfs.diff_ids).at(-1);
  if (top !== undefined && !sn.has(top, 'committed')) await unpackUnderLease(ns, sn, image.manifestDesc);
  return top;
}

/** {@link unpack} under a lease of `ns`, which holds each extraction snapshot while it is filled. */
export function unpackUnderLease(
  ns: NamespaceScope,
  sn: SnapshotService,
  manifestDesc: Descriptor,
  opts: UnpackOpts = {},
): Promise<UnpackResult> {
  return ns.leases.withLease(
    (lease) =>
      unpack(ns.content, sn, manifestDesc, { ...opts, onSnapshot: (key) => ns.leases.addResource(lease.id, snapshotResource(sn, key)) }),
    { expiresIn: 24 * 3_600_000 },
  );
}
