import { withContext } from '../errdefs/index.js';
import { type ArchiveEntry, type LoadedImage, type LoadOpts, loadArchive, unpackUnderLease } from '../images/index.js';
import { familiarString, isDigest, isManifest, parseReference, type Reference } from '../oci/index.js';
import type { Berth } from './berth.js';

/**
 * Loads an image archive into a namespace and unpacks what it brought, as docker load leaves images
 * ready to run. A layer the applier refuses (hostile paths, not a tar) takes the whole archive's
 * names with it. Returns what docker prints for each image: `Loaded image: NAME` or `Loaded image ID: ID`.
 */
export async function loadImages(
  b: Berth,
  namespace: string,
  entries: AsyncIterable<ArchiveEntry>,
  opts: LoadOpts = {},
): Promise<{ loaded: LoadedImage[]; messages: string[] }> {
  const ns = b.namespace(namespace);
  const loaded = await loadArchive(ns, entries, opts);
  try {
    for (const l of loaded) {
      if (isManifest(l.manifest.mediaType)) await unpackUnderLease(ns, b.snapshotter(namespace), l.manifest);
    }
  } catch (err) {
    for (const name of new Set(loaded.map((l) => l.name))) ns.images.delete(name);
    if (b.settings.gcAfterRemove) await b.gc();
    throw withContext(err, 'load');
  }
  const messages = loaded.map((l) => {
    let ref: Reference | undefined;
    try {
      if (!isDigest(l.name)) ref = parseReference(l.name);
    } catch {
      // a name that is not a reference
    }
    return ref ? `Loaded image: ${familiarString(ref)}` : `Loaded image ID: ${l.id}`;
  });
  return { loaded, messages };
}
