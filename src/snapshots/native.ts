import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SnapshotRow } from '../metadata/index.js';
import { DirectoryDriver, type Driver } from './driver.js';
import type { Mount } from './snapshotter.js';

const run = promisify(execFile);

/**
 * native: every snapshot is a full copy of its parent (cp -a keeps owners, modes, times, xattrs,
 * devices and hardlinks), for filesystems where overlayfs is not available.
 */
export class NativeDriver extends DirectoryDriver implements Driver {
  readonly name = 'native';
  readonly rebase = false;
  readonly whiteouts = 'remove';

  async create(row: SnapshotRow, parents: SnapshotRow[]): Promise<void> {
    const fs = this.fsDir(row.id);
    await mkdir(join(this.root, String(row.id)), { recursive: true, mode: 0o700 });
    const parent = parents[0];
    if (parent) await run('cp', ['-a', '--', this.fsDir(parent.id), fs]);
    else await mkdir(fs, { mode: 0o755 });
  }

  mounts(row: SnapshotRow): Mount[] {
    return [{ type: 'bind', source: this.fsDir(row.id), options: ['rbind', row.kind === 'active' ? 'rw' : 'ro'] }];
  }

  async commit(): Promise<void> {}
}
