// `store import`: images from a docker or containerd store on this machine into a namespace of
// berth, without a registry. containerd's blobs are copied and verified; docker's classic layers
// are rebuilt from tar-split and the layer's files, checked against the config's diff IDs, then
// compressed, so every image keeps its ID.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { compress } from '../archive/index.js';
import { LocalStore, type ProgressEvent, writeBlob } from '../content/index.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, withContext } from '../errdefs/index.js';
import { resolveImage, unpackUnderLease } from '../images/index.js';
import type { NamespaceScope } from '../metadata/index.js';
import {
  type Descriptor,
  type Digest,
  formatReference,
  hostPlatform,
  isIndex,
  isLayer,
  type Manifest,
  MediaType,
  parseReference,
  platformMatcher,
} from '../oci/index.js';
import {
  type ClassicImage,
  classicDriver,
  containerdPaths,
  readClassicImages,
  readContainerdStore,
  type StoreKind,
  tarSplitStream,
} from '../stores/index.js';
import type { Berth } from './berth.js';

export interface StoreImportOpts {
  /** Images to import, by name (familiar or full) or ID; all when empty. */
  images?: string[];
  /** containerd's namespace to read (default `default`; docker's containerd image store is `moby`). */
  sourceNamespace?: string;
  /** Where docker 24+ keeps images when it uses containerd's image store. */
  containerdRoot?: string;
  /** Copy containerd's blobs even where a hard link could share them. */
  copy?: boolean;
  onProgress?: (e: ProgressEvent, label: string) => void;
  onImage?: (e: { name: string; id: Digest }) => void;
  signal?: AbortSignal;
}

/** A stored name as berth keeps it: a whole reference, or the ID for an unnamed image. */
function fullName(name: string, id: Digest): string {
  try {
    return formatReference(parseReference(name));
  } catch {
    return id;
  }
}

/** Whether `want` (a name, familiar or full, or an ID or its prefix) names the image. */
function selects(want: string, name: string, id: Digest): boolean {
  if (want === name || want === id || (want.length >= 4 && /^[0-9a-f]+$/.test(want) && id.slice(7).startsWith(want))) return true;
  try {
    return formatReference(parseReference(want)) === fullName(name, id);
  } catch {
    return false;
  }
}

function pick<T>(all: T[], wanted: string[] | undefined, names: (x: T) => { name: string; id: Digest }[], where: string): T[] {
  if (!wanted?.length) return all;
  for (const w of wanted) {
    if (!all.some((x) => names(x).some((n) => selects(w, n.name, n.id)))) throw new NotFoundError(`${where}: no image "${w}"`);
  }
  return all.filter((x) => names(x).some((n) => wanted.some((w) => selects(w, n.name, n.id))));
}

/**
 * Imports images of a docker or containerd store at `root` into namespace `namespace`, and unpacks
 * them. Reads the foreign store only.
 * @throws NotFoundError for an image the store lacks; FailedPreconditionError for a layer that
 *   cannot be rebuilt exactly (no tar-split, files changed, a driver whose files berth cannot reach)
 */
export async function importStore(
  b: Berth,
  namespace: string,
  kind: StoreKind,
  root: string,
  opts: StoreImportOpts = {},
): Promise<{ name: string; id: Digest }[]> {
  const ns = b.namespace(namespace);
  const done: { name: string; id: Digest }[] = [];
  const finish = async (manifest: Descriptor, names: string[], id: Digest) => {
    await unpackUnderLease(ns, b.snapshotter(namespace), manifest).catch((err: unknown) => {
      for (const n of names) ns.images.delete(n);
      throw withContext(err, `import ${names.join(', ')}`);
    });
    for (const name of names) {
      done.push({ name, id });
      opts.onImage?.({ name, id });
    }
  };
  if (kind === 'docker') {
    const driver = classicDriver(root);
    if (driver) {
      const images = pick(
        readClassicImages(root, driver),
        opts.images,
        (c) => c.names.map((name) => ({ name, id: c.id })),
        `docker at ${root}`,
      );
      const rebuilt = new Map<Digest, Descriptor>();
      for (const c of images) {
        const names = c.names.map((n) => (n === '<none>' ? c.id : fullName(n, c.id)));
        const manifest = await ns.leases.withLease((lease) => importClassic(ns, lease.id, c, names, rebuilt, opts), {
          expiresIn: 24 * 3_600_000,
        });
        await finish(manifest, names, c.id);
      }
      return done;
    }
    // docker 24+ with the containerd image store: its images are containerd's, in namespace moby.
    const candidates = [opts.containerdRoot, join(root, 'containerd', 'daemon'), '/var/lib/containerd'].filter((d): d is string => !!d);
    const croot = candidates.find((d) => existsSync(join(d, containerdPaths.meta)));
    if (!existsSync(root)) throw new NotFoundError(`${root}: no such directory`);
    if (!croot)
      throw new InvalidArgumentError(`${root}: not a docker data root (no image/<driver>/repositories.json, and no containerd store)`);
    return importStore(b, namespace, 'containerd', croot, { ...opts, sourceNamespace: opts.sourceNamespace ?? 'moby' });
  }

  const source = opts.sourceNamespace ?? 'default';
  const matcher = platformMatcher(hostPlatform());
  const report = await readContainerdStore(root, { namespaces: [source], matcher });
  const content = new LocalStore(join(root, containerdPaths.content));
  for (const img of pick(report.images, opts.images, (i) => [{ name: i.name, id: i.id }], `containerd at ${root}, namespace ${source}`)) {
    const target = img.target as Descriptor;
    const resolved = await resolveImage(content, target, matcher, opts);
    const name = fullName(img.name, img.id);
    await ns.leases.withLease(
      async (lease) => {
        const blobs = [...(isIndex(target.mediaType) ? [target] : []), resolved.manifestDesc, resolved.manifest.value.config];
        blobs.push(...resolved.manifest.value.layers.filter((l) => isLayer(l.mediaType)));
        for (const d of blobs) {
          // On the same filesystem the blob is hard-linked (and verified); the write below then
          // finds it stored and only references it in the namespace.
          const linked = opts.copy ? 'copy' : await b.content.linkVerified(content.blobPath(d.digest), d);
          if (linked === 'linked')
            opts.onProgress?.({ ref: `import-${d.digest}`, offset: d.size, total: d.size }, `${name}: ${d.digest.slice(7, 19)} (linked)`);
          await using r = await content.reader(d, opts);
          await writeBlob(ns.content, `import-${d.digest}`, r.read(undefined, opts), {
            expected: d,
            ...(opts.signal ? { signal: opts.signal } : {}),
            onProgress: (e) => opts.onProgress?.(e, `${name}: ${d.digest.slice(7, 19)}`),
          });
          ns.leases.addResource(lease.id, { type: 'content', id: d.digest });
        }
        ns.images.put({ name, target });
      },
      { expiresIn: 24 * 3_600_000 },
    );
    await finish(resolved.manifestDesc, [name], img.id);
  }
  return done;
}

/** The tar rebuilt from tar-split, refused unless its digest is `diffID`. */
async function* checked(tar: AsyncIterable<Buffer>, diffID: Digest, what: string): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  for await (const chunk of tar) {
    hash.update(chunk);
    yield chunk;
  }
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== diffID) {
    throw new FailedPreconditionError(
      `${what}: the rebuilt tar is ${got}, not the image's diff ID ${diffID}; it cannot be imported exactly`,
    );
  }
}

/**
 * A classic image's config, its layers (rebuilt, gzip-compressed) and a docker manifest, stored
 * under `lease`; `rebuilt` keeps the layers of this import by diff ID, each made once.
 */
async function importClassic(
  ns: NamespaceScope,
  lease: string,
  c: ClassicImage,
  names: string[],
  rebuilt: Map<Digest, Descriptor>,
  opts: StoreImportOpts,
): Promise<Descriptor> {
  const label = names[0] ?? c.id;
  const store = async (
    ref: string,
    what: string,
    source: AsyncIterable<Uint8Array> | Uint8Array[],
    expected?: Pick<Descriptor, 'digest' | 'size'>,
  ) => {
    const r = await writeBlob(ns.content, ref, source, {
      ...(expected ? { expected } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      onProgress: (e) => opts.onProgress?.(e, `${label}: ${what}`),
    });
    ns.leases.addResource(lease, { type: 'content', id: r.digest });
    // A rebuilt layer's size is known only now: the last event says it is whole.
    if (!expected) opts.onProgress?.({ ref, offset: r.size, total: r.size }, `${label}: ${what}`);
    return r;
  };
  await store(`import-${c.id}`, 'config', [c.config], { digest: c.id, size: c.config.length });
  const layers: Descriptor[] = [];
  for (const l of c.layers) {
    const what = `docker layer ${l.diffID}`;
    const done = rebuilt.get(l.diffID);
    if (done) {
      ns.leases.addResource(lease, { type: 'content', id: done.digest });
      layers.push(done);
      continue;
    }
    if (!l.files)
      throw new FailedPreconditionError(
        `${what}: its graph driver keeps the files where berth cannot read them; import supports overlay2, overlay, fuse-overlayfs, vfs, btrfs and aufs`,
      );
    const tar = checked(tarSplitStream(join(l.dbDir, 'tar-split.json.gz'), l.files), l.diffID, what);
    const ref = `import-${l.diffID}-${randomBytes(4).toString('hex')}`;
    let r: Awaited<ReturnType<typeof store>>;
    try {
      r = await store(ref, `layer ${l.diffID.slice(7, 19)}`, compress(tar, 'gzip', opts));
    } catch (err) {
      await ns.content.abort(ref).catch(() => {});
      if (err instanceof NotFoundError) throw new FailedPreconditionError(`${what}: ${err.message}; it cannot be rebuilt exactly`);
      throw err;
    }
    const desc = { mediaType: MediaType.dockerLayerGzip, digest: r.digest, size: r.size };
    rebuilt.set(l.diffID, desc);
    layers.push(desc);
  }
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, digest: c.id, size: c.config.length },
    layers,
  };
  const r = await store(`import-manifest-${c.id}`, 'manifest', [Buffer.from(JSON.stringify(manifest))]);
  const desc = { mediaType: MediaType.dockerManifest, digest: r.digest, size: r.size };
  for (const name of names) ns.images.put({ name, target: desc });
  return desc;
}
