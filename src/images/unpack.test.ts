import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { writeBlob } from '../content/index.js';
import { chainIDs, digestOf, hostPlatform, MediaType, platformMatcher } from '../oci/index.js';
import { Session } from '../remotes/index.js';
import { Berth } from '../services/index.js';
import { mountAll, type SnapshotService, type SnapshotterName, unmount } from '../snapshots/index.js';
import { berthMain } from '../testutil/cli.js';
import { entryCorpus, gnuTar, umociLayers, writeLayers } from '../testutil/layers.js';
import { sh, skopeoCopy } from '../testutil/peers.js';
import { startRegistry, type TestRegistry } from '../testutil/registry.js';
import { describeTree, type TreeEntry } from '../testutil/tree.js';
import { pull, resolveImage, unpack } from './index.js';

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
  await skopeoCopy(`oci:${layout}:kinds`, `docker://${registry.host}/corpus/kinds:zstd`, ['--dest-compress-format', 'zstd']);
  // Two images on one base of two layers.
  const shared = await writeLayers(join(work, 'shared'), {
    base1: [
      { name: 'etc', type: 'dir' },
      { name: 'etc/base', data: 'one' },
    ],
    base2: [
      { name: 'usr', type: 'dir' },
      { name: 'usr/lib', data: 'two' },
    ],
    topA: [{ name: 'a', data: 'image a' }],
    topB: [{ name: 'b', data: 'image b' }],
  });
  await umociLayers(layout, 'a', [shared.base1, shared.base2, shared.topA] as string[]);
  await umociLayers(layout, 'b', [shared.base1, shared.base2, shared.topB] as string[]);
  // umoci insert --opaque writes a layer that ends right after the last file's data (no padding, no
  // end marker), which Go's tar reader accepts; the layer below has files the opaque one hides.
  const insert = join(work, 'insert');
  await mkdir(join(insert, 'old'), { recursive: true });
  await mkdir(join(insert, 'new', 'd'), { recursive: true });
  await writeFile(join(insert, 'old', 'hidden'), 'hidden by the opaque directory\n');
  await writeFile(join(insert, 'new', 'd', 'f'), 'x'.repeat(1234));
  await writeFile(join(insert, 'new', 'g'), 'g\n');
  await umociLayers(layout, 'opaque', [shared.base1 as string]);
  await sh('umoci', ['insert', '--image', `${layout}:opaque`, join(insert, 'old'), '/opt/stuff']);
  await sh('umoci', ['insert', '--image', `${layout}:opaque`, '--opaque', join(insert, 'new'), '/opt/stuff']);
  await skopeoCopy(`oci:${layout}:opaque`, `docker://${registry.host}/umoci/opaque:1`);
  await skopeoCopy(`oci:${layout}:a`, `docker://${registry.host}/shared/a:1`);
  await skopeoCopy(`oci:${layout}:b`, `docker://${registry.host}/shared/b:1`);
});
after(async () => {
  await session.close();
  await registry.stop();
  await rm(work, { recursive: true, force: true });
});

/**
 * Mounts the snapshot stack `top` and asserts its tree equals `umoci unpack` of `layout:tag`, with
 * `adjust` applied to both sides; returns berth's tree.
 */
async function assertTreeAsUmoci(
  sn: SnapshotService,
  top: string,
  tag: string,
  adjust: (e: TreeEntry) => TreeEntry = (e) => e,
): Promise<TreeEntry[]> {
  const bundle = await mkdtemp(join(work, `umoci-${tag}-`));
  await rm(bundle, { recursive: true });
  await sh('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle]);
  const lines = (tree: TreeEntry[]) => tree.map((e) => JSON.stringify(adjust(e)));
  const want = await describeTree(join(bundle, 'rootfs'));
  const mnt = await mkdtemp(join(work, 'mnt-'));
  await mountAll(await sn.view('test-view', { parent: top }), mnt);
  try {
    const got = await describeTree(mnt);
    assert.deepEqual(lines(got), lines(want));
    return got;
  } finally {
    await unmount(mnt);
    await sn.remove('test-view');
  }
}

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

      // umoci applies an opaque marker that comes after its siblings (opq/.wh..wh..opq) by emptying
      // opq/sub after it set that directory's time, which leaves it at the time of the unpack; the
      // layer says T+100, which is what berth shows (checked below).
      const got = await assertTreeAsUmoci(sn, r.unpacked?.chainIDs.at(-1) as string, 'kinds', (e) =>
        e.path === 'opq/sub' ? { ...e, mtime: '-' } : e,
      );
      assert.equal(got.find((e) => e.path === 'opq/sub')?.mtime, '1600000100000000000');
    });

    test(`unpack ${name}: a layer without padding or end marker (umoci insert --opaque) as umoci unpacks it`, async (t) => {
      const berth = await Berth.open({ root: await mkdtemp(join(work, `root-opaque-${name}-`)), snapshotter: name });
      t.after(() => berth.close());
      const sn = berth.snapshotter('default');
      const r = await pull(berth.namespace('default'), `${registry.host}/umoci/opaque:1`, { session, unpack: sn });
      assert.equal(r.unpacked?.applied, 3);
      // No layer has an entry for /opt (umoci insert writes none for parents): both tools make it
      // when they apply, so its time is the time of the unpack.
      const got = await assertTreeAsUmoci(sn, r.unpacked?.chainIDs.at(-1) as string, 'opaque', (e) =>
        e.path === 'opt' ? { ...e, mtime: '-' } : e,
      );
      assert.deepEqual(
        got.filter((e) => e.path.startsWith('opt/stuff/')).map((e) => e.path),
        ['opt/stuff/d', 'opt/stuff/d/f', 'opt/stuff/g'],
      );
    });
  }

  test('unpack zstd: a zstd image gives the same tree as its gzip twin', async (t) => {
    const root = await mkdtemp(join(work, 'root-zstd-'));
    const berth = await Berth.open({ root });
    t.after(() => berth.close());
    const sn = berth.snapshotter('default');
    const gz = await pull(berth.namespace('default'), `${registry.host}/corpus/kinds:1`, { session, unpack: sn });
    const zs = await pull(berth.namespace('default'), `${registry.host}/corpus/kinds:zstd`, { session, unpack: sn });
    // The same diffIDs, so the same chainIDs: nothing to apply the second time.
    assert.deepEqual(zs.unpacked?.chainIDs, gz.unpacked?.chainIDs);
    assert.equal(zs.unpacked?.applied, 0);
    const zroot = await mkdtemp(join(work, 'root-zstd-only-'));
    const b2 = await Berth.open({ root: zroot });
    t.after(() => b2.close());
    const z2 = await pull(b2.namespace('default'), `${registry.host}/corpus/kinds:zstd`, { session, unpack: b2.snapshotter('default') });
    assert.equal(z2.unpacked?.applied, 6);
    const trees = [];
    for (const [b, r] of [
      [berth, gz],
      [b2, z2],
    ] as const) {
      const mnt = await mkdtemp(join(work, 'mnt-z-'));
      const s2 = b.snapshotter('default');
      await mountAll(await s2.view('v', { parent: r.unpacked?.chainIDs.at(-1) as string }), mnt);
      trees.push(await describeTree(mnt));
      await unmount(mnt);
      await s2.remove('v');
    }
    assert.deepEqual(trees[1], trees[0]);
  });

  for (const name of snapshotters) {
    test(`unpack ${name}: two images on one base share its snapshots, here and in another namespace`, async (t) => {
      const root = await mkdtemp(join(work, `root-share-${name}-`));
      const berth = await Berth.open({ root, snapshotter: name });
      t.after(() => berth.close());
      const sn = berth.snapshotter('default');
      const a = await pull(berth.namespace('default'), `${registry.host}/shared/a:1`, { session, unpack: sn });
      const b = await pull(berth.namespace('default'), `${registry.host}/shared/b:1`, { session, unpack: sn });
      assert.equal(a.unpacked?.applied, 3);
      assert.equal(b.unpacked?.applied, 1, 'only the top layer of the second image is applied');
      const [ca, cb] = [a.unpacked?.chainIDs as string[], b.unpacked?.chainIDs as string[]];
      assert.deepEqual(ca.slice(0, 2), cb.slice(0, 2));
      assert.equal((await sn.stat(cb[2] as string)).parent, cb[1]);
      // Another namespace: the stored snapshots become visible there, nothing is applied.
      const other = berth.snapshotter('other');
      const o = await pull(berth.namespace('other'), `${registry.host}/shared/b:1`, { session, unpack: other });
      assert.equal(o.unpacked?.applied, 0);
      assert.equal(other.row(cb[2] as string).id, sn.row(cb[2] as string).id);
      // Removing image a's own snapshot keeps b's chain, which still mounts whole.
      await sn.remove(ca[2] as string);
      const mnt = await mkdtemp(join(work, 'mnt-share-'));
      await mountAll(await sn.view('vb', { parent: cb[2] as string }), mnt);
      try {
        assert.equal(await readFile(join(mnt, 'etc', 'base'), 'utf8'), 'one');
        assert.equal(await readFile(join(mnt, 'b'), 'utf8'), 'image b');
      } finally {
        await unmount(mnt);
        await sn.remove('vb');
      }
      // The namespace 'other' still sees b's chain after default drops it.
      for (const c of [cb[2], cb[1], cb[0]] as string[]) await sn.remove(c);
      assert.equal((await other.stat(cb[2] as string)).kind, 'committed');
    });
  }

  test('unpack: a layer whose digest differs from the diffID, or that is cut short, leaves no snapshot behind', async (t) => {
    const root = await mkdtemp(join(work, 'root-bad-'));
    const berth = await Berth.open({ root });
    t.after(() => berth.close());
    const ns = berth.namespace('default');
    const sn = berth.snapshotter('default');
    const tars = await writeLayers(join(work, 'bad'), { only: [{ name: 'f', data: 'content' }] });
    const layer = await readFile(tars.only as string);
    const put = async (bytes: Uint8Array, mediaType: string) => {
      const digest = digestOf(bytes);
      await writeBlob(ns.content, `t-${digest}`, [bytes], { expected: { digest, size: bytes.length } });
      return { mediaType, digest, size: bytes.length };
    };
    const image = async (layerBytes: Uint8Array, diffID: string) => {
      const config = await put(
        Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffID] } })),
        MediaType.ociConfig,
      );
      const layerDesc = await put(layerBytes, MediaType.ociLayer);
      const manifest = await put(
        Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layerDesc] })),
        MediaType.ociManifest,
      );
      return { manifest, layer: layerDesc };
    };
    const nothingLeft = async () => {
      const left: string[] = [];
      for await (const s of sn.list()) left.push(s.name);
      assert.deepEqual(left, []);
      assert.deepEqual(await readdir(join(root, 'snapshots', sn.driver)), []);
    };
    const wrong = await image(layer, digestOf('not the layer'));
    await assert.rejects(unpack(ns.content, sn, wrong.manifest), {
      code: 'DATA_LOSS',
      message: /uncompressed digest .* but the config says/,
    });
    await nothingLeft();
    // Cut inside the file's data: one line that names the layer and the entry.
    const cut = layer.subarray(0, 512 + 3);
    const truncated = await image(cut, digestOf(cut));
    await assert.rejects(unpack(ns.content, sn, truncated.manifest), (err: Error) => {
      assert.equal((err as { code?: string }).code, 'INVALID_ARGUMENT');
      assert.equal(err.message, `unpack layer ${truncated.layer.digest}: tar: unexpected end of archive inside the data of "f"`);
      return true;
    });
    await nothingLeft();
  });

  test('unpack: a process killed while applying leaves nothing a later unpack trusts, and the next one succeeds', async (t) => {
    const root = await mkdtemp(join(work, 'root-kill-'));
    {
      const berth = await Berth.open({ root });
      const entries = [{ name: 'many', type: 'dir' as const }];
      for (let i = 0; i < 30000; i++) entries.push({ name: `many/f${i}`, data: `file ${i}` } as never);
      const tars = await writeLayers(join(work, 'many'), { many: entries });
      await umociLayers(layout, 'many', [tars.many as string]);
      await skopeoCopy(`oci:${layout}:many`, `docker://${registry.host}/big/many:1`);
      await pull(berth.namespace('default'), `${registry.host}/big/many:1`, { session });
      berth.close();
    }
    const ref = `${registry.host}/big/many:1`;
    const p = spawn(process.execPath, [berthMain, '--root', root, 'image', 'unpack', ref], { stdio: 'ignore' });
    const closed = new Promise((r) => p.on('close', r));
    const snaps = join(root, 'snapshots', 'overlayfs');
    const applying = async () => {
      for (const id of await readdir(snaps).catch(() => [] as string[])) {
        const many = join(snaps, id, 'fs', 'many');
        if ((await readdir(many).catch(() => [] as string[])).length > 500) return true;
      }
      return false;
    };
    let exited = false;
    void closed.then(() => {
      exited = true;
    });
    while (!exited && !(await applying())) await new Promise((r) => setTimeout(r, 5));
    assert.equal(exited, false, 'the unpack was caught while applying');
    p.kill('SIGKILL');
    await closed;
    const berth = await Berth.open({ root });
    t.after(() => berth.close());
    const sn = berth.snapshotter('default');
    const before: { name: string; kind: string }[] = [];
    for await (const s of sn.list()) before.push({ name: s.name, kind: s.kind });
    assert.equal(before.length, 1);
    assert.equal(before[0]?.kind, 'active', 'only the extraction, never a committed snapshot');
    const again = await run(process.execPath, [berthMain, '--root', root, 'image', 'unpack', ref]);
    assert.match(again.stdout, /done: 1 of 1 layers applied/);
    const r = await resolveImage(
      berth.namespace('default').content,
      berth.namespace('default').images.get(ref).target,
      platformMatcher(hostPlatform()),
    );
    const [chain] = chainIDs(r.config.value.rootfs.diff_ids);
    assert.equal((await sn.stat(chain as string)).kind, 'committed');
    const mnt = await mkdtemp(join(work, 'mnt-kill-'));
    await mountAll(await sn.view('vk', { parent: chain as string }), mnt);
    try {
      assert.equal((await readdir(join(mnt, 'many'))).length, 30000);
      assert.equal(await readFile(join(mnt, 'many', 'f29999'), 'utf8'), 'file 29999');
    } finally {
      await unmount(mnt);
    }
  });
});
