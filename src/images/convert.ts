import { randomBytes } from 'node:crypto';
import { compress, decompress } from '../archive/index.js';
import { writeBlob } from '../content/index.js';
import { DataLossError, FailedPreconditionError, hasCode } from '../errdefs/index.js';
import type { Image, NamespaceScope } from '../metadata/index.js';
import {
  type Compression,
  type Descriptor,
  type Digest,
  Digester,
  isLayer,
  layerCompressionOf,
  type Manifest,
  MediaType,
} from '../oci/index.js';
import type { ResolvedImage } from './image.js';

export interface ConvertOpts {
  signal?: AbortSignal;
  /** Recompress every layer so (default: each layer keeps its own). */
  compression?: Compression;
  /** The media types of the new manifest, config and layers (default: the source's). */
  format?: 'oci' | 'docker';
}

export interface ConvertResult {
  image: Image;
  manifest: Descriptor;
  /** The same as the source's: the config's bytes do not change, the diffIDs are of the uncompressed tars. */
  imageId: Digest;
  layers: Descriptor[];
}

const layerTypes: Record<'oci' | 'docker', Record<Compression, string>> = {
  oci: { none: MediaType.ociLayer, gzip: MediaType.ociLayerGzip, zstd: MediaType.ociLayerZstd },
  docker: { none: MediaType.dockerLayer, gzip: MediaType.dockerLayerGzip, zstd: MediaType.dockerLayerZstd },
};

/**
 * Writes `image` again as `name` with its layers recompressed and its media types rewritten, as
 * nerdctl's `image convert` does. A layer whose compression does not change keeps its blob; one
 * that does is decompressed, checked against its diffID and compressed again, streamed. The config
 * is kept byte for byte, so the image ID is the source's. Runs under a lease.
 * @throws FailedPreconditionError when a layer's blob is not stored; DataLossError when a layer does not give its diffID
 */
export async function convertImage(ns: NamespaceScope, image: ResolvedImage, name: string, opts: ConvertOpts = {}): Promise<ConvertResult> {
  const source = image.manifest.value;
  const format = opts.format ?? (image.manifestDesc.mediaType === MediaType.dockerManifest ? 'docker' : 'oci');
  return ns.leases.withLease(
    async (lease) => {
      const layers: Descriptor[] = [];
      for (const [i, l] of source.layers.entries()) {
        const from = layerCompressionOf(l.mediaType);
        if (!isLayer(l.mediaType) || from === undefined) {
          layers.push(l);
          continue;
        }
        const to = opts.compression ?? from;
        const mediaType = layerTypes[format][to];
        if (to === from) {
          layers.push({ ...l, mediaType });
          continue;
        }
        const diff = new Digester();
        let reader: Awaited<ReturnType<typeof ns.content.reader>>;
        try {
          reader = await ns.content.reader(l, opts);
        } catch (err) {
          if (hasCode(err, 'NOT_FOUND'))
            throw new FailedPreconditionError(`convert: layer ${l.digest} is not in the content store`, { cause: err });
          throw err;
        }
        await using r = reader;
        const tar = async function* () {
          for await (const c of decompress(r.read(undefined, opts), l.mediaType, opts)) {
            diff.update(c);
            yield c;
          }
        };
        const blob = await writeBlob(ns.content, `convert-${randomBytes(8).toString('hex')}`, compress(tar(), to, opts), opts);
        ns.leases.addResource(lease.id, { type: 'content', id: blob.digest });
        const want = image.config.value.rootfs.diff_ids[i];
        if (diff.digest() !== want)
          throw new DataLossError(`convert: layer ${l.digest} decompresses to ${diff.digest()}, not the diffID ${want}`);
        layers.push({ mediaType, digest: blob.digest, size: blob.size });
      }
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: format === 'docker' ? MediaType.dockerManifest : MediaType.ociManifest,
        config: { ...source.config, mediaType: format === 'docker' ? MediaType.dockerConfig : MediaType.ociConfig },
        layers,
        ...(format === 'oci' && source.annotations ? { annotations: source.annotations } : {}),
      };
      const bytes = Buffer.from(JSON.stringify(manifest));
      const m = await writeBlob(ns.content, `convert-${randomBytes(8).toString('hex')}`, [bytes], opts);
      ns.leases.addResource(lease.id, { type: 'content', id: m.digest });
      const target: Descriptor = { mediaType: manifest.mediaType, digest: m.digest, size: m.size };
      return { image: ns.images.put({ name, target }), manifest: target, imageId: source.config.digest, layers };
    },
    { expiresIn: 3_600_000, labels: { 'berth.convert': name } },
  );
}
