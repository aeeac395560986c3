import { randomBytes } from 'node:crypto';
import { compress } from '../archive/index.js';
import { writeBlob } from '../content/index.js';
import { applyConfig, instruction, ShellLex } from '../dockerfile/index.js';
import { InvalidArgumentError } from '../errdefs/index.js';
import type { Image, NamespaceScope } from '../metadata/index.js';
import {
  type ContainerConfig,
  type Descriptor,
  type Digest,
  Digester,
  type HistoryEntry,
  hostPlatform,
  type ImageConfig,
  type Manifest,
  MediaType,
} from '../oci/index.js';
import type { ResolvedImage } from './image.js';

export interface CommitOpts {
  signal?: AbortSignal;
  /** The image record to create or move (a full reference); none leaves a dangling image. */
  name?: string;
  /** The image config's `config` for the new image (docker: the container's, with `--change` applied). */
  config?: ContainerConfig;
  comment?: string;
  author?: string;
  /** The history entry's `created_by` (docker: the container's command). */
  createdBy?: string;
}

export interface CommitResult {
  manifest: Descriptor;
  imageId: Digest;
  layer: Descriptor;
  diffID: Digest;
  image?: Image;
}

/** Whether an image uses docker's media types (its layers and config then keep them). */
export function usesDockerTypes(image: ResolvedImage | undefined): boolean {
  return (
    image !== undefined &&
    (image.manifest.value.mediaType === MediaType.dockerManifest || image.manifestDesc.mediaType === MediaType.dockerManifest)
  );
}

export interface WrittenLayer {
  layer: Descriptor;
  diffID: Digest;
  /** Bytes of the uncompressed tar (1024 for a tar with no entries). */
  tarSize: number;
}

/**
 * Writes one layer into the store from its uncompressed tar (streamed: hashed for its diffID and
 * gzipped as it arrives), held by `lease`. gzip at one level from one zlib gives the same bytes
 * for the same tar, so a reproducible tar gives a reproducible blob.
 */
export async function writeLayer(
  ns: NamespaceScope,
  lease: string,
  layerTar: AsyncIterable<Uint8Array>,
  opts: { docker?: boolean; signal?: AbortSignal } = {},
): Promise<WrittenLayer> {
  const diff = new Digester();
  let tarSize = 0;
  const counted = async function* () {
    for await (const chunk of layerTar) {
      diff.update(chunk);
      tarSize += chunk.length;
      yield chunk;
    }
  };
  const ref = `layer-${randomBytes(8).toString('hex')}`;
  const blob = await writeBlob(ns.content, ref, compress(counted(), 'gzip', opts), { signal: opts.signal });
  ns.leases.addResource(lease, { type: 'content', id: blob.digest });
  const layer: Descriptor = {
    mediaType: opts.docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip,
    digest: blob.digest,
    size: blob.size,
  };
  return { layer, diffID: diff.digest(), tarSize };
}

/**
 * Writes an image's config (keys in the order of the spec's Go types, as skopeo, umoci and
 * BuildKit write them: a peer that decodes and encodes it again gets the same bytes, and the same
 * image ID) and its manifest, held by `lease`; names it `name` (or its digest: a dangling image).
 */
export async function writeImage(
  ns: NamespaceScope,
  lease: string,
  config: ImageConfig,
  layers: Descriptor[],
  opts: { docker?: boolean; name?: string } = {},
): Promise<{ manifest: Descriptor; imageId: Digest; image: Image }> {
  const configBlob = await putJSON(ns, Buffer.from(JSON.stringify(configInGoOrder(config))), lease);
  const docker = opts.docker ?? false;
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.dockerManifest : MediaType.ociManifest,
    config: { mediaType: docker ? MediaType.dockerConfig : MediaType.ociConfig, digest: configBlob.digest, size: configBlob.size },
    layers,
  };
  const m = await putJSON(ns, Buffer.from(JSON.stringify(manifest)), lease);
  const manifestDesc: Descriptor = { mediaType: manifest.mediaType, digest: m.digest, size: m.size };
  // A commit without a name is kept by an image named after its digest (docker shows it as <none>).
  const image = ns.images.put({ name: opts.name ?? `sha256:${configBlob.digest.slice(7)}`, target: manifestDesc });
  return { manifest: manifestDesc, imageId: configBlob.digest, image };
}

/** An image config's keys in the order of the OCI spec's Go types (others after, as they were). */
export function configInGoOrder(old: ImageConfig): ImageConfig {
  const { created, author, architecture, os, variant, config: runConfig, rootfs, history, ...rest } = old;
  const {
    'os.version': osVersion,
    'os.features': osFeatures,
    ...others
  } = rest as typeof rest & {
    'os.version'?: string;
    'os.features'?: string[];
  };
  return {
    ...(created !== undefined ? { created } : {}),
    ...(author ? { author } : {}),
    architecture,
    os,
    ...(osVersion !== undefined ? { 'os.version': osVersion } : {}),
    ...(osFeatures !== undefined ? { 'os.features': osFeatures } : {}),
    ...(variant !== undefined ? { variant } : {}),
    ...others,
    config: inGoOrder(runConfig ?? {}),
    rootfs,
    ...(history !== undefined ? { history } : {}),
  } as ImageConfig;
}

/**
 * Adds one layer (an uncompressed OCI layer tar) on top of `base` and writes the new config and
 * manifest, in the media types of the base (docker or OCI). Without a base, the layer is the whole
 * image (`docker import`): an OCI image for this host's platform. Runs under a lease so that
 * nothing written is collected before the image record points at it.
 */
export async function commitImage(
  ns: NamespaceScope,
  base: ResolvedImage | undefined,
  layerTar: AsyncIterable<Uint8Array>,
  opts: CommitOpts = {},
): Promise<CommitResult> {
  return ns.leases.withLease(
    async (lease) => {
      const docker = usesDockerTypes(base);
      const { layer, diffID } = await writeLayer(ns, lease.id, layerTar, { docker, ...(opts.signal ? { signal: opts.signal } : {}) });
      const now = goTime(new Date());
      const old: ImageConfig = base?.config.value ?? scratchConfig();
      const history: HistoryEntry = { created: now };
      if (opts.createdBy) history.created_by = opts.createdBy;
      if (opts.author) history.author = opts.author;
      if (opts.comment) history.comment = opts.comment;
      const config: ImageConfig = {
        ...old,
        created: now,
        ...(opts.author || old.author ? { author: opts.author || old.author } : {}),
        config: opts.config ?? old.config ?? {},
        rootfs: { type: 'layers', diff_ids: [...old.rootfs.diff_ids, diffID] },
        history: [...(old.history ?? []), history],
      };
      const written = await writeImage(ns, lease.id, config, [...(base?.manifest.value.layers ?? []), layer], {
        docker,
        ...(opts.name ? { name: opts.name } : {}),
      });
      return { manifest: written.manifest, imageId: written.imageId, layer, diffID, image: written.image };
    },
    { expiresIn: 3_600_000, labels: { 'berth.commit': opts.name ?? '<none>' } },
  );
}

/** A time as Go's RFC 3339 encoding writes it (no trailing zeros in the fraction), so peers re-encode it byte for byte. */
export function goTime(d: Date): string {
  return d.toISOString().replace(/\.?0+Z$/, 'Z');
}

/** The run config's fields in the order of the OCI spec's Go type (others after, as they were). */
function inGoOrder(c: ContainerConfig): ContainerConfig {
  const order = [
    'User',
    'ExposedPorts',
    'Env',
    'Entrypoint',
    'Cmd',
    'Volumes',
    'WorkingDir',
    'Labels',
    'StopSignal',
    'ArgsEscaped',
    'Healthcheck',
    'OnBuild',
    'Shell',
  ];
  const out: Record<string, unknown> = {};
  for (const k of order) if ((c as Record<string, unknown>)[k] !== undefined) out[k] = (c as Record<string, unknown>)[k];
  for (const [k, v] of Object.entries(c)) if (!(k in out) && v !== undefined) out[k] = v;
  return out as ContainerConfig;
}

/** The config of an image with no layers yet, for this host. */
export function scratchConfig(): ImageConfig {
  const { os, architecture, variant } = hostPlatform();
  return { architecture, os, ...(variant ? { variant } : {}), config: {}, rootfs: { type: 'layers', diff_ids: [] } };
}

async function putJSON(ns: NamespaceScope, bytes: Uint8Array, lease: string): Promise<{ digest: Digest; size: number }> {
  const r = await writeBlob(ns.content, `commit-${randomBytes(8).toString('hex')}`, [bytes]);
  ns.leases.addResource(lease, { type: 'content', id: r.digest });
  return r;
}

const changeKeywords = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'];

/**
 * Applies one `--change` (a Dockerfile instruction: CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER,
 * EXPOSE, VOLUME, STOPSIGNAL) to an image's container config, as `docker commit --change` does.
 * @throws InvalidArgumentError for another instruction or a malformed value
 */
export function applyChange(config: ContainerConfig, change: string): ContainerConfig {
  const ins = instruction(change.trim(), 1, 1);
  if (!changeKeywords.includes(ins.keyword)) {
    throw new InvalidArgumentError(`invalid change "${change}": ${ins.keyword} is not one of ${changeKeywords.join(', ')}`);
  }
  const state = { config: { ...config }, cmdSet: true };
  applyConfig(state, ins, new ShellLex());
  return state.config;
}
