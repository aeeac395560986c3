import type { Provider } from '../content/index.js';
import { readBlob } from '../content/index.js';
import { FailedPreconditionError, hasCode, NotFoundError } from '../errdefs/index.js';
import {
  type Descriptor,
  type Digest,
  formatPlatform,
  type ImageConfig,
  type Index,
  isIndex,
  isManifest,
  type Manifest,
  maxConfigSize,
  maxManifestSize,
  type Parsed,
  type Platform,
  type PlatformMatcher,
  parseImageConfig,
  parseIndex,
  parseManifest,
} from '../oci/index.js';

/** An image resolved to one platform: the documents of its hash chain, as stored. */
export interface ResolvedImage {
  target: Descriptor;
  index?: Parsed<Index>;
  manifestDesc: Descriptor;
  manifest: Parsed<Manifest>;
  config: Parsed<ImageConfig>;
}

/** The image ID: the digest of the config, which names every layer's diffID. */
export function imageId(r: ResolvedImage): Digest {
  return r.config.digest;
}

/** containerd's and crictl's size: index + manifest + config + compressed layers of the platform. */
export function contentSize(r: ResolvedImage): number {
  return (
    (r.index?.raw.byteLength ?? 0) +
    r.manifest.raw.byteLength +
    r.config.raw.byteLength +
    r.manifest.value.layers.reduce((n, l) => n + l.size, 0)
  );
}

export async function readManifest(store: Provider, desc: Descriptor, opts: { signal?: AbortSignal } = {}): Promise<Parsed<Manifest>> {
  return parseManifest(await readBlob(store, desc, { maxSize: maxManifestSize, ...opts }), desc.mediaType);
}

export async function readIndex(store: Provider, desc: Descriptor, opts: { signal?: AbortSignal } = {}): Promise<Parsed<Index>> {
  return parseIndex(await readBlob(store, desc, { maxSize: maxManifestSize, ...opts }), desc.mediaType);
}

export async function readConfig(store: Provider, desc: Descriptor, opts: { signal?: AbortSignal } = {}): Promise<Parsed<ImageConfig>> {
  return parseImageConfig(await readBlob(store, desc, { maxSize: maxConfigSize, ...opts }));
}

/** The index entries a platform matcher accepts, best first. */
export function matchingManifests(index: Index, matcher: PlatformMatcher): Descriptor[] {
  return index.manifests
    .filter((m) => isManifest(m.mediaType) && m.platform && matcher.match(m.platform))
    .sort((a, b) =>
      matcher.less(a.platform as Platform, b.platform as Platform)
        ? -1
        : matcher.less(b.platform as Platform, a.platform as Platform)
          ? 1
          : 0,
    );
}

/**
 * Reads an image's documents from the store for one platform: through the index to the best
 * matching manifest that is present, then the manifest and its config.
 * @throws NotFoundError when no manifest for the platform is stored
 */
export async function resolveImage(
  store: Provider,
  target: Descriptor,
  matcher: PlatformMatcher,
  opts: { signal?: AbortSignal } = {},
): Promise<ResolvedImage> {
  let index: Parsed<Index> | undefined;
  let manifestDesc = target;
  if (isIndex(target.mediaType)) {
    index = await readIndex(store, target, opts);
    const candidates = matchingManifests(index.value, matcher);
    let found: Descriptor | undefined;
    for (const c of candidates) {
      try {
        await store.reader(c, opts).then((r) => r.close());
        found = c;
        break;
      } catch (err) {
        if (!hasCode(err, 'NOT_FOUND')) throw err;
      }
    }
    if (!found) {
      const have = index.value.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : m.digest)).join(', ');
      throw new NotFoundError(`image ${target.digest}: no stored manifest for the platform (the index lists ${have || 'nothing'})`);
    }
    manifestDesc = found;
  } else if (!isManifest(target.mediaType)) {
    throw new FailedPreconditionError(`image ${target.digest}: "${target.mediaType}" is neither a manifest nor an index`);
  }
  const manifest = await readManifest(store, manifestDesc, opts);
  const config = await readConfig(store, manifest.value.config, opts);
  const r: ResolvedImage = { target, manifestDesc, manifest, config };
  if (index) r.index = index;
  return r;
}
