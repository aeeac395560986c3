import { decompress } from '../archive/index.js';
import type { Provider } from '../content/index.js';
import { hasCode } from '../errdefs/index.js';
import { chainIDs, type Descriptor, type Digest, Digester, digestAlgorithm, isLayer } from '../oci/index.js';
import type { SnapshotService } from '../snapshots/index.js';
import type { ResolvedImage } from './image.js';

/** One link of an image's hash chain, and whether it holds. */
export interface ChainLink {
  link: 'index' | 'manifest' | 'config' | 'layer' | 'diffID' | 'chainID';
  /** The layer's position, bottom first (layer, diffID and chainID links). */
  layer?: number;
  digest: Digest;
  ok: boolean;
  detail: string;
}

/**
 * Walks the hash chain of an image as stored: the index and manifest bytes against their digests,
 * the config bytes against the config digest the manifest names (the image ID), each compressed
 * layer against its digest and, decompressed, against the diffID the config names, and each chainID
 * to its unpacked snapshot. Each blob is read once.
 */
export async function verifyImage(
  content: Provider,
  image: ResolvedImage,
  opts: { signal?: AbortSignal; snapshots?: SnapshotService } = {},
): Promise<ChainLink[]> {
  const links: ChainLink[] = [];
  const rehash = async (link: 'index' | 'manifest' | 'config', desc: Descriptor, what: string) => {
    const got = await hashBlob(content, desc, opts);
    links.push({
      link,
      digest: desc.digest,
      ok: got === desc.digest,
      detail: got === undefined ? 'missing' : got === desc.digest ? what : `the bytes hash to ${got}`,
    });
  };
  if (image.index) await rehash('index', image.target, 'the index bytes hash to the digest the image names');
  await rehash('manifest', image.manifestDesc, `the manifest bytes hash to the digest ${image.index ? 'the index' : 'the image'} names`);
  await rehash('config', image.manifest.value.config, 'the config bytes hash to the digest the manifest names: the image ID');

  const layers = image.manifest.value.layers.filter((l) => isLayer(l.mediaType));
  const diffIDs = image.config.value.rootfs.diff_ids;
  const chain = chainIDs(diffIDs);
  for (const [i, l] of layers.entries()) {
    const want = diffIDs[i];
    const compressed = new Digester(digestAlgorithm(l.digest));
    const uncompressed = new Digester('sha256');
    let missing = false;
    try {
      await using r = await content.reader(l, opts);
      const counted = (async function* () {
        for await (const c of r.read(undefined, opts)) {
          compressed.update(c);
          yield c;
        }
      })();
      for await (const c of decompress(counted, l.mediaType, opts)) uncompressed.update(c);
    } catch (err) {
      if (!hasCode(err, 'NOT_FOUND')) {
        // Damaged bytes usually fail to decompress first: say whether they still match their digest.
        const got = await hashBlob(content, l, opts);
        const detail = got !== l.digest ? `the bytes hash to ${got}` : `cannot be decompressed: ${(err as Error).message}`;
        links.push({ link: 'layer', layer: i, digest: l.digest, ok: false, detail });
        continue;
      }
      missing = true;
    }
    const unpacked = chain[i] !== undefined && opts.snapshots?.has(chain[i] as Digest, 'committed');
    if (missing) {
      links.push({
        link: 'layer',
        layer: i,
        digest: l.digest,
        ok: unpacked === true,
        detail: unpacked ? 'compressed blob dropped after unpacking (cannot be re-hashed)' : 'missing, and the layer is not unpacked',
      });
    } else {
      const got = compressed.digest();
      links.push({
        link: 'layer',
        layer: i,
        digest: l.digest,
        ok: got === l.digest,
        detail: got === l.digest ? 'the compressed bytes hash to the digest the manifest names' : `the bytes hash to ${got}`,
      });
      const diff = uncompressed.digest();
      links.push({
        link: 'diffID',
        layer: i,
        digest: (want ?? diff) as Digest,
        ok: diff === want,
        detail: diff === want ? 'the uncompressed tar hashes to the diffID the config names' : `the uncompressed tar hashes to ${diff}`,
      });
    }
    if (opts.snapshots && chain[i]) {
      links.push({
        link: 'chainID',
        layer: i,
        digest: chain[i] as Digest,
        ok: true,
        detail: unpacked ? 'unpacked: the snapshot of the layers up to here is stored under this name' : 'not unpacked',
      });
    }
  }
  return links;
}

async function hashBlob(content: Provider, desc: Descriptor, opts: { signal?: AbortSignal }): Promise<Digest | undefined> {
  try {
    await using r = await content.reader(desc, opts);
    const d = new Digester(digestAlgorithm(desc.digest));
    for await (const c of r.read(undefined, opts)) d.update(c);
    return d.digest();
  } catch (err) {
    if (hasCode(err, 'NOT_FOUND')) return undefined;
    throw err;
  }
}
