import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotRow } from '../metadata/index.js';
import { DirectoryDriver, type Driver } from './driver.js';
import type { Mount } from './snapshotter.js';

/**
 * overlayfs: every snapshot is one directory holding only its own changes; a stack is mounted with
 * `lowerdir=` the parents' directories. Whiteouts are 0/0 character devices and opaque directories
 * carry `trusted.overlay.opaque=y`, as the kernel reads them.
 */
export class OverlayDriver extends DirectoryDriver implements Driver {
  readonly name = 'overlayfs';
  readonly rebase = true;
  readonly whiteouts = 'overlay';

  async create(row: SnapshotRow): Promise<void> {
    await mkdir(this.fsDir(row.id), { recursive: true, mode: 0o755 });
    if (row.kind === 'active') await mkdir(join(this.root, String(row.id), 'work'), { mode: 0o700 });
  }

  mounts(row: SnapshotRow, parents: SnapshotRow[]): Mount[] {
    const lower = parents.map((p) => this.fsDir(p.id));
    if (row.kind === 'active') {
      if (lower.length === 0) return [{ type: 'bind', source: this.fsDir(row.id), options: ['rbind', 'rw'] }];
      return [
        {
          type: 'overlay',
          source: 'overlay',
          options: [
            'index=off',
            `workdir=${join(this.root, String(row.id), 'work')}`,
            `upperdir=${this.fsDir(row.id)}`,
            `lowerdir=${lower.join(':')}`,
          ],
        },
      ];
    }
    const only = row.kind === 'committed' ? [this.fsDir(row.id), ...lower] : lower;
    if (only.length === 0) return [{ type: 'bind', source: this.fsDir(row.id), options: ['rbind', 'ro'] }];
    if (only.length === 1) return [{ type: 'bind', source: only[0] as string, options: ['rbind', 'ro'] }];
    return [{ type: 'overlay', source: 'overlay', options: ['index=off', `lowerdir=${only.join(':')}`] }];
  }

  async commit(row: SnapshotRow): Promise<void> {
    await rm(join(this.root, String(row.id), 'work'), { recursive: true, force: true });
  }
}
