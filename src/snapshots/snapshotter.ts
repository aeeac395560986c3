import type { SnapshotKind } from '../metadata/index.js';

export type { SnapshotKind };

export interface Opts {
  signal?: AbortSignal;
}

/** What mount(8) needs to show a snapshot: `mount -t TYPE -o OPTIONS SOURCE TARGET`. */
export interface Mount {
  type: string;
  source: string;
  options: string[];
}

export interface CreateOpts extends Opts {
  /** A committed snapshot to build on. */
  parent?: string;
  labels?: Record<string, string>;
}

export interface SnapshotInfo {
  /** The key (active, view) or name (committed). */
  name: string;
  parent?: string;
  kind: SnapshotKind;
  labels: Record<string, string>;
  created: Date;
  updated: Date;
}

export interface Usage {
  /** Bytes of disk the snapshot's own directory takes (hardlinked files counted once). */
  size: number;
  inodes: number;
}

/** Label on prepare: the committed snapshot the caller means to create. When it is already stored
 *  (for any namespace), prepare makes it visible and throws AlreadyExistsError: nothing to apply. */
export const SNAPSHOT_REF_LABEL = 'containerd.io/snapshot.ref';

/**
 * `key` names an active snapshot, `name` a committed one; one key space for both. Only commit creates
 * committed snapshots; only committed snapshots can be parents.
 */
export interface Snapshotter {
  readonly driver: string;
  /** A writable snapshot on `parent`. @throws AlreadyExistsError, NotFoundError */
  prepare(key: string, opts?: CreateOpts): Promise<Mount[]>;
  /** A read-only snapshot on `parent`. */
  view(key: string, opts?: CreateOpts): Promise<Mount[]>;
  /** `parent` (rebase) is allowed where the driver's layers do not depend on their parent (overlayfs).
   *  @throws AlreadyExistsError when `name` is taken; the active snapshot then stays for the caller to remove */
  commit(
    name: string,
    key: string,
    opts?: Opts & { labels?: Record<string, string>; parent?: string; unpackedSize?: number },
  ): Promise<void>;
  mounts(key: string, opts?: Opts): Promise<Mount[]>;
  stat(key: string, opts?: Opts): Promise<SnapshotInfo>;
  usage(key: string, opts?: Opts): Promise<Usage>;
  /** @throws FailedPreconditionError while other snapshots build on it */
  remove(key: string, opts?: Opts): Promise<void>;
  list(opts?: Opts): AsyncIterable<SnapshotInfo>;
}
