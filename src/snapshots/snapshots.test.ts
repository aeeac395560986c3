import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Berth } from '../services/index.js';
import { snapshotterConformance } from '../testutil/snapshotter-conformance.js';
import type { SnapshotterName } from './index.js';

for (const name of ['overlayfs', 'native'] as SnapshotterName[]) {
  snapshotterConformance(
    name,
    {
      async open(t) {
        const scratch = await mkdtemp(join(tmpdir(), `berth-sn-${name}-`));
        const berth = await Berth.open({ root: join(scratch, 'root'), snapshotter: name });
        t.after(async () => {
          berth.close();
          await rm(scratch, { recursive: true, force: true });
        });
        return { sn: (ns) => berth.snapshotter(ns), scratch };
      },
    },
    { rebase: name === 'overlayfs' },
  );
}
