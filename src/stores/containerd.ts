// containerd's store as it lies on disk: the metadata bbolt (namespaces, images, content and
// snapshot references), each snapshotter's own bbolt, and the content store's blobs.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LocalStore } from '../content/index.js';
import { hasCode, InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { resolveImage } from '../images/index.js';
import { chainIDs, type Descriptor, type Digest, isDigest, isIndex, isLayer, type PlatformMatcher } from '../oci/index.js';
import { diskUsage } from '../snapshots/index.js';
import { type BoltBucket, readBolt } from './bbolt.js';
import { fileBytes, shareParts } from './sizes.js';
import type { StoreImage, StoreLayer, StoreReport } from './types.js';

export const containerdPaths = {
  meta: 'io.containerd.metadata.v1.bolt/meta.db',
  content: 'io.containerd.content.v1.content',
  snapshotter: (name: string) => `io.containerd.snapshotter.v1.${name}`,
};

/** Go's binary.Varint: a zigzag LEB128 integer. */
export function readVarint(buf: Buffer | undefined): number | undefined {
  if (!buf || buf.length === 0) return undefined;
  let u = 0n;
  let shift = 0n;
  for (const b of buf) {
    u |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return Number(u & 1n ? -((u >> 1n) + 1n) : u >> 1n);
    shift += 7n;
    if (shift > 63n) return undefined;
  }
  return undefined;
}

/** Go's binary.Uvarint. */
function readUvarint(buf: Buffer | undefined): number | undefined {
  if (!buf || buf.length === 0) return undefined;
  let u = 0n;
  let shift = 0n;
  for (const b of buf) {
    u |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return Number(u);
    shift += 7n;
    if (shift > 63n) return undefined;
  }
  return undefined;
}

interface NamespaceMeta {
  name: string;
  images: { name: string; target: Descriptor }[];
  /** snapshotter → snapshot key (a chain ID for an unpacked layer) → the snapshotter's own key. */
  snapshots: Map<string, Map<string, string>>;
}

interface SnapshotInfo {
  id: string;
  kind: number;
  size?: number;
  inodes?: number;
}

const kindCommitted = 3;

function readTarget(b: BoltBucket | undefined, what: string): Descriptor {
  const digest = b?.text('digest');
  const mediaType = b?.text('mediatype');
  const size = readVarint(b?.get('size'));
  if (!digest || !isDigest(digest) || !mediaType || size === undefined || size < 0) {
    throw new InvalidArgumentError(`${what}: its target is damaged (digest, media type or size missing)`);
  }
  return { mediaType, digest, size };
}

/** The namespaces, images and snapshot references of containerd's metadata database. */
export function readContainerdMeta(root: string): NamespaceMeta[] {
  const path = join(root, containerdPaths.meta);
  if (!existsSync(path)) {
    if (!existsSync(root)) throw new NotFoundError(`${root}: no such directory`);
    throw new InvalidArgumentError(`${root}: not a containerd root (no ${containerdPaths.meta})`);
  }
  return readBolt(path, (db) => {
    const v1 = db.root().bucket('v1');
    if (!v1) throw new InvalidArgumentError(`${path}: no "v1" bucket; not containerd's metadata (or a schema this berth does not know)`);
    const out: NamespaceMeta[] = [];
    for (const ns of v1.entries()) {
      if (!ns.bucket) continue;
      const name = ns.key.toString('utf8');
      const images: NamespaceMeta['images'] = [];
      for (const img of ns.bucket.bucket('images')?.entries() ?? []) {
        const imageName = img.key.toString('utf8');
        images.push({ name: imageName, target: readTarget(img.bucket?.bucket('target'), `${path}: image "${imageName}"`) });
      }
      const snapshots = new Map<string, Map<string, string>>();
      for (const sn of ns.bucket.bucket('snapshots')?.entries() ?? []) {
        const keys = new Map<string, string>();
        for (const s of sn.bucket?.entries() ?? []) {
          const backend = s.bucket?.text('name');
          if (backend) keys.set(s.key.toString('utf8'), backend);
        }
        snapshots.set(sn.key.toString('utf8'), keys);
      }
      out.push({ name, images, snapshots });
    }
    return out;
  });
}

/** A snapshotter's own records (overlayfs and native keep them in `metadata.db`), by its key. */
function readSnapshotter(root: string, snapshotter: string): Map<string, SnapshotInfo> {
  const path = join(root, containerdPaths.snapshotter(snapshotter), 'metadata.db');
  const out = new Map<string, SnapshotInfo>();
  if (!existsSync(path)) return out;
  readBolt(path, (db) => {
    for (const s of db.root().bucket('v1', 'snapshots')?.entries() ?? []) {
      const id = readUvarint(s.bucket?.get('id'));
      const kind = s.bucket?.get('kind')?.[0];
      if (id === undefined || kind === undefined) continue;
      const info: SnapshotInfo = { id: String(id), kind };
      const size = readVarint(s.bucket?.get('size'));
      const inodes = readVarint(s.bucket?.get('inodes'));
      if (size !== undefined) info.size = size;
      if (inodes !== undefined) info.inodes = inodes;
      out.set(s.key.toString('utf8'), info);
    }
  });
  return out;
}

export interface ContainerdReadOpts {
  /** The namespaces to explain; all when undefined. */
  namespaces?: string[];
  matcher: PlatformMatcher;
}

/**
 * Reads containerd's store at `root` without its daemon and without writing: every image of the
 * namespaces with its sizes as ctr (content), docker (unpacked files) and du (snapshots) count them.
 * @throws NotFoundError for a missing root; InvalidArgumentError for a directory that is not
 *   containerd's; DataLossError for a damaged database
 */
export async function readContainerdStore(root: string, opts: ContainerdReadOpts): Promise<StoreReport> {
  const meta = readContainerdMeta(root);
  const wanted = opts.namespaces ? meta.filter((n) => opts.namespaces?.includes(n.name)) : meta;
  for (const n of opts.namespaces ?? []) {
    if (!meta.some((m) => m.name === n))
      throw new NotFoundError(`containerd at ${root}: no namespace "${n}" (it has ${meta.map((m) => m.name).join(', ') || 'none'})`);
  }
  const content = new LocalStore(join(root, containerdPaths.content));
  const snapshotters = new Map<string, Map<string, SnapshotInfo>>();
  const snapshotterOf = (name: string) => {
    const s = snapshotters.get(name) ?? readSnapshotter(root, name);
    snapshotters.set(name, s);
    return s;
  };
  const blobSize = (d: Digest) => content.existsSync(d)?.size;
  const measured = new Map<string, { onDisk: number; unpacked: number }>();
  const images: StoreImage[] = [];
  // Every namespace is read, for what the wanted ones share with the others.
  for (const ns of meta) {
    for (const rec of ns.images) {
      const img = await readImage(rec, ns, content, opts.matcher, blobSize);
      if (!img) continue;
      for (const l of img.layers) {
        for (const [name, keys] of ns.snapshots) {
          const backend = keys.get(l.chainID);
          const info = backend ? snapshotterOf(name).get(backend) : undefined;
          if (!info) continue;
          const dir = join(root, containerdPaths.snapshotter(name), 'snapshots', info.id);
          const key = `snapshot:${name}:${info.id}`;
          let m = measured.get(key);
          if (!m) {
            const onDisk =
              info.kind === kindCommitted && info.size !== undefined ? info.size : (await diskUsage(dir).catch(() => ({ size: 0 }))).size;
            m = { onDisk, unpacked: await fileBytes(join(dir, 'fs')).catch(() => 0) };
            measured.set(key, m);
          }
          l.onDisk = m.onDisk;
          l.unpacked = m.unpacked;
          l.dir = join(dir, 'fs');
          img.parts.push({ key, size: m.onDisk });
          break;
        }
      }
      img.unpackedSize = img.layers.every((l) => l.unpacked !== null) ? img.layers.reduce((n, l) => n + (l.unpacked ?? 0), 0) : null;
      images.push(img);
    }
  }
  shareParts(images);
  const shown = images.filter((i) => wanted.includes(meta.find((n) => n.name === i.namespace) as NamespaceMeta));

  let blobs = 0;
  let blobBytes = 0;
  for (const alg of safeReaddir(join(content.root, 'blobs'))) {
    for (const hex of safeReaddir(join(content.root, 'blobs', alg))) {
      blobs++;
      blobBytes += statSync(join(content.root, 'blobs', alg, hex), { throwIfNoEntry: false })?.size ?? 0;
    }
  }
  let snaps = 0;
  let snapBytes = 0;
  for (const name of new Set(meta.flatMap((n) => [...n.snapshots.keys()]))) {
    for (const info of snapshotterOf(name).values()) {
      snaps++;
      snapBytes += measured.get(`snapshot:${name}:${info.id}`)?.onDisk ?? (info.kind === kindCommitted ? (info.size ?? 0) : 0);
    }
  }
  return {
    kind: 'containerd',
    root,
    layout: 'containerd',
    namespaces: wanted.map((n) => n.name),
    images: shown,
    totals: { images: shown.length, blobs: { count: blobs, size: blobBytes }, snapshots: { count: snaps, size: snapBytes } },
  };
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** An image's documents and layers from the content store, or undefined when its manifest is not stored. */
async function readImage(
  rec: NamespaceMeta['images'][number],
  ns: NamespaceMeta,
  content: LocalStore,
  matcher: PlatformMatcher,
  blobSize: (d: Digest) => number | undefined,
): Promise<StoreImage | undefined> {
  let resolved: Awaited<ReturnType<typeof resolveImage>>;
  try {
    resolved = await resolveImage(content, rec.target, matcher);
  } catch (err) {
    if (hasCode(err, 'NOT_FOUND')) return undefined;
    throw err;
  }
  const { manifestDesc, manifest, config } = resolved;
  const diffIDs = (config.value.rootfs?.diff_ids ?? []) as Digest[];
  const chains = chainIDs(diffIDs);
  const layerDescs = manifest.value.layers.filter((l) => isLayer(l.mediaType));
  if (diffIDs.length !== layerDescs.length) {
    throw new InvalidArgumentError(`image "${rec.name}": its config lists ${diffIDs.length} diff IDs for ${layerDescs.length} layers`);
  }
  const img: StoreImage = {
    store: 'containerd',
    namespace: ns.name,
    name: rec.name,
    id: manifest.value.config.digest,
    target: rec.target,
    manifest: manifestDesc,
    layers: [],
    contentSize: (isIndex(rec.target.mediaType) ? rec.target.size : 0) + manifestDesc.size + manifest.value.config.size,
    unpackedSize: null,
    onDisk: 0,
    unique: 0,
    shared: 0,
    parts: [],
  };
  const docs = isIndex(rec.target.mediaType) ? [rec.target, manifestDesc, manifest.value.config] : [manifestDesc, manifest.value.config];
  for (const d of docs) {
    const size = blobSize(d.digest);
    if (size !== undefined) img.parts.push({ key: `blob:${d.digest}`, size });
  }
  for (const [i, l] of layerDescs.entries()) {
    img.contentSize = (img.contentSize ?? 0) + l.size;
    const layer: StoreLayer = {
      diffID: diffIDs[i] as Digest,
      chainID: chains[i] as Digest,
      digest: l.digest,
      compressed: l.size,
      unpacked: null,
      onDisk: null,
    };
    img.layers.push(layer);
    const size = blobSize(l.digest);
    if (size !== undefined) img.parts.push({ key: `blob:${l.digest}`, size });
  }
  return img;
}
