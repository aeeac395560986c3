import { readBlob } from '../content/index.js';
import { FailedPreconditionError, hasCode } from '../errdefs/index.js';
import type { NamespaceScope } from '../metadata/index.js';
import {
  type Descriptor,
  formatPlatform,
  formatReference,
  isIndex,
  isLayer,
  isManifest,
  isNonDistributable,
  maxManifestSize,
  type Platform,
  parseReference,
  platformMatcher,
  type Reference,
} from '../oci/index.js';
import { Repository, type Session } from '../remotes/index.js';
import { matchingManifests, readIndex, readManifest } from './image.js';
import { distributionSourceLabel, mapLimit, type TransferOpts } from './transfer.js';

export interface PushOpts extends TransferOpts {
  session: Session;
  /** Push only this platform's manifest of an index (the tag then names that manifest). */
  platform?: Platform;
  concurrency?: number;
}

export interface PushResult {
  reference: Reference;
  /** What the pushed tag (or digest) names. */
  desc: Descriptor;
}

/** A blob to push and the manifests to push after it. */
interface Plan {
  blobs: Descriptor[];
  /** Manifests and indexes, children before parents. */
  documents: Descriptor[];
  root: Descriptor;
}

async function plan(ns: NamespaceScope, target: Descriptor, opts: PushOpts): Promise<Plan> {
  const blobs = new Map<string, Descriptor>();
  const documents: Descriptor[] = [];
  let root = target;
  let manifests = [target];
  if (isIndex(target.mediaType)) {
    const index = await readIndex(ns.content, target, opts);
    if (opts.platform) {
      const [m] = matchingManifests(index.value, platformMatcher(opts.platform));
      if (!m) throw new FailedPreconditionError(`push: the image has no manifest for ${formatPlatform(opts.platform)}`);
      manifests = [m];
      root = m;
    } else {
      manifests = index.value.manifests;
      const missing: string[] = [];
      for (const m of manifests) {
        try {
          await ns.content.info(m.digest);
        } catch (err) {
          if (!hasCode(err, 'NOT_FOUND')) throw err;
          missing.push(m.platform ? formatPlatform(m.platform) : m.digest);
        }
      }
      if (missing.length > 0) {
        throw new FailedPreconditionError(
          `push: the index lists manifests that are not stored (${missing.join(', ')}); pull with --all-platforms, or push one --platform`,
        );
      }
    }
  }
  for (const m of manifests) {
    if (!isManifest(m.mediaType)) throw new FailedPreconditionError(`push: "${m.mediaType}" of ${m.digest} is not a manifest`);
    const manifest = await readManifest(ns.content, m, opts);
    for (const d of [manifest.value.config, ...manifest.value.layers]) {
      if (isNonDistributable(d.mediaType)) continue;
      try {
        await ns.content.info(d.digest);
      } catch (err) {
        if (hasCode(err, 'NOT_FOUND') && isLayer(d.mediaType)) {
          throw new FailedPreconditionError(
            `push: layer ${d.digest} is not in the content store (its compressed blob is dropped once unpacked when pulled with --discard-unpacked-layers); pull the image again with --no-discard-unpacked-layers to push it`,
          );
        }
        if (hasCode(err, 'NOT_FOUND'))
          throw new FailedPreconditionError(`push: blob ${d.digest} of ${m.digest} is not in the content store`);
        throw err;
      }
      blobs.set(d.digest, d);
    }
    documents.push(m);
  }
  if (root === target && isIndex(target.mediaType)) documents.push(target);
  return { blobs: [...blobs.values()], documents, root };
}

/**
 * Pushes the image named `source` in the namespace to `dest` (a reference; the source's own name
 * when absent). Blobs the registry has are skipped; blobs pulled from another repository of the
 * same registry are mounted; the rest are uploaded (in chunks when large). Manifests go last,
 * children first, byte for byte as stored, so digests and the image ID stay the same.
 */
export async function push(ns: NamespaceScope, source: string, dest: string | Reference | undefined, opts: PushOpts): Promise<PushResult> {
  const image = ns.images.get(source);
  const reference = dest === undefined ? parseReference(source) : typeof dest === 'string' ? parseReference(dest) : dest;
  const repo = new Repository(opts.session, reference);
  const p = await plan(ns, image.target, opts);
  if (reference.digest && reference.digest !== p.root.digest) {
    throw new FailedPreconditionError(`push "${formatReference(reference)}": the image is ${p.root.digest}`);
  }
  await mapLimit(p.blobs, opts.concurrency ?? 3, async (desc) => {
    if (await repo.blobExists(desc, opts)) {
      opts.onEvent?.({ type: 'done', desc, status: 'exists' });
      return;
    }
    const info = await ns.content.info(desc.digest);
    const from = info.labels[distributionSourceLabel(reference.domain)];
    if (from && from !== reference.path && (await repo.mountBlob(desc, from, opts))) {
      opts.onEvent?.({ type: 'done', desc, status: 'mounted' });
      return;
    }
    await repo.pushBlob(desc, (start, end) => readRange(ns, desc, start, end), {
      signal: opts.signal,
      onProgress: (offset) => opts.onEvent?.({ type: 'progress', desc, offset, total: desc.size }),
    });
    opts.onEvent?.({ type: 'done', desc, status: 'pushed' });
  });
  for (const d of p.documents) {
    const raw = await readBlob(ns.content, d, { maxSize: maxManifestSize, signal: opts.signal });
    const isRoot = d.digest === p.root.digest;
    await repo.pushManifest(d, raw, isRoot && reference.tag && !reference.digest ? reference.tag : d.digest, opts);
    opts.onEvent?.({ type: 'done', desc: d, status: 'pushed' });
  }
  return { reference, desc: p.root };
}

async function* readRange(ns: NamespaceScope, desc: Descriptor, start: number, end: number): AsyncIterable<Uint8Array> {
  await using r = await ns.content.reader(desc);
  yield* r.read({ start, end });
}
