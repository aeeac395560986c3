import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LocalStore } from '../content/index.js';
import { InvalidArgumentError } from '../errdefs/index.js';
import { Metadata, type NamespaceScope } from '../metadata/index.js';
import { type Driver, NativeDriver, OverlayDriver, overlaySupported, SnapshotService } from '../snapshots/index.js';
import { Containers } from './containers.js';

export const snapshotterNames = ['overlayfs', 'native'] as const;
export type SnapshotterName = (typeof snapshotterNames)[number];

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

  private constructor(root: string, content: LocalStore, metadata: Metadata, snapshotter: SnapshotterName) {
    this.root = root;
    this.content = content;
    this.metadata = metadata;
    this.snapshotterName = snapshotter;
    const key = createHash('sha256').update(root).digest('hex').slice(0, 16);
    this.runDir =
      process.getuid?.() === 0
        ? join('/run/berth', key)
        : join(process.env.XDG_RUNTIME_DIR || tmpdir(), `berth-${process.getuid?.()}`, key);
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
    return new Berth(root, content, metadata, snapshotter);
  }

  /** The snapshots of namespace `ns` under one snapshotter (this root's default unless named). */
  snapshotter(ns: string, name: SnapshotterName = this.snapshotterName): SnapshotService {
    const dir = join(this.root, 'snapshots', name);
    const driver: Driver = name === 'overlayfs' ? new OverlayDriver(dir) : new NativeDriver(dir);
    return new SnapshotService(this.metadata.namespace(ns).snapshots(name), driver);
  }

  /** The containers of namespace `ns`. */
  containers(ns: string): Containers {
    return new Containers(this, ns);
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
