import { statSync } from 'node:fs';
import type { LocalStore } from '../content/index.js';
import { Graph } from '../gc/index.js';
import { type MetadataDB, setSnapshotUsage } from '../metadata/index.js';
import { type Descriptor, type Digest, isIndex, isLayer, type PlatformMatcher } from '../oci/index.js';
import { type Driver, storedUsage } from '../snapshots/index.js';
import { matchingManifests } from './image.js';

/** One layer of an image, in every size it has. */
export interface LayerUsage {
  digest: Digest;
  mediaType: string;
  /** The compressed blob's size, as the manifest gives it. */
  compressed: number;
  /** Whether the compressed blob is in the store (it may have been dropped once unpacked). */
  stored: boolean;
  diffID: Digest;
  chainID: Digest;
  /** The uncompressed tar's bytes; null when unknown (not unpacked, or unpacked before berth recorded it). */
  tar: number | null;
  /** Sum of the files' sizes the layer added (docker's number); null when not unpacked. */
  unpacked: number | null;
  /** Disk usage of the layer's snapshot directory (du); null when not unpacked. */
  onDisk: number | null;
  /** The other images (`namespace/name`) that use this layer's blob or snapshot; filled by {@link StoreUsage.explain}. */
  sharedWith?: string[];
}

/** The size views of one image (DESIGN.md, "The size views of one image"). */
export interface ImageUsage {
  namespace: string;
  name: string;
  target: Descriptor;
  /** The config digest; undefined when the image's documents are not stored. */
  id?: Digest;
  /** The config's creation time (RFC 3339), when it has one. */
  created?: string;
  manifest?: Descriptor;
  layers: LayerUsage[];
  /** index + manifest + config + compressed layers of the platform: containerd's and crictl's number. */
  content: number;
  /** The part of `content` stored here (dropped layer blobs are not). */
  contentStored: number;
  /** Sum of the layers' unpacked sizes, docker's number; null unless every layer is unpacked. */
  unpacked: number | null;
  /** Disk usage of the image's snapshots (du). */
  snapshots: number;
  /** contentStored + snapshots: what the image holds on disk. */
  total: number;
  /** Of `total`, what no other image (here or in another namespace) uses, and what others share. */
  unique: number;
  shared: number;
  /** Containers of the namespace created from this image ID. */
  containers: number;
}

interface Part {
  size: number;
  users: Set<string>;
}

export interface UsageStores {
  db: MetadataDB;
  content: LocalStore;
  drivers: readonly Driver[];
}

/**
 * The size views of every image of every namespace, from what is stored: blob sizes from the files,
 * snapshot usage measured by walking each directory once (a committed snapshot's is kept, it cannot
 * change). A blob or snapshot counts once however many images use it; an image's unique part is what
 * no other image ID, in any namespace, uses.
 */
export async function imageUsage(stores: UsageStores, matcher: PlatformMatcher): Promise<StoreUsage> {
  const { db } = stores;
  const graph = new Graph(stores.content);
  const records = db.read(() =>
    db.all<{
      namespace: string;
      name: string;
      media_type: string;
      digest: Digest;
      size: number;
    }>('SELECT namespace, name, media_type, digest, size FROM images ORDER BY namespace, name'),
  );
  const rows = db.read(() =>
    db.all<{
      namespace: string;
      driver: string;
      key: string;
      id: number;
      size: number | null;
      inodes: number | null;
      unpacked_size: number | null;
      tar_size: number | null;
      kind: string;
    }>(`SELECT r.namespace, r.driver, r.key, s.id, s.size, s.inodes, s.unpacked_size, s.tar_size, s.kind
           FROM snapshot_refs r JOIN snapshots s ON s.id = r.snapshot`),
  );
  const snapshotOf = new Map(rows.map((r) => [`${r.namespace}\0${r.key}`, r]));
  const containers = new Map<string, number>();
  for (const c of db.read(() => db.all<{ namespace: string; image_id: string }>('SELECT namespace, image_id FROM containers'))) {
    const k = `${c.namespace}\0${c.image_id}`;
    containers.set(k, (containers.get(k) ?? 0) + 1);
  }

  const blobSize = new Map<string, number | undefined>();
  const sizeOfBlob = (d: string) => {
    if (!blobSize.has(d)) {
      try {
        blobSize.set(d, statSync(stores.content.blobPath(d as Digest)).size);
      } catch {
        blobSize.set(d, undefined);
      }
    }
    return blobSize.get(d);
  };
  const parts = new Map<string, Part>();
  const use = (key: string, size: number, user: string) => {
    let p = parts.get(key);
    if (!p) {
      p = { size, users: new Set() };
      parts.set(key, p);
    }
    p.users.add(user);
  };

  const out: (ImageUsage & { keys: string[]; layerKeys: string[][] })[] = [];
  for (const img of records) {
    const target: Descriptor = { mediaType: img.media_type, digest: img.digest, size: img.size };
    const u: ImageUsage & { keys: string[]; layerKeys: string[][] } = {
      namespace: img.namespace,
      name: img.name,
      target,
      layers: [],
      content: 0,
      contentStored: 0,
      unpacked: null,
      snapshots: 0,
      total: 0,
      unique: 0,
      shared: 0,
      containers: 0,
      keys: [],
      layerKeys: [],
    };
    out.push(u);
    let manifest: Descriptor | undefined = target;
    const docs: Descriptor[] = [];
    if (isIndex(target.mediaType)) {
      docs.push(target);
      const candidates = matchingManifests(
        { schemaVersion: 2, mediaType: target.mediaType, manifests: graph.edges(target).children },
        matcher,
      );
      manifest = candidates.find((c) => sizeOfBlob(c.digest) !== undefined);
    }
    if (!manifest || sizeOfBlob(manifest.digest) === undefined) continue;
    const children = graph.edges(manifest).children;
    const config = children[0];
    if (!config) continue;
    const cfg = graph.edges(config);
    u.manifest = manifest;
    u.id = config.digest;
    if (cfg.created !== undefined) u.created = cfg.created;
    u.containers = containers.get(`${img.namespace}\0${config.digest}`) ?? 0;
    docs.push(manifest, config);
    const user = `${img.namespace}\0${config.digest}`;
    for (const d of docs) {
      u.content += d.size;
      const stored = sizeOfBlob(d.digest);
      if (stored !== undefined) {
        u.contentStored += stored;
        use(`blob:${d.digest}`, stored, user);
        u.keys.push(`blob:${d.digest}`);
      }
    }
    const layers = children.slice(1).filter((l) => isLayer(l.mediaType));
    let unpacked: number | null = 0;
    for (const [i, l] of layers.entries()) {
      const stored = sizeOfBlob(l.digest);
      const keys: string[] = [];
      u.content += l.size;
      if (stored !== undefined) {
        u.contentStored += stored;
        use(`blob:${l.digest}`, stored, user);
        keys.push(`blob:${l.digest}`);
      }
      const chainID = cfg.chain?.[i];
      const snap = chainID ? snapshotOf.get(`${img.namespace}\0${chainID}`) : undefined;
      let onDisk: number | null = null;
      if (snap && snap.kind === 'committed') {
        const driver = stores.drivers.find((d) => d.name === snap.driver);
        onDisk = driver ? (await storedUsage(driver, snap, (id, u) => setSnapshotUsage(db, id, u))).size : 0;
        u.snapshots += onDisk;
        use(`snapshot:${snap.driver}:${snap.id}`, onDisk, user);
        keys.push(`snapshot:${snap.driver}:${snap.id}`);
      }
      if (unpacked !== null) unpacked = snap?.unpacked_size != null ? unpacked + snap.unpacked_size : null;
      u.layerKeys.push(keys);
      u.keys.push(...keys);
      u.layers.push({
        digest: l.digest,
        mediaType: l.mediaType,
        compressed: l.size,
        stored: stored !== undefined,
        diffID: cfg.diffIDs?.[i] as Digest,
        chainID: chainID as Digest,
        tar: snap?.tar_size ?? null,
        unpacked: snap?.unpacked_size ?? null,
        onDisk,
      });
    }
    u.unpacked = layers.length === 0 ? 0 : unpacked;
    u.total = u.contentStored + u.snapshots;
  }

  const names = new Map<string, string[]>();
  for (const u of out) {
    if (!u.id) continue;
    const user = `${u.namespace}\0${u.id}`;
    names.set(user, [...(names.get(user) ?? []), `${u.namespace}/${u.name}`]);
  }
  const partsOf = new Map<ImageUsage, { keys: string[]; layerKeys: string[][] }>();
  const images = out.map(({ keys, layerKeys, ...u }) => {
    partsOf.set(u, { keys, layerKeys });
    for (const k of new Set(keys)) {
      const p = parts.get(k) as Part;
      if (p.users.size === 1) u.unique += p.size;
      else u.shared += p.size;
    }
    return u;
  });
  const userOf = (u: ImageUsage) => `${u.namespace}\0${u.id}`;
  return {
    images,
    explain(u) {
      const user = userOf(u);
      const layerKeys = partsOf.get(u)?.layerKeys ?? [];
      return {
        ...u,
        layers: u.layers.map((l, i) => {
          const others = new Set<string>();
          for (const k of layerKeys[i] ?? []) for (const other of (parts.get(k) as Part).users) if (other !== user) others.add(other);
          return { ...l, sharedWith: [...others].flatMap((o) => names.get(o) ?? []).sort() };
        }),
      };
    },
    size(of) {
      const keys = new Set(of.flatMap((u) => partsOf.get(u)?.keys ?? []));
      return [...keys].reduce((n, k) => n + (parts.get(k) as Part).size, 0);
    },
    reclaimable(of) {
      const going = new Set(of.map(userOf));
      const keys = new Set(of.flatMap((u) => partsOf.get(u)?.keys ?? []));
      return [...keys].reduce((n, k) => {
        const p = parts.get(k) as Part;
        return [...p.users].every((x) => going.has(x)) ? n + p.size : n;
      }, 0);
    },
  };
}

/** The size views of all images, and sums over sets of them that count each blob and snapshot once. */
export interface StoreUsage {
  images: ImageUsage[];
  /** One image with each layer's `sharedWith` filled in. */
  explain(u: ImageUsage): ImageUsage;
  /** The disk space a set of images holds, each blob and snapshot once. */
  size(of: ImageUsage[]): number;
  /** What removing a set of images would free: the parts no image outside the set uses. */
  reclaimable(of: ImageUsage[]): number;
}
