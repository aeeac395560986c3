import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BerthError } from '../errdefs/index.js';
import { type BoltBucket, BoltDB, containerdPaths, readBolt } from '../stores/index.js';
import { pushBusyboxImage, pushSharedImages } from '../testutil/busybox.js';
import { berth, fails, ok, TestRoots } from '../testutil/cli.js';
import { type Containerd, startContainerd } from '../testutil/containerd.js';
import { type Dockerd, startDockerd } from '../testutil/dockerd.js';
import { sh } from '../testutil/peers.js';
import { startRegistry, type TestRegistry } from '../testutil/registry.js';

// store explain and store import against the real peers: a private containerd (Debian's) and a
// private dockerd, both holding images pulled from the reference registry, both running.

let registry: TestRegistry;
let work: string;
let containerd: Containerd;
let dockerd: Dockerd;
let croot: string;
let droot: string;
const refs: Record<string, string> = {};
const roots = new TestRoots();

const ctr = (ns: string, ...args: string[]) => sh('ctr', ['-a', containerd.sock, '-n', ns, ...args]);

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-store-'));
  registry = await startRegistry();
  Object.assign(refs, await pushSharedImages(work, registry.host, { 'store/a': { 'a.txt': 'aaa\n' }, 'store/b': { 'b.txt': 'bbbb\n' } }));
  refs['store/c'] = await pushBusyboxImage(work, registry.host, 'store/c');
  containerd = await startContainerd(join(work, 'containerd'));
  croot = join(work, 'containerd', 'root');
  for (const r of Object.values(refs)) await ctr('one', 'images', 'pull', '--plain-http', r);
  await ctr('two', 'images', 'pull', '--plain-http', refs['store/a'] as string);
  await ctr('moby', 'images', 'pull', '--plain-http', refs['store/b'] as string);
  const started = await startDockerd(join(work, 'dockerd'));
  if ('unavailable' in started) throw new Error(`dockerd cannot run here: ${started.unavailable}`);
  dockerd = started;
  droot = join(work, 'dockerd', 'data');
  for (const r of Object.values(refs)) await dockerd.docker('pull', r);
});
after(async () => {
  await roots.cleanup();
  await dockerd?.stop();
  await containerd?.stop();
  await registry?.stop();
  await rm(work, { recursive: true, force: true });
});

interface Layer {
  diffID: string;
  chainID: string;
  digest?: string;
  compressed?: number;
  unpacked: number | null;
  onDisk: number | null;
}
interface Image {
  namespace: string;
  name: string;
  id: string;
  layers: Layer[];
  contentSize: number | null;
  unpackedSize: number | null;
  onDisk: number;
  unique: number;
  shared: number;
}
interface Report {
  kind: string;
  layout: string;
  namespaces: string[];
  images: Image[];
  totals: { images: number; blobs: { count: number; size: number } | null; snapshots: { count: number; size: number } };
  common?: { id: string; dockerImages: number; ctrImages: number }[];
}

const explain = async (args: string[]) =>
  JSON.parse(ok(await berth(join(work, 'unused-root'), ['store', 'explain', ...args, '--format', 'json']), 'explain').stdout) as Report;

/** containerd's progress.Bytes, as ctr prints sizes. */
function ctrBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  let div = 1024;
  let exp = 0;
  for (let x = Math.floor(n / 1024); x >= 1024; x = Math.floor(x / 1024)) {
    div *= 1024;
    exp++;
  }
  return `${(n / div).toFixed(1)} ${'KMGTPE'[exp]}iB`;
}

/** go-units' HumanSizeWithPrecision, as the docker CLI prints sizes. */
function dockerBytes(n: number, precision: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(precision))}${units[i]}`;
}

/** Path, kind, size, mode, mtime and content hash of every entry under `root`: what must not change. */
async function fingerprint(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string) => {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const st = await lstat(path);
      let h = '';
      if (st.isFile())
        h = createHash('sha256')
          .update(await readFile(path))
          .digest('hex');
      out.set(path, `${st.mode}:${st.size}:${st.mtimeMs}:${h}`);
      if (st.isDirectory()) await walk(path);
    }
  };
  await walk(root);
  return out;
}

function assertSame(before: Map<string, string>, now: Map<string, string>, what: string) {
  const changed = [...new Set([...before.keys(), ...now.keys()])].filter((k) => before.get(k) !== now.get(k));
  assert.deepEqual(changed, [], `${what} changed`);
}

describe('store explain', () => {
  test("containerd's store: content as ctr counts it, snapshots as containerd measured them, per namespace", async () => {
    const r = await explain(['containerd', croot]);
    assert.deepEqual(r.namespaces, ['moby', 'one', 'two']);
    assert.equal(r.images.length, 5);
    const listed = await ctr('one', 'images', 'ls');
    const usage = await ctr('one', 'snapshots', 'usage');
    for (const img of r.images.filter((i) => i.namespace === 'one')) {
      // The exact bytes, from the manifest as containerd stored it: manifest + config + layers.
      const manifestDigest = listed
        .split('\n')
        .find((l) => l.startsWith(`${img.name} `))
        ?.split(/\s+/)[2] as string;
      const raw = readFileSync(join(croot, containerdPaths.content, 'blobs', 'sha256', manifestDigest.slice(7)));
      const m = JSON.parse(raw.toString()) as { config: { size: number; digest: string }; layers: { size: number }[] };
      assert.equal(img.contentSize, raw.length + m.config.size + m.layers.reduce((n, l) => n + l.size, 0), img.name);
      assert.equal(img.id, m.config.digest);
      assert.match(
        listed,
        new RegExp(
          `^${img.name.replace(/[.]/g, '\\.')}\\s.*\\s${ctrBytes(img.contentSize as number).replace('.', '\\.')}\\s+linux/amd64`,
          'm',
        ),
      );
      for (const l of img.layers) {
        assert.match(
          usage,
          new RegExp(`^${l.chainID}\\s+${ctrBytes(l.onDisk as number).replace('.', '\\.')}\\s`, 'm'),
          `snapshot ${l.chainID}`,
        );
        assert.ok((l.unpacked as number) > 0);
      }
    }
    const a1 = r.images.find((i) => i.namespace === 'one' && i.name === refs['store/a']) as Image;
    const a2 = r.images.find((i) => i.namespace === 'two' && i.name === refs['store/a']) as Image;
    const c = r.images.find((i) => i.namespace === 'one' && i.name === refs['store/c']) as Image;
    // Namespaces share blobs, not snapshots: `two`'s only image holds its snapshots alone.
    assert.equal(
      a2.unique,
      a2.layers.reduce((n, l) => n + (l.onDisk as number), 0),
    );
    assert.equal(a2.shared, a2.onDisk - a2.unique);
    // a and b share the busybox layer (blob and snapshot); c has no layer of its own beyond it.
    assert.equal(a1.unique, (a1.layers[1] as Layer).onDisk);
    assert.equal(c.unique + c.shared, c.onDisk);
    assert.equal(
      a1.unpackedSize,
      a1.layers.reduce((n, l) => n + (l.unpacked as number), 0),
    );
    // -n narrows the listing, not what sharing is measured against.
    const onlyTwo = await explain(['containerd', croot, '-n', 'two']);
    assert.deepEqual(
      onlyTwo.images.map((i) => [i.namespace, i.unique, i.shared]),
      [['two', a2.unique, a2.shared]],
    );
    assert.ok(r.totals.blobs && r.totals.blobs.count >= 7);
  });

  test("docker's classic store: docker image inspect's Size and docker system df -v, and the images both stores hold", async () => {
    const r = await explain(['docker', droot, '--compare', `containerd=${croot}`]);
    assert.equal(r.layout, 'classic (overlay2)');
    assert.equal(r.images.length, 3);
    const df = await dockerd.docker('system', 'df', '-v');
    for (const img of r.images) {
      assert.equal(img.contentSize, null);
      assert.equal(img.unpackedSize, Number((await dockerd.docker('image', 'inspect', '-f', '{{.Size}}', img.name)).trim()), img.name);
      const others = r.images.filter((i) => i.id !== img.id);
      const shared = img.layers
        .filter((l) => others.some((o) => o.layers.some((x) => x.chainID === l.chainID)))
        .reduce((n, l) => n + (l.unpacked as number), 0);
      const row = df
        .split('\n')
        .find((l) => l.startsWith(`${img.name.replace(/:latest$/, '')} `))
        ?.trim()
        .split(/\s{2,}/)
        .slice(-4) as string[];
      // From the right: SIZE, SHARED SIZE, UNIQUE SIZE, CONTAINERS (Debian's docker 20.10 prints four digits).
      assert.equal(row[0], dockerBytes(img.unpackedSize as number, 4), `SIZE of ${img.name}`);
      assert.equal(row[1], dockerBytes(shared, 4), `SHARED SIZE of ${img.name}`);
      assert.equal(row[2], dockerBytes((img.unpackedSize as number) - shared, 4), `UNIQUE SIZE of ${img.name}`);
    }
    // The same IDs in both stores; the two tools' numbers are the two views of one image.
    const c = await explain(['containerd', croot]);
    assert.equal(r.common?.length, 3);
    for (const x of r.common ?? []) {
      const ci = c.images.find((i) => i.id === x.id) as Image;
      const di = r.images.find((i) => i.id === x.id) as Image;
      assert.equal(x.ctrImages, ci.contentSize);
      assert.equal(x.dockerImages, di.unpackedSize);
      assert.deepEqual(
        di.layers.map((l) => l.diffID),
        ci.layers.map((l) => l.diffID),
      );
      assert.equal(ci.unpackedSize, di.unpackedSize, 'the same files, counted the same way');
    }
    const text = ok(
      await berth(join(work, 'unused-root'), ['store', 'explain', 'docker', droot, '--compare', `containerd=${croot}`]),
      'explain',
    ).stdout;
    assert.match(text, /In both stores \(same image ID/);
    assert.match(text, /docker images counts\nthe unpacked files/);
  });

  test("containerd's database read whole: branch pages, overflow pages, inline buckets", async () => {
    const names = Array.from({ length: 150 }, (_, i) => `many/image-${String(i).padStart(3, '0')}:1`);
    await ctr('many', 'images', 'pull', '--plain-http', refs['store/c'] as string);
    for (const n of names) await ctr('many', 'images', 'tag', refs['store/c'] as string, n);
    const big = 'x'.repeat(3900);
    await ctr('many', 'images', 'label', names[0] as string, `big=${big}`);
    // A container's spec larger than a page: a value on overflow pages.
    const env = `BIG=${'y'.repeat(9000)}`;
    await ctr('many', 'containers', 'create', '--env', env, refs['store/c'] as string, 'big-spec');
    const r = await explain(['containerd', croot, '-n', 'many']);
    assert.deepEqual(r.images.map((i) => i.name).sort(), [...names, refs['store/c']].sort());
    const pages = readBolt(join(croot, containerdPaths.meta), (db) => {
      const images = db.root().bucket('v1', 'many', 'images') as BoltBucket;
      assert.equal(images.bucket(names[0] as string, 'labels')?.text('big'), big, 'a value that fills a page');
      assert.ok(db.root().bucket('v1', 'many', 'containers', 'big-spec')?.get('spec')?.includes(env), 'a value on overflow pages');
      assert.equal(images.bucket(names[149] as string, 'target')?.text('mediatype'), 'application/vnd.oci.image.manifest.v1+json');
      return db;
    });
    assert.ok(pages.txid > 0n);
    // The file holds branch pages (flag 0x01) and overflow (a page header with a non-zero count).
    const file = readFileSync(join(croot, containerdPaths.meta));
    const headers = Array.from({ length: file.length / 4096 }, (_, i) => ({
      flags: file.readUInt16LE(i * 4096 + 8),
      overflow: file.readUInt32LE(i * 4096 + 12),
    }));
    assert.ok(
      headers.some((h) => h.flags === 0x01),
      'a branch page',
    );
    assert.ok(
      headers.some((h) => h.flags === 0x02 && h.overflow > 0),
      'a leaf page with overflow',
    );
  });

  test("docker on containerd's image store (docker 24+) is containerd's moby namespace", async () => {
    const root = join(work, 'docker24');
    mkdirSync(join(root, 'containerd'), { recursive: true });
    symlinkSync(croot, join(root, 'containerd', 'daemon'));
    const r = await explain(['docker', root]);
    assert.match(r.layout, /containerd image store .*namespace moby/);
    assert.deepEqual(
      r.images.map((i) => i.name),
      [refs['store/b']],
    );
    assert.ok((r.images[0] as Image).contentSize);
  });

  test('nothing in either store changes, while both daemons run; reads stay whole while containerd writes', async () => {
    await ctr('one', 'images', 'tag', refs['store/a'] as string, 'churn/0:1');
    // docker's image store and layers, containerd's content, snapshots and metadata: dockerd's own
    // state (networks, its containerd's tasks) is not the store.
    const stores = [
      join(droot, 'image'),
      join(droot, 'overlay2'),
      join(croot, containerdPaths.content),
      join(croot, 'io.containerd.snapshotter.v1.overlayfs'),
    ];
    const before = await Promise.all(stores.map(fingerprint));
    const metaBefore = readFileSync(join(croot, containerdPaths.meta));
    for (const args of [
      ['docker', droot],
      ['containerd', croot],
      ['docker', droot, '--compare', `containerd=${croot}`],
    ])
      await explain(args);
    const root = await roots.make(work);
    ok(await berth(root, ['store', 'import', 'docker', droot, '-q']), 'import docker');
    ok(await berth(root, ['store', 'import', 'containerd', croot, '--source-namespace', 'one', '-q']), 'import containerd');
    const now = await Promise.all(stores.map(fingerprint));
    for (const [i, what] of stores.entries()) assertSame(before[i] as Map<string, string>, now[i] as Map<string, string>, what);
    assert.ok(readFileSync(join(croot, containerdPaths.meta)).equals(metaBefore), "containerd's meta.db changed");

    // containerd commits transactions (tags made and removed) while explain reads its database.
    let writing = true;
    const writer = (async () => {
      for (let i = 1; writing; i++) {
        await ctr('one', 'images', 'tag', refs['store/b'] as string, `churn/${i}:1`);
        await ctr('one', 'images', 'rm', `churn/${i - 1}:1`);
      }
    })();
    const seen = new Set<number>();
    for (let i = 0; i < 12; i++) seen.add((await explain(['containerd', croot, '-n', 'one'])).images.length);
    writing = false;
    await writer;
    assert.ok(
      [...seen].every((n) => n === 4 || n === 5),
      `every read saw the three images and one or two churn tags: ${[...seen]}`,
    );
  });

  test('a copy torn by a commit is read again; an error over a steady file stands', async () => {
    const older = readFileSync(join(croot, containerdPaths.meta));
    await ctr('one', 'images', 'tag', refs['store/a'] as string, 'torn/0:1');
    const newer = readFileSync(join(croot, containerdPaths.meta));
    await ctr('one', 'images', 'rm', 'torn/0:1');
    const file = join(work, 'torn.db');
    writeFileSync(file, older);
    const names = (db: BoltDB) => [...(db.root().bucket('v1', 'one', 'images')?.entries() ?? [])].map((e) => e.key.toString());
    // The first read fails as a torn copy does (a bucket of another tree), while a commit lands.
    let calls = 0;
    const seen = readBolt(file, (db) => {
      if (calls++ === 0) {
        writeFileSync(file, newer);
        throw new Error('a bucket that is not there');
      }
      return names(db);
    });
    assert.equal(calls, 2);
    assert.ok(seen.includes('torn/0:1'), 'the second read is of the newer file');
    // The same failure over a file that did not change is the file's.
    assert.throws(
      () =>
        readBolt(file, () => {
          throw new Error('not containerd');
        }),
      /not containerd/,
    );
  });
});

describe('store import', () => {
  test('every image keeps its ID and runs under berth, from either store', async () => {
    const root = await roots.make(work);
    const fromDocker = ok(await berth(root, ['-n', 'd', 'store', 'import', 'docker', droot, '--format', 'json']), 'import docker');
    const fromContainerd = ok(
      await berth(root, [
        '-n',
        'c',
        'store',
        'import',
        'containerd',
        croot,
        '--source-namespace',
        'one',
        refs['store/a'] as string,
        '--format',
        'json',
      ]),
      'import containerd',
    );
    const docker = (out: string) => JSON.parse(out) as { name: string; id: string }[];
    assert.equal(docker(fromDocker.stdout).length, 3);
    assert.deepEqual(
      docker(fromContainerd.stdout).map((i) => i.name),
      [refs['store/a']],
    );
    for (const [name, ref] of Object.entries(refs)) {
      const id = (await dockerd.docker('image', 'inspect', '-f', '{{.Id}}', ref)).trim();
      assert.equal((docker(fromDocker.stdout).find((i) => i.name === ref) as { id: string }).id, id, name);
    }
    assert.equal(
      (docker(fromContainerd.stdout)[0] as { id: string }).id,
      (await dockerd.docker('image', 'inspect', '-f', '{{.Id}}', refs['store/a'] as string)).trim(),
    );
    assert.equal(
      ok(await berth(root, ['-n', 'd', 'run', '--rm', refs['store/b'] as string, 'cat', '/b.txt']), 'run docker import').stdout,
      'bbbb\n',
    );
    assert.equal(
      ok(await berth(root, ['-n', 'c', 'run', '--rm', refs['store/a'] as string, 'cat', '/a.txt']), 'run containerd import').stdout,
      'aaa\n',
    );
    // On one filesystem containerd's blobs are shared by hard links, not copied; --copy copies.
    const linked = await roots.make(work);
    ok(await berth(linked, ['store', 'import', 'containerd', croot, '--source-namespace', 'one', '-q']), 'import');
    const cdir = join(croot, containerdPaths.content, 'blobs', 'sha256');
    const ours = (r: string) => readdirSync(join(r, 'content', 'blobs', 'sha256'));
    assert.deepEqual(ours(linked), readdirSync(cdir));
    for (const hex of ours(linked))
      assert.equal(statSync(join(linked, 'content', 'blobs', 'sha256', hex)).ino, statSync(join(cdir, hex)).ino, hex);
    const copied = await roots.make(work);
    ok(await berth(copied, ['store', 'import', 'containerd', croot, '--source-namespace', 'one', '--copy', '-q']), 'import --copy');
    assert.deepEqual(ours(copied), readdirSync(cdir));
    for (const hex of ours(copied)) {
      assert.notEqual(statSync(join(copied, 'content', 'blobs', 'sha256', hex)).ino, statSync(join(cdir, hex)).ino, hex);
    }
    // The containerd import keeps the manifest too: the same digest as the registry's.
    const inspected = JSON.parse(ok(await berth(root, ['-n', 'c', 'image', 'inspect', refs['store/a'] as string]), 'inspect').stdout) as {
      RepoDigests: string[];
    }[];
    const listed = await ctr('one', 'images', 'ls');
    const digest = listed
      .split('\n')
      .find((l) => l.startsWith(`${refs['store/a']} `))
      ?.split(/\s+/)[2];
    assert.ok(
      inspected[0]?.RepoDigests.some((d) => d.endsWith(`@${digest}`)),
      JSON.stringify(inspected[0]?.RepoDigests),
    );
  });

  test('a layer that cannot be rebuilt exactly is refused, and nothing is imported', async () => {
    const root = await roots.make(work);
    // A copy of the docker store whose one layer file changed length.
    const copy = join(work, 'docker-copy');
    await sh('cp', ['-a', droot, copy]);
    const cacheID = readFileSync(
      join(
        copy,
        'image/overlay2/layerdb/sha256',
        (await explain(['docker', copy])).images.find((i) => i.name === refs['store/a'])?.layers[1]?.chainID.slice(7) as string,
        'cache-id',
      ),
      'utf8',
    );
    writeFileSync(join(copy, 'overlay2', cacheID, 'diff', 'a.txt'), 'changed\n');
    const _r = fails(
      await berth(root, ['store', 'import', 'docker', copy, refs['store/a'] as string, '-q']),
      2,
      /a\.txt.* is not the 4 bytes the layer recorded/,
    );
    // Same length, other bytes: the diff ID check refuses it.
    writeFileSync(join(copy, 'overlay2', cacheID, 'diff', 'a.txt'), 'zzz\n');
    fails(
      await berth(root, ['store', 'import', 'docker', copy, refs['store/a'] as string, '-q']),
      5,
      /the rebuilt tar is sha256:\w+, not the image's diff ID/,
    );
    rmSyncTarSplit(copy);
    fails(
      await berth(root, ['store', 'import', 'docker', copy, refs['store/c'] as string, '-q']),
      5,
      /tar-split\.json\.gz is missing.*cannot be rebuilt exactly/,
    );
    assert.equal(ok(await berth(root, ['images', '-q']), 'images').stdout, '');
    fails(await berth(root, ['store', 'import', 'docker', droot, 'no/such:image', '-q']), 3, /no image "no\/such:image"/);
    await rm(copy, { recursive: true, force: true });
  });
});

function rmSyncTarSplit(root: string) {
  for (const d of readdirSync(join(root, 'image/overlay2/layerdb/sha256'))) {
    rmSync(join(root, 'image/overlay2/layerdb/sha256', d, 'tar-split.json.gz'), { force: true });
  }
}

describe('bad stores', () => {
  test('a missing directory, a foreign layout, a truncated or corrupt meta.db: one line and an exit code each', async () => {
    const cli = (args: string[]) => berth(join(work, 'unused-root'), ['store', 'explain', ...args]);
    fails(await cli(['docker', join(work, 'nothing')]), 3, /nothing: no such directory/);
    fails(await cli(['containerd', work]), 2, /not a containerd root/);
    fails(await cli(['docker', work]), 2, /not a docker data root/);
    fails(await cli(['podman', work]), 2, /expected docker or containerd/);
    const fake = join(work, 'fake-containerd');
    mkdirSync(join(fake, 'io.containerd.metadata.v1.bolt'), { recursive: true });
    const meta = readFileSync(join(croot, containerdPaths.meta));
    writeFileSync(join(fake, containerdPaths.meta), meta.subarray(0, 3000));
    fails(await cli(['containerd', fake]), 11, /meta\.db: truncated/);
    // Both meta pages damaged.
    const bad = Buffer.from(meta);
    bad.fill(0xff, 16, 80);
    bad.fill(0xff, 4096 + 16, 4096 + 80);
    writeFileSync(join(fake, containerdPaths.meta), bad);
    fails(await cli(['containerd', fake]), 11, /no valid meta page/);
    // A file cut short after its meta pages.
    writeFileSync(join(fake, containerdPaths.meta), meta.subarray(0, 3 * 4096));
    fails(await cli(['containerd', fake]), 11, /meta\.db: truncated \(12288 bytes; its meta page counts \d+ pages/);
    writeFileSync(join(fake, containerdPaths.meta), 'not a database at all, but long enough?'.repeat(200));
    fails(await cli(['containerd', fake]), 11, /no valid meta page/);
  });

  test('fuzz: a damaged bbolt file gives a BerthError or a result, never a crash or a hang', () => {
    const meta = readFileSync(join(croot, containerdPaths.meta));
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const walk = (b: BoltBucket, n: { count: number }) => {
      for (const e of b.entries()) {
        n.count++;
        if (e.bucket) walk(e.bucket, n);
      }
    };
    let ok = 0;
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      const buf = Buffer.from(meta);
      const kind = i % 4;
      if (kind === 0) for (let j = 0; j < 8; j++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
      else if (kind === 1) {
        // Damage inside the pages past the metas, where no checksum guards.
        const page = 2 + Math.floor(rand() * (buf.length / 4096 - 2));
        for (let j = 0; j < 16; j++) buf[page * 4096 + Math.floor(rand() * 64)] = Math.floor(rand() * 256);
      } else if (kind === 2) buf.writeUInt32LE(Math.floor(rand() * 0xffffffff), 2 * 4096 + 16 + Math.floor(rand() * 8) * 4);
      const file = kind === 3 ? buf.subarray(0, Math.floor(rand() * buf.length)) : buf;
      try {
        const n = { count: 0 };
        walk(new BoltDB(file).root(), n);
        ok++;
      } catch (err) {
        assert.ok(err instanceof BerthError, `case ${i}: ${(err as Error).stack}`);
        refused++;
      }
    }
    assert.ok(ok > 0 && refused > 0, `${ok} read, ${refused} refused`);
  });
});
