import { encodeHeader, headerOf, TAR_END, tarPadding } from '../archive/index.js';
import { FailedPreconditionError, hasCode } from '../errdefs/index.js';
import type { NamespaceScope } from '../metadata/index.js';
import {
  type Descriptor,
  digestAlgorithm,
  digestHex,
  familiarString,
  type Index,
  isLayer,
  MediaType,
  parseReference,
} from '../oci/index.js';
import type { ResolvedImage } from './image.js';

/** One file of an image archive or layout: its path, size and bytes. */
export interface ArchiveFile {
  path: string;
  size: number;
  body(): AsyncIterable<Uint8Array>;
}

export interface SaveOpts {
  signal?: AbortSignal;
  /** `docker`: an OCI image layout plus docker's manifest.json (what docker 25+ writes, and every docker load reads); `oci`: the layout alone. */
  format?: 'docker' | 'oci';
}

/**
 * The files of an archive of `images` (each resolved to one platform), blobs as stored — so image
 * IDs and manifest digests are kept — each blob once: `blobs/<alg>/<hex>`, `oci-layout`,
 * `index.json` (each manifest annotated with its name, as containerd and docker write it) and, in
 * docker format, `manifest.json` (Config, RepoTags, Layers).
 * @throws FailedPreconditionError when a layer is not stored (dropped after unpacking)
 */
export async function archiveFiles(
  ns: NamespaceScope,
  images: { name: string; resolved: ResolvedImage }[],
  opts: SaveOpts = {},
): Promise<ArchiveFile[]> {
  const blobs = new Map<string, Descriptor>();
  const index: Index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
  const dockerManifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const byId = new Map<string, (typeof dockerManifest)[number]>();
  for (const { name, resolved } of images) {
    const m = resolved.manifest.value;
    for (const l of m.layers) {
      try {
        await ns.content.info(l.digest, opts);
      } catch (err) {
        if (!hasCode(err, 'NOT_FOUND') || !isLayer(l.mediaType)) throw err;
        throw new FailedPreconditionError(
          `save ${name}: layer ${l.digest} is not in the content store (its compressed blob is dropped once unpacked when pulled with --discard-unpacked-layers); pull the image again with --no-discard-unpacked-layers to save it`,
        );
      }
    }
    for (const d of [resolved.manifestDesc, m.config, ...m.layers]) blobs.set(d.digest, d);
    let ref: ReturnType<typeof parseReference> | undefined;
    try {
      ref = parseReference(name);
    } catch {
      // named by its ID only
    }
    const annotations: Record<string, string> = { 'io.containerd.image.name': name };
    if (ref?.tag !== undefined) annotations['org.opencontainers.image.ref.name'] = ref.tag;
    index.manifests.push({
      mediaType: resolved.manifestDesc.mediaType,
      digest: resolved.manifestDesc.digest,
      size: resolved.manifestDesc.size,
      annotations,
    });
    let entry = byId.get(m.config.digest);
    if (!entry) {
      entry = { Config: blobPath(m.config), RepoTags: [], Layers: m.layers.map(blobPath) };
      byId.set(m.config.digest, entry);
      dockerManifest.push(entry);
    }
    if (ref?.tag !== undefined) entry.RepoTags.push(familiarString({ ...ref, digest: undefined }));
  }
  const json = (path: string, value: unknown): ArchiveFile => {
    const bytes = Buffer.from(JSON.stringify(value));
    return {
      path,
      size: bytes.length,
      body: async function* () {
        yield bytes;
      },
    };
  };
  const files: ArchiveFile[] = [...blobs.values()].map((d) => ({
    path: blobPath(d),
    size: d.size,
    body: async function* () {
      await using r = await ns.content.reader(d, opts);
      yield* r.read(undefined, opts);
    },
  }));
  files.push(json('oci-layout', { imageLayoutVersion: '1.0.0' }), json('index.json', index));
  if ((opts.format ?? 'docker') === 'docker') files.push(json('manifest.json', dockerManifest));
  return files;
}

const blobPath = (d: Pick<Descriptor, 'digest'>) => `blobs/${digestAlgorithm(d.digest)}/${digestHex(d.digest)}`;

/** The files as one tar stream (directories first, times zero: the same images give the same bytes). */
export async function* tarFiles(files: ArchiveFile[]): AsyncGenerator<Uint8Array> {
  const dirs = new Set<string>();
  for (const f of files) for (let i = f.path.indexOf('/'); i > 0; i = f.path.indexOf('/', i + 1)) dirs.add(f.path.slice(0, i));
  const header = (name: string, type: 'dir' | 'file', size: number) =>
    encodeHeader(headerOf({ name, type, mode: type === 'dir' ? 0o755 : 0o644, size }));
  for (const d of [...dirs].sort()) yield header(`${d}/`, 'dir', 0);
  for (const f of files) {
    yield header(f.path, 'file', f.size);
    let n = 0;
    for await (const chunk of f.body()) {
      n += chunk.byteLength;
      yield chunk;
    }
    if (n !== f.size) throw new FailedPreconditionError(`save: ${f.path} has ${n} bytes, ${f.size} expected`);
    yield tarPadding(f.size);
  }
  yield TAR_END;
}
