import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { detectCompression } from '../archive/index.js';
import { writeBlob } from '../content/index.js';
import { DataLossError, hasCode, InvalidArgumentError, ResourceExhaustedError } from '../errdefs/index.js';
import type { NamespaceScope } from '../metadata/index.js';
import {
  type Descriptor,
  type Digest,
  formatReference,
  isDigest,
  isIndex,
  isManifest,
  type Manifest,
  MediaType,
  maxManifestSize,
  parseIndex,
  parseReference,
} from '../oci/index.js';
import { readConfig, readManifest } from './image.js';

/** One member of an archive or a file of a layout directory, as the loader needs it. */
export interface ArchiveEntry {
  header: { name: string; type: string; size: number; linkname: string };
  body(): AsyncIterable<Uint8Array>;
}

export interface LoadOpts {
  signal?: AbortSignal;
  /** Refuse archives with more members than this (default 100,000: real archives hold a few per layer). */
  maxEntries?: number;
  /** Names for images the archive leaves unnamed (an OCI layout's manifests without a name annotation). */
  name?: string;
  /** Of an OCI layout, only the manifest whose `org.opencontainers.image.ref.name` is this. */
  refName?: string;
  onEvent?: (e: { type: 'blob'; path: string; size: number }) => void;
}

export interface LoadedImage {
  name: string;
  /** The config digest: the same as where the archive was made. */
  id: Digest;
  manifest: Descriptor;
}

const documents = new Set(['manifest.json', 'index.json', 'oci-layout', 'repositories']);

/**
 * Loads the images of an archive into the namespace: a docker-archive (`docker save`: manifest.json
 * with the legacy `<id>/layer.tar` layout or the OCI one of docker 25+) or an OCI image layout. Every
 * member streams into the content store as it comes (blobs under `blobs/` are checked against
 * their names); only the small index files are held, up to a manifest's size limit. Paths are
 * confined to the archive: absolute names, `..` and links that leave it are refused. Runs under a
 * lease until the image records point at what it stored.
 * @throws InvalidArgumentError for an archive that is not one of these, or hostile;
 *   ResourceExhaustedError past the member limit; DataLossError for a blob that does not match its name
 */
export async function loadArchive(ns: NamespaceScope, entries: AsyncIterable<ArchiveEntry>, opts: LoadOpts = {}): Promise<LoadedImage[]> {
  const maxEntries = opts.maxEntries ?? 100_000;
  return ns.leases.withLease(
    async (lease) => {
      const stored = new Map<string, Descriptor>();
      const links = new Map<string, string>();
      const small = new Map<string, Buffer>();
      let count = 0;
      for await (const e of entries) {
        if (++count > maxEntries) throw new ResourceExhaustedError(`archive: more than ${maxEntries} members; not an image archive`);
        const path = confine(e.header.name);
        if (path === '') continue;
        if (e.header.type === 'dir') continue;
        if (e.header.type === 'symlink' || e.header.type === 'link') {
          const target = e.header.type === 'symlink' ? posix.join(posix.dirname(path), e.header.linkname) : e.header.linkname;
          links.set(path, confine(target, e.header.name));
          continue;
        }
        if (e.header.type !== 'file') throw new InvalidArgumentError(`archive: "${e.header.name}" is a ${e.header.type}, not a file`);
        if (documents.has(path)) {
          if (e.header.size > maxManifestSize) throw new InvalidArgumentError(`archive: ${path} is larger than ${maxManifestSize} bytes`);
          const parts: Buffer[] = [];
          for await (const c of e.body()) parts.push(Buffer.from(c));
          small.set(path, Buffer.concat(parts));
          continue;
        }
        const m = /^blobs\/(sha256|sha512)\/([0-9a-f]+)$/.exec(path);
        const expected = m && isDigest(`${m[1]}:${m[2]}`) ? { digest: `${m[1]}:${m[2]}` as Digest, size: e.header.size } : undefined;
        // What the formats keep blobs in: blobs/<alg>/<hex>, <id>/layer.tar, <hex>.tar and <hex>.json
        // (skopeo); nothing empty is one. The rest (legacy json, VERSION) is skipped unread.
        if (!expected && (e.header.size === 0 || !/(^|\/)layer\.tar$|^[0-9a-f]{64}\.(tar|json)$/.test(path))) continue;
        const r = await writeBlob(ns.content, `load-${randomBytes(6).toString('hex')}`, e.body(), {
          ...(expected ? { expected } : {}),
          ...opts,
        }).catch((err) => {
          throw hasCode(err, 'FAILED_PRECONDITION') ? new DataLossError(`archive: ${path} does not match its name`, { cause: err }) : err;
        });
        ns.leases.addResource(lease.id, { type: 'content', id: r.digest });
        stored.set(path, { mediaType: '', digest: r.digest, size: r.size });
        opts.onEvent?.({ type: 'blob', path, size: r.size });
      }
      const resolve = (ref: string, what: string): Descriptor => {
        let p = confine(ref, what);
        for (let hops = 0; links.has(p) && hops < 16; hops++) p = links.get(p) as string;
        const d = stored.get(p);
        if (!d) throw new InvalidArgumentError(`archive: ${what} names "${ref}", which the archive does not hold`);
        return d;
      };

      const loaded: LoadedImage[] = [];
      const record = async (manifest: Descriptor, names: string[]) => {
        const m = await readManifest(ns.content, manifest, opts);
        const config = await readConfig(ns.content, m.value.config, opts);
        if (config.value.rootfs.diff_ids.length !== m.value.layers.length) {
          throw new InvalidArgumentError(
            `archive: image ${config.digest} names ${config.value.rootfs.diff_ids.length} diffIDs for ${m.value.layers.length} layers`,
          );
        }
        for (const name of names.length > 0 ? names : [`sha256:${config.digest.slice(7)}`]) {
          ns.images.put({ name, target: manifest });
          loaded.push({ name, id: config.digest, manifest });
        }
      };
      const index = small.has('index.json') ? parseIndex(small.get('index.json') as Buffer).value : undefined;
      const manifestJson = small.get('manifest.json');
      if (manifestJson) {
        const list = parseJSON(manifestJson, 'manifest.json') as { Config?: unknown; RepoTags?: unknown; Layers?: unknown }[];
        if (!Array.isArray(list)) throw new InvalidArgumentError('archive: manifest.json is not a list');
        for (const item of list) {
          if (typeof item?.Config !== 'string' || !Array.isArray(item.Layers) || !item.Layers.every((l) => typeof l === 'string')) {
            throw new InvalidArgumentError('archive: manifest.json: an entry without Config or Layers');
          }
          const config = resolve(item.Config, 'manifest.json');
          const layers = (item.Layers as string[]).map((l) => resolve(l, 'manifest.json'));
          const names = (Array.isArray(item.RepoTags) ? item.RepoTags : []).map((t) => formatReference(parseReference(String(t))));
          // docker 25+ (and berth) also write the OCI manifest: keep it, and with it the manifest digest.
          let manifest: Descriptor | undefined;
          for (const d of index?.manifests ?? []) {
            if (!isManifest(d.mediaType) || !(await has(ns, d))) continue;
            const m = await readManifest(ns.content, d, opts);
            if (m.value.config.digest === config.digest) manifest = { mediaType: d.mediaType, digest: d.digest, size: d.size };
          }
          manifest ??= await writeManifest(ns, lease.id, config, layers, opts);
          await record(manifest, names);
        }
      } else if (index) {
        if (!small.has('oci-layout')) throw new InvalidArgumentError('archive: index.json without oci-layout: not an OCI image layout');
        const picked = index.manifests.filter(
          (d) => opts.refName === undefined || d.annotations?.['org.opencontainers.image.ref.name'] === opts.refName,
        );
        if (picked.length === 0) throw new InvalidArgumentError(`layout: no manifest named "${opts.refName}" in index.json`);
        if (opts.name && picked.length > 1) {
          throw new InvalidArgumentError(`layout: index.json lists ${picked.length} manifests; name one with DIR:REF to give it a name`);
        }
        for (const d of picked) {
          if (!isManifest(d.mediaType) && !isIndex(d.mediaType)) continue;
          resolve(`blobs/${d.digest.replace(':', '/')}`, 'index.json');
          const a = d.annotations ?? {};
          const full = a['io.containerd.image.name'];
          // The name asked for; else containerd's and docker's annotation; else the OCI ref name when it
          // is a whole reference (skopeo writes `repo:tag` there), not just a tag; else it stays unnamed.
          const refName = a['org.opencontainers.image.ref.name'];
          let name: string | undefined;
          if (opts.name) name = formatReference(parseReference(opts.name));
          else if (full) name = formatReference(parseReference(full));
          else if (refName && /[:/]/.test(refName)) name = formatReference(parseReference(refName));
          const target = { mediaType: d.mediaType, digest: d.digest, size: d.size };
          if (isIndex(d.mediaType)) {
            ns.images.put({ name: name ?? `sha256:${d.digest.slice(7)}`, target });
            loaded.push({ name: name ?? d.digest, id: d.digest, manifest: target });
          } else await record(target, name ? [name] : []);
        }
      } else {
        throw new InvalidArgumentError('archive: neither manifest.json nor index.json: not a docker or OCI image archive');
      }
      return loaded;
    },
    { expiresIn: 3_600_000, labels: { 'berth.load': 'archive' } },
  );
}

/** A member's path inside the archive, or an error for one that would leave it. */
function confine(name: string, member = name): string {
  if (name.includes('\0') || posix.isAbsolute(name)) throw new InvalidArgumentError(`archive: "${member}": absolute or invalid path`);
  const p = posix.normalize(name).replace(/\/+$/, '');
  if (p === '..' || p.startsWith('../')) throw new InvalidArgumentError(`archive: "${member}": path leaves the archive`);
  return p === '.' ? '' : p.replace(/^\.\//, '');
}

function parseJSON(raw: Buffer, what: string): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new InvalidArgumentError(`archive: ${what} is not valid JSON`);
  }
}

async function has(ns: NamespaceScope, d: Descriptor): Promise<boolean> {
  try {
    await ns.content.info(d.digest);
    return true;
  } catch {
    return false;
  }
}

/** A docker manifest for a legacy archive's config and layers, each layer's media type from its first bytes. */
async function writeManifest(
  ns: NamespaceScope,
  lease: string,
  config: Descriptor,
  layers: Descriptor[],
  opts: { signal?: AbortSignal },
): Promise<Descriptor> {
  const types = { none: MediaType.dockerLayer, gzip: MediaType.dockerLayerGzip, zstd: MediaType.dockerLayerZstd };
  const described: Descriptor[] = [];
  for (const l of layers) {
    let head = new Uint8Array(0);
    await using r = await ns.content.reader(l, opts);
    for await (const c of r.read({ start: 0, end: Math.min(4, r.size) }, opts)) head = Buffer.concat([head, c]);
    described.push({ mediaType: types[detectCompression(head)], digest: l.digest, size: l.size });
  }
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, digest: config.digest, size: config.size },
    layers: described,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const r = await writeBlob(ns.content, `load-${randomBytes(6).toString('hex')}`, [bytes]);
  ns.leases.addResource(lease, { type: 'content', id: r.digest });
  return { mediaType: MediaType.dockerManifest, digest: r.digest, size: r.size };
}
