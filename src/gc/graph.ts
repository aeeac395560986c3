import type { LocalStore } from '../content/index.js';
import {
  chainIDs,
  type Descriptor,
  type Digest,
  isDigest,
  isIndex,
  isManifest,
  MediaType,
  maxConfigSize,
  maxManifestSize,
  parseImageConfig,
  parseIndex,
  parseManifest,
} from '../oci/index.js';
import { readFileUpTo } from '../sys/index.js';

/** containerd's labels, honoured as containerd does: a root, and references to more content or snapshots. */
export const GC_ROOT_LABEL = 'containerd.io/gc.root';
const GC_REF_CONTENT = 'containerd.io/gc.ref.content';
const GC_REF_SNAPSHOT = 'containerd.io/gc.ref.snapshot.';

/** What a stored document points at: more content, and the top layer stack an image config names. */
export interface Edges {
  /** Index: its manifests (with platforms); manifest: its config, then its layers. */
  children: Descriptor[];
  /** The config's diffIDs and creation time (configs only). */
  diffIDs?: Digest[];
  created?: string;
  /** The chainID of all the config's layers: the committed snapshot an unpacked image ends in. */
  chainTop?: Digest;
  /** The chainID of every layer stack, bottom first (configs only). */
  chain?: Digest[];
}

const none: Edges = { children: [] };
const configTypes = new Set<string>([MediaType.ociConfig, MediaType.dockerConfig]);

/**
 * Reads the edges of the store's documents synchronously (so a collection can walk them inside one
 * database transaction), each blob once, at most a manifest's or config's size limit. A blob that is
 * missing, too large or not a document has no edges.
 */
export class Graph {
  readonly #content: LocalStore;
  readonly #cache = new Map<string, Edges>();

  constructor(content: LocalStore) {
    this.#content = content;
  }

  /** The edges of blob `desc`; a descriptor without a known media type is sniffed. */
  edges(desc: { digest: string; mediaType?: string | undefined }): Edges {
    const key = `${desc.mediaType ?? ''}\0${desc.digest}`;
    let e = this.#cache.get(key);
    if (!e) {
      e = this.#read(desc.digest, desc.mediaType);
      this.#cache.set(key, e);
    }
    return e;
  }

  #read(digest: string, mediaType: string | undefined): Edges {
    if (!isDigest(digest)) return none;
    const known = mediaType !== undefined && (isIndex(mediaType) || isManifest(mediaType) || configTypes.has(mediaType));
    if (mediaType !== undefined && !known && mediaType !== '') return none;
    let raw: Uint8Array | undefined;
    try {
      raw = readFileUpTo(this.#content.blobPath(digest), Math.max(maxManifestSize, maxConfigSize));
    } catch {
      return none; // missing (a dropped layer, a document not pulled)
    }
    if (!raw || raw.byteLength === 0) return none;
    try {
      const type = known ? (mediaType as string) : sniff(raw);
      if (type === undefined) return none;
      if (isIndex(type)) return { children: parseIndex(raw).value.manifests };
      if (isManifest(type)) {
        const m = parseManifest(raw).value;
        return { children: [m.config, ...m.layers] };
      }
      const config = parseImageConfig(raw).value;
      const diffIDs = config.rootfs.diff_ids;
      const chain = chainIDs(diffIDs);
      const top = chain[chain.length - 1];
      const e: Edges = { children: [], diffIDs, chain };
      if (top !== undefined) e.chainTop = top;
      if (config.created !== undefined) e.created = config.created;
      return e;
    } catch {
      return none; // not a document we know: a leaf
    }
  }
}

/** The media type a JSON document of unknown type has, by its shape. */
function sniff(raw: Uint8Array): string | undefined {
  if (raw[0] !== 0x7b) return undefined;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof v.mediaType === 'string' && (isIndex(v.mediaType) || isManifest(v.mediaType))) return v.mediaType;
  if (Array.isArray(v.manifests)) return MediaType.ociIndex;
  if (Array.isArray(v.layers) && v.config) return MediaType.ociManifest;
  if (v.rootfs) return MediaType.ociConfig;
  return undefined;
}

/** The digests a containerd `gc.ref.content` label set names. */
export function contentRefLabels(labels: Record<string, string>): string[] {
  return Object.entries(labels)
    .filter(([k, v]) => (k === GC_REF_CONTENT || k.startsWith(`${GC_REF_CONTENT}.`)) && isDigest(v))
    .map(([, v]) => v);
}

/** The snapshots (driver, key) containerd `gc.ref.snapshot.<snapshotter>` labels name. */
export function snapshotRefLabels(labels: Record<string, string>): { driver: string; key: string }[] {
  return Object.entries(labels)
    .filter(([k]) => k.startsWith(GC_REF_SNAPSHOT))
    .map(([k, v]) => ({ driver: k.slice(GC_REF_SNAPSHOT.length).split('.')[0] as string, key: v }));
}
