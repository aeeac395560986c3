import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { NotFoundError } from '../errdefs/index.js';
import type { NamespaceScope } from '../metadata/index.js';
import { type Runc, runcFor } from '../runtime/index.js';
import type { SnapshotService, SnapshotterName } from '../snapshots/index.js';
import { withFileLock } from '../sys/index.js';
import type { Container, ContainerHost, ContainerObserver, StoredContainerConfig } from './types.js';

/** A container's directory: `<root>/containers/<namespace>/<id>`. */
export function containerDir(root: string, namespace: string, id: string): string {
  return join(root, 'containers', namespace, id);
}

/** Each container directory's queue of lock holders in this process. */
const queues = new Map<string, Promise<void>>();

/**
 * The records of one namespace's containers and where each keeps its files: what every container
 * operation starts from. Each container's changes of state are serialised by a file lock in its
 * directory, across processes.
 */
export class ContainerContext {
  readonly ns: NamespaceScope;
  readonly host: ContainerHost;

  readonly observer: ContainerObserver;

  constructor(host: ContainerHost, namespace: string, observer: ContainerObserver = {}) {
    this.host = host;
    this.ns = host.namespace(namespace);
    this.observer = observer;
  }

  #runc: Runc | undefined;
  /** runc, with this root's state directory; looked up when first needed (listing needs no runc). */
  get runc(): Runc {
    this.#runc ??= runcFor(this.host.runDir);
    return this.#runc;
  }

  /** The record named by an ID, a unique ID prefix or a name, as stored. @throws NotFoundError */
  find(ref: string): Container {
    return this.ns.containers.find<StoredContainerConfig>(ref);
  }

  /** The directories and files of one container. */
  paths(id: string) {
    const dir = containerDir(this.host.root, this.ns.name, id);
    return {
      dir,
      rootfs: join(dir, 'rootfs'),
      /** The tmpfs a `shareable` IPC container's /dev/shm is, there for those that join it. */
      shm: join(dir, 'shm'),
      log: join(dir, 'container.log'),
      persist: join(dir, 'state'),
      spec: join(dir, 'config.json'),
      exitDir: join(this.host.runDir, 'exits'),
      socketDir: join(this.host.runDir, 'socket'),
    };
  }

  /** Where the container's monitor writes its log. */
  logPath(rec: Container): string {
    return rec.config.LogPath ?? this.paths(rec.id).log;
  }

  /** The snapshots the container's writable layer lives in. */
  snapshots(rec: Pick<Container, 'snapshotter'>): SnapshotService {
    return this.host.snapshotter(this.ns.name, rec.snapshotter as SnapshotterName);
  }

  /**
   * Runs `fn` holding the container's lock: callers in this process queue on a promise chain (a
   * second flock here would block the event loop on ourselves), then flock on `<dir>/lock` holds
   * off other processes, polled without blocking. @throws NotFoundError
   */
  async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const dir = this.paths(id).dir;
    const before = queues.get(dir) ?? Promise.resolve();
    let release = () => {};
    const mine = before.then(() => new Promise<void>((r) => (release = r)));
    queues.set(dir, mine);
    await before;
    try {
      if (!existsSync(dir)) throw new NotFoundError(`No such container: ${id}`);
      return await withFileLock(join(dir, 'lock'), fn);
    } finally {
      release();
      if (queues.get(dir) === mine) queues.delete(dir);
    }
  }
}
