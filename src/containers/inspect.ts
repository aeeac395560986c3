import { dirname, join } from 'node:path';
import { hasCode } from '../errdefs/index.js';
import { diskUsage } from '../snapshots/index.js';
import type { ContainerContext } from './context.js';
import type { Container } from './types.js';

// What inspect and df show of a container beyond its record: disk usage and docker's GraphDriver.

/**
 * Disk usage of a container: its writable layer (docker's SizeRw; with the native snapshotter, the
 * whole copy), and everything removing it frees (the snapshot's directory and the container's files).
 */
export async function containerUsage(ctx: ContainerContext, rec: Container): Promise<{ writable: number; removable: number }> {
  const du = (p: string) =>
    diskUsage(p).then(
      (u) => u.size,
      () => 0,
    );
  const sn = ctx.snapshots(rec);
  let writable = 0;
  let removable = 0;
  if (sn.has(rec.snapshotKey)) {
    const dir = sn.dirOf(rec.snapshotKey);
    writable = await du(dir);
    removable = await du(dirname(dir));
  }
  return { writable, removable: removable + (await du(ctx.paths(rec.id).dir)) };
}

/** docker's GraphDriver.Data: the writable layer (UpperDir), the image's layers (LowerDir) and the mount point. */
export function graphDriverData(ctx: ContainerContext, rec: Container): Record<string, string> {
  const sn = ctx.snapshots(rec);
  const data: Record<string, string> = { MergedDir: ctx.paths(rec.id).rootfs };
  try {
    const row = sn.row(rec.snapshotKey);
    if (sn.impl.whiteouts === 'overlay') {
      data.UpperDir = sn.dirOf(rec.snapshotKey);
      data.WorkDir = join(data.UpperDir, '..', 'work');
      if (row.parent !== null)
        data.LowerDir = sn.records
          .chain(row.parent)
          .map((r) => sn.impl.fsDir(r.id))
          .join(':');
    } else data.Dir = sn.dirOf(rec.snapshotKey);
  } catch (err) {
    if (!hasCode(err, 'NOT_FOUND')) throw err;
  }
  return data;
}
