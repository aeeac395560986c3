// docker's classic image store as it lies on disk: repositories.json (names), imagedb (configs,
// whose digests are the image IDs), layerdb (one directory per chain ID: diff ID, size, the graph
// driver's cache ID, tar-split) and the graph driver's layer directories.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { chainIDs, type Digest, digestHex, digestOf, isDigest, type PlatformMatcher, parseImageConfig } from '../oci/index.js';
import { diskUsage } from '../snapshots/index.js';
import { containerdPaths, readContainerdMeta, readContainerdStore } from './containerd.js';
import { shareParts } from './sizes.js';
import type { StoreImage, StoreLayer, StoreReport } from './types.js';

const maxDocument = 16 << 20;

/** The graph drivers whose classic layout berth reads, in docker's order of preference. */
const drivers = ['overlay2', 'fuse-overlayfs', 'btrfs', 'zfs', 'aufs', 'overlay', 'devicemapper', 'vfs'];

/** The graph driver of a classic store: the one whose image/DRIVER/repositories.json exists. */
export function classicDriver(root: string): string | undefined {
  return drivers.find((d) => existsSync(join(root, 'image', d, 'repositories.json')));
}

function readSmall(path: string, what: string): Buffer {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InvalidArgumentError(`${what}: ${path} is missing`);
    throw err;
  }
  if (buf.length > maxDocument) throw new InvalidArgumentError(`${what}: ${path} is larger than ${maxDocument} bytes`);
  return buf;
}

/** A layer of the classic store by chain ID: its diff ID, docker's size, and the driver's directory. */
export interface ClassicLayer {
  chainID: Digest;
  diffID: Digest;
  size: number;
  cacheID: string;
  /** layerdb/sha256/<chain>: where tar-split.json.gz is. */
  dbDir: string;
  /** The driver's directory of the layer (for overlay2, `overlay2/<cache-id>`). */
  dir: string;
  /** Where the layer's own files are (overlay2's `diff`); undefined for drivers that keep them elsewhere (zfs, devicemapper). */
  files?: string;
}

/** A graph driver's directory of a layer, and where in it the layer's files are. */
function driverDirs(root: string, driver: string, cacheID: string): { dir: string; files?: string } {
  switch (driver) {
    case 'overlay2':
    case 'overlay':
    case 'fuse-overlayfs':
      return { dir: join(root, driver, cacheID), files: join(root, driver, cacheID, 'diff') };
    case 'vfs':
      return { dir: join(root, 'vfs', 'dir', cacheID), files: join(root, 'vfs', 'dir', cacheID) };
    case 'btrfs':
      return { dir: join(root, 'btrfs', 'subvolumes', cacheID), files: join(root, 'btrfs', 'subvolumes', cacheID) };
    case 'aufs':
      return { dir: join(root, 'aufs', 'diff', cacheID), files: join(root, 'aufs', 'diff', cacheID) };
    default:
      return { dir: join(root, driver, cacheID) };
  }
}

export function classicLayer(root: string, driver: string, chainID: Digest): ClassicLayer {
  const dbDir = join(root, 'image', driver, 'layerdb', 'sha256', digestHex(chainID));
  const what = `docker layer ${chainID}`;
  const diffID = readSmall(join(dbDir, 'diff'), what).toString('utf8').trim();
  const size = Number(readSmall(join(dbDir, 'size'), what).toString('utf8').trim());
  const cacheID = readSmall(join(dbDir, 'cache-id'), what).toString('utf8').trim();
  if (!isDigest(diffID) || !Number.isSafeInteger(size) || size < 0 || !/^[A-Za-z0-9_.-]+$/.test(cacheID)) {
    throw new InvalidArgumentError(`${what}: ${dbDir} is damaged (diff, size or cache-id)`);
  }
  return { chainID, diffID, size, cacheID, dbDir, ...driverDirs(root, driver, cacheID) };
}

/** One image of the classic store: its names, its config as stored (the bytes the ID is the digest of), its layers. */
export interface ClassicImage {
  id: Digest;
  names: string[];
  config: Buffer;
  layers: ClassicLayer[];
}

/**
 * Every image of a classic store, named by repositories.json (tags; an image with none is `<none>`).
 * @throws InvalidArgumentError when a document is damaged or a config does not match its ID
 */
export function readClassicImages(root: string, driver: string): ClassicImage[] {
  const base = join(root, 'image', driver);
  let repos: Record<string, Record<string, string>>;
  try {
    const doc = JSON.parse(readSmall(join(base, 'repositories.json'), 'docker').toString('utf8')) as { Repositories?: unknown };
    repos = (doc.Repositories ?? {}) as Record<string, Record<string, string>>;
    if (typeof repos !== 'object' || repos === null) throw new Error('not an object');
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    throw new InvalidArgumentError(`${join(base, 'repositories.json')}: not docker's repositories file`);
  }
  const names = new Map<string, string[]>();
  for (const tags of Object.values(repos)) {
    for (const [name, id] of Object.entries(tags ?? {})) {
      if (name.includes('@') || typeof id !== 'string') continue;
      names.set(id, [...(names.get(id) ?? []), name]);
    }
  }
  const contentDir = join(base, 'imagedb', 'content', 'sha256');
  const out: ClassicImage[] = [];
  for (const hex of existsSync(contentDir) ? readdirSync(contentDir).sort() : []) {
    const id = `sha256:${hex}`;
    if (!isDigest(id)) continue;
    const config = readSmall(join(contentDir, hex), `docker image ${id}`);
    if (digestOf(config) !== id)
      throw new InvalidArgumentError(`docker image ${id}: its config's digest is ${digestOf(config)}; the store is damaged`);
    let diffIDs: Digest[];
    try {
      diffIDs = parseImageConfig(config).value.rootfs.diff_ids as Digest[];
    } catch (err) {
      throw new InvalidArgumentError(`docker image ${id}: ${(err as Error).message}`);
    }
    const layers = chainIDs(diffIDs).map((c) => classicLayer(root, driver, c));
    for (const [i, l] of layers.entries()) {
      if (l.diffID !== diffIDs[i])
        throw new InvalidArgumentError(`docker layer ${l.chainID}: diff ${l.diffID}, but the config says ${diffIDs[i]}`);
    }
    out.push({ id, names: names.get(id)?.sort() ?? ['<none>'], config, layers });
  }
  return out;
}

export interface DockerReadOpts {
  /** Where docker 24+ keeps images when it uses containerd's image store (default: docker's own containerd, then /var/lib/containerd). */
  containerdRoot?: string;
  matcher: PlatformMatcher;
}

/**
 * Reads docker's store at `root` without its daemon and without writing. The classic store gives
 * docker's sizes (layerdb's, the sum of the layer's files) and the layer directories' usage; a
 * docker that keeps its images in containerd (docker 24+ with the containerd image store) is read
 * as containerd's `moby` namespace.
 * @throws NotFoundError for a missing root; InvalidArgumentError for a directory that is not docker's
 */
export async function readDockerStore(root: string, opts: DockerReadOpts): Promise<StoreReport> {
  if (!existsSync(root)) throw new NotFoundError(`${root}: no such directory`);
  const driver = classicDriver(root);
  if (!driver) {
    const candidates = [opts.containerdRoot, join(root, 'containerd', 'daemon'), '/var/lib/containerd'].filter((d): d is string => !!d);
    const croot = candidates.find((d) => existsSync(join(d, containerdPaths.meta)));
    if (croot && readContainerdMeta(croot).some((n) => n.name === 'moby')) {
      const moby = await readContainerdStore(croot, { matcher: opts.matcher, namespaces: ['moby'] });
      return { ...moby, kind: 'docker', root, layout: `containerd image store (${croot}, namespace moby)` };
    }
    throw new InvalidArgumentError(
      `${root}: not a docker data root (no image/<driver>/repositories.json, and no containerd "moby" namespace)`,
    );
  }
  const images: StoreImage[] = [];
  const measured = new Map<string, number>();
  for (const c of readClassicImages(root, driver)) {
    const layers: StoreLayer[] = [];
    const parts: StoreImage['parts'] = [];
    for (const l of c.layers) {
      let onDisk = measured.get(l.chainID);
      if (onDisk === undefined) {
        onDisk = (await diskUsage(l.dir).catch(() => ({ size: 0 }))).size;
        measured.set(l.chainID, onDisk);
      }
      layers.push({ diffID: l.diffID, chainID: l.chainID, unpacked: l.size, onDisk, ...(l.files ? { dir: l.files } : {}) });
      parts.push({ key: `layer:${l.chainID}`, size: onDisk });
    }
    for (const name of c.names) {
      images.push({
        store: 'docker',
        namespace: '',
        name,
        id: c.id,
        layers,
        contentSize: null,
        unpackedSize: c.layers.reduce((n, l) => n + l.size, 0),
        onDisk: 0,
        unique: 0,
        shared: 0,
        parts,
      });
    }
  }
  shareParts(images);
  let layers = 0;
  let layerBytes = 0;
  const layerDb = join(root, 'image', driver, 'layerdb', 'sha256');
  for (const hex of existsSync(layerDb) ? readdirSync(layerDb) : []) {
    const chainID = `sha256:${hex}`;
    if (!isDigest(chainID)) continue;
    layers++;
    let size = measured.get(chainID);
    if (size === undefined) {
      try {
        size = (await diskUsage(classicLayer(root, driver, chainID).dir)).size;
      } catch {
        size = 0;
      }
    }
    layerBytes += size;
  }
  return {
    kind: 'docker',
    root,
    layout: `classic (${driver})`,
    namespaces: [],
    images,
    totals: { images: images.length, blobs: null, snapshots: { count: layers, size: layerBytes } },
  };
}
