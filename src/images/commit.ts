import { randomBytes } from 'node:crypto';
import { compress } from '../archive/index.js';
import { writeBlob } from '../content/index.js';
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

/**
 * Adds one layer (an uncompressed OCI layer tar, streamed: hashed for its diffID and gzipped into
 * the store as it arrives) on top of `base` and writes the new config and manifest, in the media
 * types of the base (docker or OCI). Without a base, the layer is the whole image (`docker import`):
 * an OCI image for this host's platform. Runs under a lease so that nothing written is collected
 * before the image record points at it.
 */
export async function commitImage(
  ns: NamespaceScope,
  base: ResolvedImage | undefined,
  layerTar: AsyncIterable<Uint8Array>,
  opts: CommitOpts = {},
): Promise<CommitResult> {
  return ns.leases.withLease(
    async (lease) => {
      const docker =
        base !== undefined &&
        (base.manifest.value.mediaType === MediaType.dockerManifest || base.manifestDesc.mediaType === MediaType.dockerManifest);
      const diff = new Digester();
      const ref = `commit-${randomBytes(8).toString('hex')}`;
      const blob = await writeBlob(ns.content, ref, compress(hashed(layerTar, diff), 'gzip', opts), { signal: opts.signal });
      const diffID = diff.digest();
      const layer: Descriptor = {
        mediaType: docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip,
        digest: blob.digest,
        size: blob.size,
      };
      ns.leases.addResource(lease.id, { type: 'content', id: blob.digest });

      const now = goTime(new Date());
      const old: ImageConfig = base?.config.value ?? scratchConfig();
      const history: HistoryEntry = { created: now };
      if (opts.createdBy) history.created_by = opts.createdBy;
      if (opts.author) history.author = opts.author;
      if (opts.comment) history.comment = opts.comment;
      // Keys in the order of the OCI spec's Go types, as skopeo, umoci and buildkit write them: a
      // peer that decodes and encodes the config again then gets the same bytes, and the same image ID.
      const { created: _created, author, architecture, os, variant, config: runConfig, rootfs, history: oldHistory, ...rest } = old;
      const {
        'os.version': osVersion,
        'os.features': osFeatures,
        ...others
      } = rest as typeof rest & {
        'os.version'?: string;
        'os.features'?: string[];
      };
      const config = {
        created: now,
        ...(opts.author || author ? { author: opts.author || author } : {}),
        architecture,
        os,
        ...(osVersion !== undefined ? { 'os.version': osVersion } : {}),
        ...(osFeatures !== undefined ? { 'os.features': osFeatures } : {}),
        ...(variant !== undefined ? { variant } : {}),
        ...others,
        config: inGoOrder(opts.config ?? runConfig ?? {}),
        rootfs: { type: 'layers', diff_ids: [...rootfs.diff_ids, diffID] },
        history: [...(oldHistory ?? []), history],
      } as ImageConfig;
      const configBytes = Buffer.from(JSON.stringify(config));
      const configBlob = await putJSON(ns, configBytes, lease.id);
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: docker ? MediaType.dockerManifest : MediaType.ociManifest,
        config: { mediaType: docker ? MediaType.dockerConfig : MediaType.ociConfig, digest: configBlob.digest, size: configBlob.size },
        layers: [...(base?.manifest.value.layers ?? []), layer],
      };
      const manifestBytes = Buffer.from(JSON.stringify(manifest));
      const m = await putJSON(ns, manifestBytes, lease.id);
      const manifestDesc: Descriptor = { mediaType: manifest.mediaType, digest: m.digest, size: m.size };
      const result: CommitResult = { manifest: manifestDesc, imageId: configBlob.digest, layer, diffID };
      // A commit without a name is kept by an image named after its digest (docker shows it as <none>).
      result.image = ns.images.put({ name: opts.name ?? `sha256:${configBlob.digest.slice(7)}`, target: manifestDesc });
      return result;
    },
    { expiresIn: 3_600_000, labels: { 'berth.commit': opts.name ?? '<none>' } },
  );
}

/** A time as Go's RFC 3339 encoding writes it (no trailing zeros in the fraction), so peers re-encode it byte for byte. */
function goTime(d: Date): string {
  return d.toISOString().replace(/\.?0+Z$/, 'Z');
}

/** The run config's fields in the order of the OCI spec's Go type (others after, as they were). */
function inGoOrder(c: ContainerConfig): ContainerConfig {
  const order = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'ArgsEscaped'];
  const out: Record<string, unknown> = {};
  for (const k of order) if ((c as Record<string, unknown>)[k] !== undefined) out[k] = (c as Record<string, unknown>)[k];
  for (const [k, v] of Object.entries(c)) if (!(k in out) && v !== undefined) out[k] = v;
  return out as ContainerConfig;
}

/** The config of an image with no layers yet, for this host. */
function scratchConfig(): ImageConfig {
  const { os, architecture, variant } = hostPlatform();
  return { architecture, os, ...(variant ? { variant } : {}), config: {}, rootfs: { type: 'layers', diff_ids: [] } };
}

/** The stream as it is, each chunk hashed into `digester` on the way. */
async function* hashed(src: AsyncIterable<Uint8Array>, digester: Digester): AsyncGenerator<Uint8Array> {
  for await (const chunk of src) {
    digester.update(chunk);
    yield chunk;
  }
}

async function putJSON(ns: NamespaceScope, bytes: Uint8Array, lease: string): Promise<{ digest: Digest; size: number }> {
  const r = await writeBlob(ns.content, `commit-${randomBytes(8).toString('hex')}`, [bytes]);
  ns.leases.addResource(lease, { type: 'content', id: r.digest });
  return r;
}

/**
 * Applies one `--change` (a Dockerfile instruction: CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER,
 * EXPOSE, VOLUME, STOPSIGNAL) to an image's container config, as `docker commit --change` does.
 * @throws InvalidArgumentError for another instruction or a malformed value
 */
export function applyChange(config: ContainerConfig, change: string): ContainerConfig {
  const m = /^\s*([A-Za-z]+)\s+([\s\S]*?)\s*$/.exec(change);
  if (!m) throw new InvalidArgumentError(`invalid change "${change}": want an instruction and its value`);
  const op = (m[1] as string).toUpperCase();
  const value = m[2] as string;
  const out: ContainerConfig = { ...config };
  const execForm = (): string[] => {
    if (value.startsWith('[')) {
      try {
        const v = JSON.parse(value) as unknown;
        if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
      } catch {
        // not JSON: the shell form
      }
    }
    return ['/bin/sh', '-c', value];
  };
  switch (op) {
    case 'CMD':
      out.Cmd = execForm();
      break;
    case 'ENTRYPOINT':
      out.Entrypoint = execForm();
      break;
    case 'ENV': {
      const env = [...(out.Env ?? [])];
      for (const [k, v] of keyValues(value, op)) {
        const i = env.findIndex((e) => e.split('=', 1)[0] === k);
        if (i >= 0) env[i] = `${k}=${v}`;
        else env.push(`${k}=${v}`);
      }
      out.Env = env;
      break;
    }
    case 'LABEL':
      out.Labels = { ...(out.Labels ?? {}), ...Object.fromEntries(keyValues(value, op)) };
      break;
    case 'WORKDIR':
      out.WorkingDir = value;
      break;
    case 'USER':
      out.User = value;
      break;
    case 'STOPSIGNAL':
      out.StopSignal = value;
      break;
    case 'EXPOSE':
      out.ExposedPorts = { ...(out.ExposedPorts ?? {}) };
      for (const p of value.split(/\s+/)) out.ExposedPorts[p.includes('/') ? p : `${p}/tcp`] = {};
      break;
    case 'VOLUME':
      out.Volumes = { ...(out.Volumes ?? {}) };
      for (const v of value.startsWith('[') ? execForm() : value.split(/\s+/)) out.Volumes[v] = {};
      break;
    default:
      throw new InvalidArgumentError(
        `invalid change "${change}": ${op} is not one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR`,
      );
  }
  return out;
}

/** `K=V K2="V 2"` or the legacy `K V`. */
function keyValues(value: string, op: string): [string, string][] {
  if (!value.includes('=')) {
    const sp = value.search(/\s/);
    if (sp < 0) throw new InvalidArgumentError(`invalid ${op} "${value}": want KEY=VALUE`);
    return [[value.slice(0, sp), value.slice(sp).trim()]];
  }
  const out: [string, string][] = [];
  for (const m of value.matchAll(/([^\s=]+)=("((?:[^"\\]|\\.)*)"|\S*)/g)) {
    out.push([m[1] as string, m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : (m[2] as string)]);
  }
  return out;
}
