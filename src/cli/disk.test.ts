import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ImageUsage } from '../images/index.js';
import { chainIDs, type Digest, digestHex } from '../oci/index.js';
import { Berth } from '../services/index.js';
import { pushSharedImages } from '../testutil/busybox.js';
import { berth, fails, ok, TestRoots } from '../testutil/cli.js';
import { skopeoRaw } from '../testutil/peers.js';
import { startRegistry, type TestRegistry } from '../testutil/registry.js';

// Sizes, garbage collection, prune, fsck and verify, on images that share their bottom layer
// (busybox) and differ in a top layer, pulled from the reference registry into two namespaces.

let registry: TestRegistry;
let work: string;
let refs: Record<string, string>;
let A: string;
let B: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-disk-'));
  registry = await startRegistry();
  refs = await pushSharedImages(work, registry.host, {
    'gc/a': { 'a.txt': 'image a\n', 'data/a.bin': Buffer.alloc(300_000, 1) },
    'gc/b': { 'b.txt': 'image b\n', 'data/b.bin': Buffer.alloc(500_000, 2) },
  });
  A = refs['gc/a'] as string;
  B = refs['gc/b'] as string;
});
after(async () => {
  await roots.cleanup();
  await registry.stop();
  await rm(work, { recursive: true, force: true });
});

const roots = new TestRoots();
const newRoot = () => roots.make(work);
const json = async <T>(root: string, args: string[]): Promise<T> =>
  JSON.parse(ok(await berth(root, [...args, '--format', 'json']), args.join(' ')).stdout) as T;
/** du(1)'s figure for a path: allocated bytes, hardlinks once. */
const du = (...paths: string[]) =>
  Number(
    execFileSync('du', ['-s', '-c', '-B1', ...paths], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop()
      ?.split('\t')[0],
  );
const blobFile = (root: string, d: string) => join(root, 'content', 'blobs', 'sha256', digestHex(d as Digest));

interface Manifest {
  config: { digest: string; size: number };
  layers: { digest: string; size: number }[];
}
async function manifestOf(ref: string): Promise<{ raw: string; m: Manifest; diffIDs: Digest[] }> {
  const raw = await skopeoRaw(`docker://${ref}`, 'manifest');
  const config = JSON.parse(await skopeoRaw(`docker://${ref}`, 'config')) as { rootfs: { diff_ids: Digest[] } };
  return { raw, m: JSON.parse(raw) as Manifest, diffIDs: config.rootfs.diff_ids };
}

/** The snapshot directories (`.../<id>/fs`) of an image's layer stacks in a namespace. */
async function snapshotDirs(root: string, ns: string, diffIDs: Digest[]): Promise<string[]> {
  const b = await Berth.open({ root });
  try {
    const sn = b.snapshotter(ns);
    return chainIDs(diffIDs).map((c) => sn.impl.fsDir(sn.row(c).id));
  } finally {
    b.close();
  }
}

const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
const fileSize = async (p: string) => (await stat(p)).size;

describe('disk: size views, gc, prune, fsck, verify', () => {
  test('image size and system df are exact, across two namespaces that share layers', async () => {
    const root = await newRoot();
    ok(await berth(root, ['pull', '-q', A]), 'pull A');
    ok(await berth(root, ['pull', '-q', B]), 'pull B');
    ok(await berth(root, ['-n', 'k8s.io', 'pull', '-q', A]), 'pull A into k8s.io');
    const a = await manifestOf(A);
    const b = await manifestOf(B);

    const sizeA = await json<ImageUsage>(root, ['image', 'size', A]);
    // containerd's and crictl's number: the manifest as the registry serves it, its config and layers
    assert.equal(sizeA.content, Buffer.byteLength(a.raw) + a.m.config.size + sum(a.m.layers.map((l) => l.size)));
    const blobsA = [sizeA.manifest?.digest as string, a.m.config.digest, ...a.m.layers.map((l) => l.digest)];
    assert.equal(sizeA.contentStored, sum(await Promise.all(blobsA.map((d) => fileSize(blobFile(root, d))))));
    const dirsA = await snapshotDirs(root, 'default', a.diffIDs);
    assert.equal(sizeA.snapshots, sum(dirsA.map((d) => du(d))));
    assert.equal(sizeA.total, sizeA.contentStored + sizeA.snapshots);
    assert.equal(sizeA.layers.length, 2);
    assert.ok((sizeA.unpacked ?? 0) > 1_000_000, 'busybox and the top files, unpacked');
    assert.ok((sizeA.layers[1]?.tar ?? 0) > 300_000);
    // Everything of A in default is also held by A in k8s.io; the bottom layer by B too.
    assert.equal(sizeA.unique, 0);
    assert.equal(sizeA.shared, sizeA.total);
    assert.deepEqual(sizeA.layers[0]?.sharedWith, [`default/${B}`, `k8s.io/${A}`]);
    assert.deepEqual(sizeA.layers[1]?.sharedWith, [`k8s.io/${A}`]);

    const sizeB = await json<ImageUsage>(root, ['image', 'size', B]);
    const dirsB = await snapshotDirs(root, 'default', b.diffIDs);
    const uniqueB =
      sum(
        await Promise.all(
          [sizeB.manifest?.digest as string, b.m.config.digest, b.m.layers[1]?.digest as string].map((d) => fileSize(blobFile(root, d))),
        ),
      ) + du(dirsB[1] as string);
    assert.equal(sizeB.unique, uniqueB);
    assert.equal(sizeB.shared, (await fileSize(blobFile(root, b.m.layers[0]?.digest as string))) + du(dirsB[0] as string));
    assert.match(
      ok(await berth(root, ['image', 'size', B]), 'image size').stdout,
      /Content .*crictl[\s\S]*Unpacked .*docker images[\s\S]*Why they differ/,
    );

    interface Df {
      namespaces: { namespace: string; images: { total: number; active: number; size: number; reclaimable: number } }[];
      store: { blobs: { count: number; size: number } };
    }
    const df = await json<Df>(root, ['system', 'df']);
    const images = df.namespaces[0]?.images;
    // A and B counted once each part: the shared layer once.
    const distinctBlobs = new Set([...blobsA, sizeB.manifest?.digest as string, b.m.config.digest, ...b.m.layers.map((l) => l.digest)]);
    const union = sum(await Promise.all([...distinctBlobs].map((d) => fileSize(blobFile(root, d))))) + du(...new Set([...dirsA, ...dirsB]));
    assert.deepEqual(images, {
      total: 2,
      active: 0,
      size: union,
      reclaimable: sizeB.unique,
      items: images && (images as { items?: unknown }).items,
    });
    assert.equal(df.store.blobs.count, distinctBlobs.size);
    const all = await json<Df>(root, ['system', 'df', '--all-namespaces']);
    assert.deepEqual(
      all.namespaces.map((n) => [n.namespace, n.images.total]),
      [
        ['default', 2],
        ['k8s.io', 1],
      ],
    );
    assert.match(
      ok(await berth(root, ['system', 'df', '-v']), 'df -v').stdout,
      /TYPE +TOTAL +ACTIVE +SIZE +RECLAIMABLE\nImages +2 +0[\s\S]*SHARED SIZE +UNIQUE SIZE +CONTAINERS/,
    );
  });

  test('system prune -a reports exactly the space it frees on disk', async () => {
    const root = await newRoot();
    ok(await berth(root, ['pull', '-q', A]), 'pull A');
    ok(await berth(root, ['pull', '-q', B]), 'pull B');
    ok(await berth(root, ['-n', 'k8s.io', 'pull', '-q', A]), 'pull A into k8s.io');
    ok(await berth(root, ['run', '--name', 'c1', B, 'sh', '-c', 'head -c 200000 /dev/zero > /big']), 'run c1');
    const dirs = () => ['content', 'snapshots', 'containers'].map((d) => join(root, d));
    const prune = async (ns: string) => {
      const before = du(...dirs());
      const r = await json<{ spaceReclaimed: number; containersDeleted?: string[]; imagesUntagged: string[] }>(root, [
        '-n',
        ns,
        'system',
        'prune',
        '-a',
        '-f',
      ]);
      assert.equal(r.spaceReclaimed, before - du(...dirs()), `${ns}: reported = freed on disk`);
      return r;
    };
    const first = await prune('default');
    assert.equal(first.containersDeleted?.length, 1);
    assert.deepEqual(first.imagesUntagged.sort(), [A, B].sort());
    assert.ok(first.spaceReclaimed > 500_000, 'B, its layer and the container are gone');
    // A stays whole in k8s.io
    ok(await berth(root, ['-n', 'k8s.io', 'run', '--rm', A, 'cat', '/a.txt']), 'A still runs in k8s.io');
    const second = await prune('k8s.io');
    assert.ok(second.spaceReclaimed > 1_000_000);
    assert.deepEqual(await readdir(join(root, 'content', 'blobs', 'sha256')), []);
    assert.deepEqual(
      (await readdir(join(root, 'snapshots', 'overlayfs'))).filter((n) => /^\d+$/.test(n)),
      [],
    );
  });

  test('prune filters: until=, label=, label!=; images that containers use stay', async () => {
    const root = await newRoot();
    ok(await berth(root, ['pull', '-q', A]), 'pull A');
    ok(await berth(root, ['pull', '-q', B]), 'pull B');
    ok(await berth(root, ['create', '--name', 'keep', '--label', 'keep=yes', A, 'true']), 'create keep');
    ok(await berth(root, ['create', '--name', 'tmp', A, 'true']), 'create tmp');
    const kept = await json<{ containersDeleted: string[] }>(root, ['container', 'prune', '-f', '--filter', 'label!=keep']);
    assert.equal(kept.containersDeleted.length, 1);
    assert.deepEqual(
      (await json<{ Names: string }[]>(root, ['ps', '-a'])).map((c) => c.Names),
      ['keep'],
    );
    // Nothing was made more than an hour ago; until=0s is everything made before now.
    assert.deepEqual(
      (await json<{ imagesUntagged: string[] }>(root, ['image', 'prune', '-a', '-f', '--filter', 'until=1h'])).imagesUntagged,
      [],
    );
    const pruned = await json<{ imagesUntagged: string[]; spaceReclaimed: number }>(root, [
      'image',
      'prune',
      '-a',
      '-f',
      '--filter',
      'until=0s',
    ]);
    assert.deepEqual(pruned.imagesUntagged, [B], 'A is used by a container');
    assert.ok(pruned.spaceReclaimed > 500_000);
    fails(await berth(root, ['image', 'prune', '-f', '--filter', 'color=red']), 2, /invalid filter "color"/);
    ok(await berth(root, ['rm', 'keep']), 'rm keep');
    assert.deepEqual((await json<{ imagesUntagged: string[] }>(root, ['image', 'prune', '-a', '-f'])).imagesUntagged, [A]);
  });

  test('gc: rmi frees what only that image held; leases, roots, loose content, stale ingests, orphans', async () => {
    const root = await newRoot();
    ok(await berth(root, ['pull', '-q', A]), 'pull A');
    ok(await berth(root, ['pull', '-q', B]), 'pull B');
    const b = await manifestOf(B);
    await writeFile(join(work, 'swept.txt'), 'loose content rmi does not own\n');
    const swept = ok(await berth(root, ['content', 'add', '-q', join(work, 'swept.txt')]), 'content add')
      .stdout.trim()
      .split(/\s+/)
      .pop();
    const rmi = ok(await berth(root, ['rmi', B]), 'rmi B').stdout;
    // As docker: the name untagged, then the image ID and B's own layer stack (the shared bottom one
    // stays for A); not the loose blob the same gc swept.
    assert.equal(rmi, `Untagged: ${B}\nDeleted: ${b.m.config.digest}\nDeleted: ${chainIDs(b.diffIDs)[1]}\n`);
    await assert.rejects(stat(blobFile(root, swept as string)), { code: 'ENOENT' });
    // B's own blobs go at once (gcAfterRemove); the shared bottom layer stays for A.
    await assert.rejects(stat(blobFile(root, b.m.layers[1]?.digest as string)), { code: 'ENOENT' });
    await stat(blobFile(root, b.m.layers[0]?.digest as string));
    ok(await berth(root, ['run', '--rm', A, 'cat', '/a.txt']), 'A runs');
    assert.deepEqual((await json<{ blobs: unknown[]; snapshots: unknown[] }>(root, ['gc', '--dry-run'])).blobs, []);

    // Loose content is garbage unless labelled a root or held by a lease.
    const file = join(work, 'loose.txt');
    await writeFile(file, 'loose content\n');
    const loose = ok(await berth(root, ['content', 'add', '-q', file]), 'content add')
      .stdout.trim()
      .split(/\s+/)
      .pop() as string;
    await writeFile(join(work, 'kept.txt'), 'kept content\n');
    const kept = ok(await berth(root, ['content', 'add', '-q', '-l', 'containerd.io/gc.root=1', join(work, 'kept.txt')]), 'add root')
      .stdout.trim()
      .split(/\s+/)
      .pop() as string;
    const leased = 'leased content\n';
    await writeFile(join(work, 'leased.txt'), leased);
    const held = ok(await berth(root, ['content', 'add', '-q', join(work, 'leased.txt')]), 'add leased')
      .stdout.trim()
      .split(/\s+/)
      .pop() as string;
    {
      const berthRoot = await Berth.open({ root });
      const leases = berthRoot.namespace('default').leases;
      leases.create({ id: 'hold' });
      leases.addResource('hold', { type: 'content', id: held });
      leases.create({ id: 'old', expiresAt: new Date(Date.now() - 1000) });
      // An interrupted ingest: fresh ones stay (they may be resumed), old ones go.
      const w = await berthRoot.namespace('default').content.writer('interrupted');
      await w.write(Buffer.from('partial'));
      await w.close();
      berthRoot.close();
    }
    await mkdir(join(root, 'snapshots', 'overlayfs', '99999', 'fs'), { recursive: true });
    const dry = await json<{ blobs: { digest: string }[]; leases: { id: string }[]; orphans: { path: string }[] }>(root, [
      'gc',
      '--dry-run',
    ]);
    assert.deepEqual(
      dry.blobs.map((x) => x.digest),
      [loose],
    );
    assert.deepEqual(
      dry.leases.map((l) => l.id),
      ['old'],
    );
    assert.deepEqual(
      dry.orphans.map((o) => o.path),
      [join(root, 'snapshots', 'overlayfs', '99999')],
    );
    await stat(blobFile(root, loose)); // dry run removed nothing
    const gc = ok(await berth(root, ['gc']), 'gc').stdout;
    assert.match(gc, /Removed 1 blob .* 1 expired lease, 0 stale ingests .* 1 orphaned directory/);
    await assert.rejects(stat(blobFile(root, loose)), { code: 'ENOENT' });
    await stat(blobFile(root, kept));
    await stat(blobFile(root, held));
    assert.match(
      ok(await berth(root, ['lease', 'ls']), 'lease ls').stdout,
      /^ID +CREATED +EXPIRES +RESOURCES +LABELS\nhold +.* never +1 +-\n$/,
    );
    ok(await berth(root, ['lease', 'rm', 'hold']), 'lease rm'); // collects at once
    await assert.rejects(stat(blobFile(root, held)), { code: 'ENOENT' });
    const berthRoot = await Berth.open({ root });
    try {
      assert.equal((await berthRoot.gc({ ingestMaxAge: 0 })).ingests.length, 1);
    } finally {
      berthRoot.close();
    }
    assert.match(ok(await berth(root, ['lease', 'create', '--id', 'x', '--expires', '1h']), 'lease create').stdout, /^x\n$/);
    fails(await berth(root, ['lease', 'create', '--expires', 'soon']), 2, /invalid --expires "soon"/);

    // With gcAfterRemove off, rmi leaves the content to the next gc.
    ok(await berth(root, ['system', 'config', 'gcAfterRemove', 'false']), 'config');
    assert.equal(ok(await berth(root, ['system', 'config', 'gcAfterRemove']), 'config').stdout, 'gcAfterRemove=false\n');
    const a = await manifestOf(A);
    ok(await berth(root, ['rmi', A]), 'rmi A');
    await stat(blobFile(root, a.m.layers[0]?.digest as string));
    const last = await json<{ blobs: unknown[]; snapshots: unknown[] }>(root, ['gc']);
    assert.equal(last.blobs.length, 4, "A's manifest, config and two layers");
    assert.equal(last.snapshots.length, 2);
  });

  test('compressed layers dropped once unpacked: per pull and as the root default; df shows the saving; push refuses', async () => {
    const root = await newRoot();
    const b = await manifestOf(B);
    ok(await berth(root, ['pull', '-q', '--discard-unpacked-layers', B]), 'pull, dropping layers');
    for (const l of b.m.layers) await assert.rejects(stat(blobFile(root, l.digest)), { code: 'ENOENT' });
    const size = await json<ImageUsage>(root, ['image', 'size', B]);
    assert.deepEqual(
      size.layers.map((l) => l.stored),
      [false, false],
    );
    const layers = sum(b.m.layers.map((l) => l.size));
    assert.equal(size.contentStored, size.content - layers);
    const df = await json<{ store: { droppedLayers: { count: number; size: number } } }>(root, ['system', 'df']);
    assert.deepEqual(df.store.droppedLayers, { count: 2, size: layers });
    assert.equal(ok(await berth(root, ['run', '--rm', B, 'cat', '/b.txt']), 'run').stdout, 'image b\n');
    assert.match(ok(await berth(root, ['image', 'verify', B]), 'verify').stdout, /ok +layer 1 .*dropped after unpacking/);
    assert.match(ok(await berth(root, ['fsck']), 'fsck').stdout, /^0 errors, 0 orphans\n$/);
    fails(
      await berth(root, ['push', B, `${registry.host}/gc/copy:1`]),
      5,
      /layer sha256:\w+ is not in the content store .*pull the image again/,
    );
    // As the root's default; a pull may still keep them.
    ok(await berth(root, ['system', 'config', 'keepCompressedLayers', 'false']), 'config');
    ok(await berth(root, ['pull', '-q', A]), 'pull A');
    const a = await manifestOf(A);
    await assert.rejects(stat(blobFile(root, a.m.layers[1]?.digest as string)), { code: 'ENOENT' });
    ok(await berth(root, ['pull', '-q', '--no-discard-unpacked-layers', B]), 'pull B keeping layers');
    for (const l of b.m.layers) await stat(blobFile(root, l.digest));
    ok(await berth(root, ['push', B, `${registry.host}/gc/copy:1`]), 'push');
  });

  test('fsck finds a corrupt blob, a deleted snapshot directory and orphans; --repair; image verify', async () => {
    const root = await newRoot();
    ok(await berth(root, ['pull', '-q', A]), 'pull A');
    ok(await berth(root, ['pull', '-q', B]), 'pull B');
    assert.match(ok(await berth(root, ['fsck']), 'fsck clean').stdout, /^0 errors, 0 orphans\n$/);
    const verified = ok(await berth(root, ['image', 'verify', A]), 'verify').stdout;
    assert.match(verified, /^ok +manifest .*\nok +config .*the image ID\nok +layer 1 [\s\S]*ok +diffID 2 [\s\S]*ok +chainID 2 .*unpacked/);
    assert.match(verified, /every link holds/);

    const a = await manifestOf(A);
    const b = await manifestOf(B);
    // Damage: one byte of A's top layer, B's top snapshot directory, and an orphan of each kind.
    const fh = await open(blobFile(root, a.m.layers[1]?.digest as string), 'r+');
    await fh.write(Buffer.from([0x42]), 0, 1, 100);
    await fh.close();
    const [, topB] = await snapshotDirs(root, 'default', b.diffIDs);
    await rm(join(topB as string, '..'), { recursive: true });
    await mkdir(join(root, 'snapshots', 'overlayfs', '123456', 'fs'), { recursive: true });
    const orphan = 'nobody references me';
    const orphanDigest = `sha256:${createHash('sha256').update(orphan).digest('hex')}`;
    await writeFile(blobFile(root, orphanDigest), orphan);

    const broken = await berth(root, ['image', 'verify', A]);
    assert.equal(broken.code, 11);
    assert.match(broken.stdout, /FAILED +layer 2 +sha256:\w+ +the bytes hash to sha256:/);
    assert.match(broken.stderr, /1 link of the hash chain broken/);

    const found = await berth(root, ['fsck']);
    assert.equal(found.code, 11, found.stderr);
    assert.match(found.stderr, /^berth: fsck: \d+ errors found\n$/);
    assert.match(found.stdout, new RegExp(`error +corrupt-blob +${a.m.layers[1]?.digest}: content does not match its digest`));
    assert.match(found.stdout, /error +missing-snapshot-dir +overlayfs\/\d+: snapshot "sha256:\w+" \(committed\) has no directory/);
    assert.match(found.stdout, new RegExp(`orphan +orphan-blob +${orphanDigest}: no namespace references this blob`));
    assert.match(found.stdout, /orphan +orphan-dir +.*\/snapshots\/overlayfs\/123456: a snapshot directory without a snapshot/);
    assert.match(
      found.stdout,
      new RegExp(`error +broken-image +default/${A.replace(/[.]/g, '\\.')}: layer ${a.m.layers[1]?.digest} corrupt`),
    );

    const repaired = await berth(root, ['fsck', '--repair']);
    assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr);
    assert.match(repaired.stdout, /repaired/);
    // The healthy blobs are all there; pulling again restores what was damaged.
    for (const d of [a.m.layers[0]?.digest, b.m.layers[1]?.digest, a.m.config.digest] as string[]) await stat(blobFile(root, d));
    ok(await berth(root, ['pull', '-q', A]), 'pull A again');
    ok(await berth(root, ['pull', '-q', B]), 'pull B again');
    assert.match(ok(await berth(root, ['fsck']), 'fsck after').stdout, /^0 errors, 0 orphans\n$/);
    ok(await berth(root, ['image', 'verify', A]), 'verify A');
    assert.equal(ok(await berth(root, ['run', '--rm', B, 'cat', '/b.txt']), 'run B').stdout, 'image b\n');
  });
});
