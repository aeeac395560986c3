import { type DiffOpts, diffOverlay, diffTrees } from '../archive/index.js';
import { AlreadyExistsError, FailedPreconditionError, hasCode, throwIfAborted } from '../errdefs/index.js';
import type { SnapshotRecords, SnapshotRef, SnapshotRow } from '../metadata/index.js';
import type { Driver } from './driver.js';
import {
  type CreateOpts,
  type Mount,
  type Opts,
  SNAPSHOT_REF_LABEL,
  type SnapshotInfo,
  type Snapshotter,
  type Usage,
} from './snapshotter.js';
import { storedUsage } from './usage.js';

/** Where a layer is applied into an active snapshot, and how (see archive's applyLayer). */
export interface ApplyTarget {
  root: string;
  whiteouts: 'overlay' | 'remove';
}

/** A snapshotter of one namespace: records in the metadata database, directories by the driver. */
export class SnapshotService implements Snapshotter {
  readonly driver: string;
  constructor(
    readonly records: SnapshotRecords,
    readonly impl: Driver,
  ) {
    this.driver = impl.name;
  }

  prepare(key: string, opts: CreateOpts = {}): Promise<Mount[]> {
    return this.#create('active', key, opts);
  }

  view(key: string, opts: CreateOpts = {}): Promise<Mount[]> {
    return this.#create('view', key, opts);
  }

  async #create(kind: 'active' | 'view', key: string, opts: CreateOpts): Promise<Mount[]> {
    throwIfAborted(opts.signal);
    const target = opts.labels?.[SNAPSHOT_REF_LABEL];
    if (target !== undefined && this.records.adopt(target)) throw new AlreadyExistsError(`target snapshot "${target}": already exists`);
    const row = this.records.create(key, kind, opts);
    const parents = row.parent === null ? [] : this.records.chain(row.parent);
    try {
      await this.impl.create(row, parents);
    } catch (err) {
      await this.remove(key).catch(() => {});
      throw err;
    }
    return this.impl.mounts(row, parents);
  }

  async commit(
    name: string,
    key: string,
    opts: Opts & { labels?: Record<string, string>; parent?: string; unpackedSize?: number; tarSize?: number } = {},
  ): Promise<void> {
    throwIfAborted(opts.signal);
    if (opts.parent !== undefined && !this.impl.rebase) {
      throw new FailedPreconditionError(`commit "${name}": the ${this.driver} snapshotter cannot change a snapshot's parent`);
    }
    const row = this.records.commit(name, key, opts);
    await this.impl.commit(row);
  }

  async mounts(key: string): Promise<Mount[]> {
    const row = this.records.get(key).snapshot;
    return this.impl.mounts(row, row.parent === null ? [] : this.records.chain(row.parent));
  }

  async stat(key: string): Promise<SnapshotInfo> {
    return this.#info(this.records.get(key));
  }

  #info(ref: SnapshotRef): SnapshotInfo {
    const info: SnapshotInfo = {
      name: ref.key,
      kind: ref.snapshot.kind,
      labels: ref.labels,
      created: ref.createdAt,
      updated: ref.snapshot.updatedAt,
    };
    if (ref.snapshot.parent !== null) info.parent = this.records.visibleName(ref.snapshot.parent);
    return info;
  }

  async usage(key: string): Promise<Usage> {
    return storedUsage(this.impl, this.records.get(key).snapshot, (id, u) => this.records.setUsage(id, u));
  }

  async remove(key: string): Promise<void> {
    for (const row of this.records.remove(key)) await this.impl.remove(row.id);
  }

  async *list(): AsyncIterable<SnapshotInfo> {
    for (const ref of this.records.list()) yield this.#info(ref);
  }

  /** Whether `key` names a snapshot of this namespace (of `kind`, when given). */
  has(key: string, kind?: SnapshotRow['kind']): boolean {
    try {
      const row = this.row(key);
      return kind === undefined || row.kind === kind;
    } catch (err) {
      if (hasCode(err, 'NOT_FOUND')) return false;
      throw err;
    }
  }

  /** The row behind a key (storage id, unpacked size). @throws NotFoundError */
  row(key: string): SnapshotRow {
    return this.records.get(key).snapshot;
  }

  /** Where to apply a layer into active snapshot `key`. */
  applyTarget(key: string): ApplyTarget {
    return { root: this.dirOf(key), whiteouts: this.impl.whiteouts };
  }

  /** The directories of committed snapshot `name` and its ancestors, nearest first: an overlay's lowerdirs. */
  stackDirs(name: string): string[] {
    return this.records.chain(this.row(name).id).map((r) => this.impl.fsDir(r.id));
  }

  /**
   * The changes of snapshot `key` over its parent, as an OCI layer tar (sorted entries, whiteouts,
   * opaque directories): what commit and build turn into a new layer.
   */
  diff(key: string, opts: DiffOpts = {}): AsyncGenerator<Uint8Array> {
    const row = this.records.get(key).snapshot;
    if (this.impl.whiteouts === 'overlay') return diffOverlay(this.impl.fsDir(row.id), opts);
    return diffTrees(row.parent === null ? undefined : this.impl.fsDir(row.parent), this.impl.fsDir(row.id), opts);
  }

  /** The directory of a snapshot (overlay: its own layer; native: the whole tree). */
  dirOf(key: string): string {
    return this.impl.fsDir(this.records.get(key).snapshot.id);
  }
}
