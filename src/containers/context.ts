import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { NotFoundError } from '../errdefs/index.js';
import type { NamespaceScope } from '../metadata/index.js';
import { Runc } from '../runtime/index.js';
import type { SnapshotService, SnapshotterName } from '../snapshots/index.js';
import { flock, lookPath } from '../sys/index.js';
import type { Container, ContainerHost, StoredContainerConfig } from './types.js';

/**
 * The records of one namespace's containers and where each keeps its files: what every container
 * operation starts from. Each container's changes of state are serialised by a file lock in its
 * directory, across processes.
 */
export class ContainerContext {
  readonly ns: NamespaceScope;
  readonly host: ContainerHost;

  constructor(host: ContainerHost, namespace: string) {
    this.host = host;
    this.ns = host.namespace(namespace);
  }

  #runc: Runc | undefined;
  /** runc, with this root's state directory; looked up when first needed (listing needs no runc). */
  get runc(): Runc {
    this.#runc ??= new Runc(join(this.host.runDir, 'runc'), process.env.BERTH_RUNC ?? lookPath('runc'));
    return this.#runc;
  }

  /** The record named by an ID, a unique ID prefix or a name, as stored. @throws NotFoundError */
  find(ref: string): Container {
    return this.ns.containers.find<StoredContainerConfig>(ref);
  }

  /** The directories and files of one container. */
  paths(id: string) {
    const dir = join(this.host.root, 'containers', this.ns.name, id);
    return {
      dir,
      rootfs: join(dir, 'rootfs'),
      log: join(dir, 'container.log'),
      persist: join(dir, 'state'),
      spec: join(dir, 'config.json'),
      exitDir: join(this.host.runDir, 'exits'),
      socketDir: join(this.host.runDir, 'socket'),
    };
  }

  /** The snapshots the container's writable layer lives in. */
  snapshots(rec: Pick<Container, 'snapshotter'>): SnapshotService {
    return this.host.snapshotter(this.ns.name, rec.snapshotter as SnapshotterName);
  }

  /** Runs `fn` holding the container's lock (flock on `<dir>/lock`), across processes. @throws NotFoundError */
  async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    let fd: number;
    try {
      fd = openSync(join(this.paths(id).dir, 'lock'), 'a');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`No such container: ${id}`);
      throw err;
    }
    try {
      flock(fd, 'ex');
      return await fn();
    } finally {
      closeSync(fd);
    }
  }
}
