import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type ContainerObserver, Containers } from '../containers/index.js';
import { LocalStore } from '../content/index.js';
import { InvalidArgumentError } from '../errdefs/index.js';
import { collectGarbage, type Finding, type FsckOpts, type FsckStores, fsck, type GCOpts, type GCResult } from '../gc/index.js';
import { imageUsage, type StoreUsage } from '../images/index.js';
import { Metadata, type NamespaceScope } from '../metadata/index.js';
import { NetworkService } from '../network/index.js';
import { hostPlatform, platformMatcher } from '../oci/index.js';
import {
  type Driver,
  NativeDriver,
  OverlayDriver,
  overlaySupported,
  SnapshotService,
  type SnapshotterName,
  snapshotterNames,
} from '../snapshots/index.js';
import { VolumeStore } from '../volumes/index.js';
import { readSettings, type Settings } from './settings.js';

export interface OpenBerthOpts {
  /** The root directory; see {@link defaultRoot}. */
  root?: string;
  /** overlayfs where the kernel allows the mount here (root, a filesystem that takes it), else native. */
  snapshotter?: SnapshotterName;
}

/** `/var/lib/berth` for root, else `$XDG_DATA_HOME/berth` (`~/.local/share/berth`). */
export function defaultRoot(): string {
  if (process.getuid?.() === 0) return '/var/lib/berth';
  const xdg = process.env.XDG_DATA_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.local', 'share'), 'berth');
}

/**
 * The root's default snapshotter, chosen once (overlayfs when a trial mount works here, else native)
 * and kept in `<root>/snapshots/default`, so later commands neither mount to find out nor change it.
 */
async function defaultSnapshotter(root: string): Promise<SnapshotterName> {
  const file = join(root, 'snapshots', 'default');
  const kept = (await readFile(file, 'utf8').catch(() => '')).trim();
  if ((snapshotterNames as readonly string[]).includes(kept)) return kept as SnapshotterName;
  const name: SnapshotterName = (await overlaySupported(root)) ? 'overlayfs' : 'native';
  await mkdir(join(root, 'snapshots'), { recursive: true, mode: 0o711 });
  await writeFile(file, `${name}\n`).catch(() => {});
  return name;
}

/**
 * Everything berth keeps under one root, wired together: the composition root the CLI (and later
 * the daemon) builds on. Several processes may open one root at once.
 */
export class Berth implements Disposable {
  readonly root: string;
  readonly content: LocalStore;
  readonly metadata: Metadata;
  /** The snapshotter this root uses by default. */
  readonly snapshotterName: SnapshotterName;
  /**
   * Runtime state that must not outlive a reboot (runc's state, exit files, sockets): on tmpfs under
   * /run, one directory per root.
   */
  readonly runDir: string;
  /** The root's defaults (`<root>/berth.json`). */
  readonly settings: Settings;
  /** The networks (`<root>/networks`) and the CNI attachments. */
  readonly network: NetworkService;
  /** The named volumes (`<root>/volumes`). */
  readonly volumes: VolumeStore;

  private constructor(root: string, content: LocalStore, metadata: Metadata, snapshotter: SnapshotterName, settings: Settings) {
    this.root = root;
    this.settings = settings;
    this.content = content;
    this.metadata = metadata;
    this.snapshotterName = snapshotter;
    const key = createHash('sha256').update(root).digest('hex').slice(0, 16);
    this.runDir =
      process.getuid?.() === 0
        ? join('/run/berth', key)
        : join(process.env.XDG_RUNTIME_DIR || tmpdir(), `berth-${process.getuid?.()}`, key);
    this.network = new NetworkService(root, this.runDir, { bridgeSubnet: settings.bridgeSubnet });
    this.volumes = new VolumeStore(root);
  }

  /** Opens (creating when needed) the root directory. */
  static async open(opts: OpenBerthOpts = {}): Promise<Berth> {
    const root = resolve(opts.root ?? defaultRoot());
    await mkdir(root, { recursive: true, mode: 0o711 });
    const content = new LocalStore(join(root, 'content'));
    await content.init();
    const metadata = new Metadata(join(root, 'metadata.db'), content);
    if (opts.snapshotter !== undefined && !snapshotterNames.includes(opts.snapshotter)) {
      throw new InvalidArgumentError(`unknown snapshotter "${opts.snapshotter}" (want ${snapshotterNames.join(' or ')})`);
    }
    const snapshotter = opts.snapshotter ?? (await defaultSnapshotter(root));
    return new Berth(root, content, metadata, snapshotter, await readSettings(root));
  }

  /** The snapshots of namespace `ns` under one snapshotter (this root's default unless named). */
  snapshotter(ns: string, name: SnapshotterName = this.snapshotterName): SnapshotService {
    return new SnapshotService(this.metadata.namespace(ns).snapshots(name), this.#driver(name));
  }

  #driver(name: SnapshotterName): Driver {
    const dir = join(this.root, 'snapshots', name);
    return name === 'overlayfs' ? new OverlayDriver(dir) : new NativeDriver(dir);
  }

  /** Every snapshotter's directories, whichever this root uses by default. */
  drivers(): Driver[] {
    return snapshotterNames.map((n) => this.#driver(n));
  }

  /** What collection, checks and usage work on: the whole root, every namespace. */
  #stores(): FsckStores {
    return { db: this.metadata.db, content: this.content, drivers: this.drivers(), containersDir: join(this.root, 'containers') };
  }

  /** Mark and sweep over every namespace (see gc's collectGarbage). */
  gc(opts: GCOpts = {}): Promise<GCResult> {
    return collectGarbage(this.#stores(), opts);
  }

  /** Checks the whole root's store (see gc's fsck; services' checkRoot adds networks and volumes); `repair` removes orphans and dangling records. */
  fsck(opts: FsckOpts = {}): Promise<Finding[]> {
    return fsck(this.#stores(), opts);
  }

  /** The size views of every image of every namespace, for this host's platform. */
  imageUsage(): Promise<StoreUsage> {
    return imageUsage(this.#stores(), platformMatcher(hostPlatform()));
  }

  /** The containers of namespace `ns`; `observer` hears of the exits and removals this process records. */
  containers(ns: string, observer?: ContainerObserver): Containers {
    return new Containers(this, ns, observer);
  }

  /** Every namespace's name. */
  namespaceNames(): string[] {
    return this.metadata.namespaces.list().map((n) => n.name);
  }

  /** The stores of namespace `name`. @throws InvalidArgumentError for a bad name */
  namespace(name: string): NamespaceScope {
    return this.metadata.namespace(name);
  }

  close(): void {
    this.metadata.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
