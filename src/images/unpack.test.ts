import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Session } from '../remotes/index.js';
import { Berth, type SnapshotterName } from '../services/index.js';
import { mountAll, unmount } from '../snapshots/index.js';
import { entryCorpus, gnuTar, umociLayers, writeLayers } from '../testutil/layers.js';
import { sh, skopeoCopy } from '../testutil/peers.js';
import { startRegistry, type TestRegistry } from '../testutil/registry.js';
import { describeTree, type TreeEntry } from '../testutil/tree.js';
import { pull } from './index.js';

const run = promisify(execFile);
let registry: TestRegistry;
let work: string;
let layout: string;
const session = new Session({ credentialsFile: null });
const snapshotters: SnapshotterName[] = ['overlayfs', 'native'];

/** A directory with a sparse file (8 MiB, data at 3 MiB and at the end), for GNU tar's sparse formats. */
async function sparseDir(dir: string, name: string): Promise<string> {
  await mkdir(join(dir, 'sparse'), { recursive: true });
  const fh = await open(join(dir, 'sparse', name), 'w');
  await fh.truncate(8 << 20);
  await fh.write(Buffer.from('in the middle'), 0, 13, 3 << 20);
  await fh.write(Buffer.from('at the end'), 0, 10, (8 << 20) - 10);
  await fh.close();
  await run('touch', ['-d', '2021-01-01 00:00:00.5', join(dir, 'sparse', name), join(dir, 'sparse'), dir]);
  return dir;
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-unpack-'));
  registry = await startRegistry();
  const tars = await writeLayers(join(work, 'tars'), entryCorpus());
  const gnu = await gnuTar(await sparseDir(join(work, 'gnu-src'), 'gnu-holes'), join(work, 'tars', 'gnu.tar'), 'gnu');
  const posix = await gnuTar(await sparseDir(join(work, 'posix-src'), 'posix-holes'), join(work, 'tars', 'posix.tar'), 'posix');
  layout = join(work, 'layout');
  await umociLayers(layout, 'kinds', [gnu, tars.l1 as string, tars.l2 as string, tars.l3 as string, tars.l4 as string, posix]);
  await skopeoCopy(`oci:${layout}:kinds`, `docker://${registry.host}/corpus/kinds:1`);
});
after(async () => {
  await session.close();
  await registry.stop();
  await rm(work, { recursive: true, force: true });
});

describe('unpack', () => {
  for (const name of snapshotters) {
    test(`unpack ${name}: the mounted image equals what umoci unpack makes`, async (t) => {
      const root = await mkdtemp(join(work, `root-${name}-`));
      const berth = await Berth.open({ root, snapshotter: name });
      t.after(() => berth.close());
      const ns = berth.namespace('default');
      const sn = berth.snapshotter('default');
      const r = await pull(ns, `${registry.host}/corpus/kinds:1`, { session, unpack: sn });
      assert.equal(r.unpacked?.chainIDs.length, 6);
      assert.equal(r.unpacked?.applied, 6);

      const bundle = join(work, `umoci-${name}`);
      await sh('umoci', ['unpack', '--image', `${layout}:kinds`, bundle]);
      // umoci applies an opaque marker that comes after its siblings (opq/.wh..wh..opq) by emptying
      // opq/sub after it set that directory's time, which leaves it at the time of the unpack; the
      // layer says T+100, which is what berth shows (checked below).
      const umociArtifact = (e: TreeEntry) => (e.path === 'opq/sub' ? { ...e, mtime: '-' } : e);
      const lines = (tree: TreeEntry[]) => tree.map((e) => JSON.stringify(umociArtifact(e)));
      const want = await describeTree(join(bundle, 'rootfs'));

      const mnt = join(work, `mnt-${name}`);
      await mkdir(mnt);
      const top = r.unpacked?.chainIDs.at(-1) as string;
      await mountAll(await sn.view('test-view', { parent: top }), mnt);
      try {
        const got = await describeTree(mnt);
        assert.deepEqual(lines(got), lines(want));
        assert.equal(got.find((e) => e.path === 'opq/sub')?.mtime, '1600000100000000000');
      } finally {
        await unmount(mnt);
        await sn.remove('test-view');
      }
    });
  }
});
