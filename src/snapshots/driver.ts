import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotRow } from '../metadata/index.js';
import type { Mount, Usage } from './snapshotter.js';
import { diskUsage } from './usage.js';

/** The snapshotters berth has, by the names containerd gives them. */
export const snapshotterNames = ['overlayfs', 'native'] as const;
export type SnapshotterName = (typeof snapshotterNames)[number];

/** How one snapshotter keeps snapshot directories: `<root>/<id>/fs`. */
export interface Driver {
  readonly name: SnapshotterName;
  /** Whether a layer's directory is independent of its parent, so commit may set the parent (rebase). */
  readonly rebase: boolean;
  /** How a layer applied into a snapshot's directory records deletions. */
  readonly whiteouts: 'overlay' | 'remove';
  readonly root: string;
  fsDir(id: number): string;
  /** Makes the directories of a new active or view snapshot; `parents` nearest first. */
  create(row: SnapshotRow, parents: SnapshotRow[]): Promise<void>;
  mounts(row: SnapshotRow, parents: SnapshotRow[]): Mount[];
  commit(row: SnapshotRow): Promise<void>;
  remove(id: number): Promise<void>;
  usage(id: number): Promise<Usage>;
}

/** What both drivers share: `<root>/<id>/fs`, removal by renaming aside, usage by walking. */
export abstract class DirectoryDriver {
  constructor(readonly root: string) {}

  fsDir(id: number): string {
    return join(this.root, String(id), 'fs');
  }

  /** Renames the snapshot directory aside first, so a crash never leaves a half-removed `<id>`. */
  async remove(id: number): Promise<void> {
    const trash = join(this.root, `.removing-${id}-${process.pid}`);
    try {
      await rename(join(this.root, String(id)), trash);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await rm(trash, { recursive: true, force: true });
  }

  usage(id: number): Promise<Usage> {
    return diskUsage(this.fsDir(id));
  }
}
