import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { LocalStore, writeBlob } from '../content/index.js';
import { type Descriptor, type Digest, digestOf, MediaType } from '../oci/index.js';
import { contentStoreConformance } from '../testutil/content-conformance.js';
import { Metadata } from './index.js';

async function open(t?: { after: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'berth-meta-'));
  const local = new LocalStore(join(dir, 'content'));
  await local.init();
  const md = new Metadata(join(dir, 'metadata.db'), local);
  const cleanup = async () => {
    md.close();
    await rm(dir, { recursive: true, force: true });
  };
  t?.after(cleanup);
  return { dir, local, md, cleanup };
}

contentStoreConformance(
  'NamespacedContentStore',
  async () => {
    const { md, cleanup } = await open();
    return { store: md.namespace('conformance').content, cleanup };
  },
  { labels: true },
);

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const target = (d: Digest): Descriptor => ({ mediaType: MediaType.ociManifest, digest: d, size: 123 });

test('namespaces: a blob added in k8s.io is not listed in default, and is stored once on disk', async (t) => {
  const { md, local } = await open(t);
  const k8s = md.namespace('k8s.io');
  const def = md.namespace('default');
  const data = randomBytes(4096);
  const digest = digestOf(data);
  assert.equal((await writeBlob(k8s.content, 'x', [data])).created, true);
  assert.deepEqual(
    (await collect(k8s.content.list())).map((i) => i.digest),
    [digest],
  );
  assert.deepEqual(await collect(def.content.list()), []);
  await assert.rejects(def.content.info(digest), { code: 'NOT_FOUND' });
  await assert.rejects(def.content.reader({ digest }), { code: 'NOT_FOUND' });
  // The same bytes written in default are shared, not stored again.
  const again = await writeBlob(def.content, 'y', [data], { expected: { digest, size: data.length } });
  assert.equal(again.created, false);
  assert.deepEqual(
    (await collect(def.content.list())).map((i) => i.digest),
    [digest],
  );
  assert.deepEqual(await readdir(join(local.root, 'blobs', 'sha256')), [digest.slice(7)]);
  // Removing one namespace's reference keeps the bytes for the other; the last one removes them.
  await k8s.content.delete(digest);
  assert.equal(local.existsSync(digest)?.size, data.length);
  await def.content.delete(digest);
  assert.equal(local.existsSync(digest), undefined);
});

test('namespaces: labels are per namespace; ingests are per namespace', async (t) => {
  const { md } = await open(t);
  const a = md.namespace('a');
  const b = md.namespace('b');
  const data = randomBytes(10);
  const { digest } = await writeBlob(a.content, 'r', [data], { labels: { who: 'a' } });
  await writeBlob(b.content, 'r', [data], { expected: { digest, size: 10 } });
  await b.content.update(digest, { who: 'b' });
  assert.deepEqual((await a.content.info(digest)).labels, { who: 'a' });
  assert.deepEqual((await b.content.info(digest)).labels, { who: 'b' });
  // The same ref in two namespaces is two ingests.
  const wa = await a.content.writer('same-ref');
  const wb = await b.content.writer('same-ref');
  await wa.close();
  await wb.close();
  assert.deepEqual(
    (await collect(a.content.listStatuses())).map((s) => s.ref),
    ['same-ref'],
  );
});

test('images: create, get, list, put, delete, per namespace', async (t) => {
  const { md } = await open(t);
  const k8s = md.namespace('k8s.io').images;
  const def = md.namespace('default').images;
  const img = k8s.create({ name: 'docker.io/library/busybox:latest', target: target(digestOf('m1')), labels: { x: 'y' } });
  assert.equal(img.target.digest, digestOf('m1'));
  assert.throws(() => k8s.create({ name: img.name, target: target(digestOf('m2')) }), { code: 'ALREADY_EXISTS' });
  assert.deepEqual(
    k8s.list().map((i) => i.name),
    [img.name],
  );
  assert.deepEqual(def.list(), []);
  assert.throws(() => def.get(img.name), { code: 'NOT_FOUND' });
  const moved = k8s.put({ name: img.name, target: target(digestOf('m2')) });
  assert.equal(moved.target.digest, digestOf('m2'));
  assert.equal(moved.createdAt.getTime(), img.createdAt.getTime());
  assert.equal(k8s.get(img.name).target.digest, digestOf('m2'));
  k8s.delete(img.name);
  assert.throws(() => k8s.delete(img.name), { code: 'NOT_FOUND' });
  assert.throws(() => k8s.create({ name: 'x', target: { ...target(digestOf('m')), digest: 'sha256:bad' as Digest } }), {
    code: 'INVALID_ARGUMENT',
  });
});

test('namespaces: create, list, label, remove only when empty', async (t) => {
  const { md } = await open(t);
  const ns = md.namespaces;
  assert.deepEqual(
    ns.list().map((n) => n.name),
    ['default'],
  );
  ns.create('team-a', { owner: 'me' });
  assert.throws(() => ns.create('team-a'), { code: 'ALREADY_EXISTS' });
  for (const bad of ['', 'a b', '-a', 'a/b', 'a..b', 'x'.repeat(77), 'ü']) {
    assert.throws(() => ns.create(bad), { code: 'INVALID_ARGUMENT' }, bad);
    assert.throws(() => md.namespace(bad), { code: 'INVALID_ARGUMENT' }, bad);
  }
  assert.deepEqual(ns.setLabels('team-a', { owner: '', env: 'prod' }).labels, { env: 'prod' });
  md.namespace('team-a').images.create({ name: 'img', target: target(digestOf('x')) });
  assert.throws(() => ns.remove('team-a'), { code: 'FAILED_PRECONDITION', message: /1 image/ });
  md.namespace('team-a').images.delete('img');
  ns.remove('team-a');
  assert.throws(() => ns.remove('team-a'), { code: 'NOT_FOUND' });
  assert.throws(() => md.namespace('team-a').images.list(), { code: 'NOT_FOUND', message: /namespace "team-a": not found/ });
  // Writing into a namespace creates it, as containerd does.
  md.namespace('implicit').images.create({ name: 'i', target: target(digestOf('y')) });
  assert.equal(ns.get('implicit').name, 'implicit');
});

test('leases: create, resources, expiry, withLease', async (t) => {
  const { md } = await open(t);
  const leases = md.namespace('default').leases;
  const expiresAt = new Date(Date.now() + 60_000);
  const l = leases.create({ id: 'pull-1', labels: { why: 'test' }, expiresAt });
  assert.equal(leases.get('pull-1').expiresAt?.getTime(), expiresAt.getTime());
  assert.throws(() => leases.create({ id: 'pull-1' }), { code: 'ALREADY_EXISTS' });
  leases.addResource(l.id, { type: 'content', id: digestOf('a') });
  leases.addResource(l.id, { type: 'ingest', id: 'ref-1' });
  leases.addResource(l.id, { type: 'content', id: digestOf('a') });
  assert.deepEqual(leases.listResources(l.id), [
    { type: 'content', id: digestOf('a') },
    { type: 'ingest', id: 'ref-1' },
  ]);
  leases.deleteResource(l.id, { type: 'ingest', id: 'ref-1' });
  assert.equal(leases.listResources(l.id).length, 1);
  leases.delete(l.id);
  assert.throws(() => leases.listResources(l.id), { code: 'NOT_FOUND' });
  assert.equal(md.db.sqlite.prepare('SELECT count(*) AS n FROM lease_resources').pluck().get(), 0);
  const seen = await leases.withLease(async (lease) => {
    assert.equal(leases.list().length, 1);
    return lease.id;
  });
  assert.match(seen, /^lease-/);
  assert.deepEqual(leases.list(), []);
  await assert.rejects(
    leases.withLease(async () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.deepEqual(leases.list(), []);
});

const metadataModule = new URL('./index.js', import.meta.url).href;
const contentModule = new URL('../content/index.js', import.meta.url).href;

function child(script: string, args: string[]): ChildProcess {
  const code = `import { Metadata } from ${JSON.stringify(metadataModule)};
import { LocalStore } from ${JSON.stringify(contentModule)};
const args = ${JSON.stringify(args)};
${script}`;
  return spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function run(p: ChildProcess): Promise<{ code: number | null; out: string; err: string }> {
  let out = '';
  let err = '';
  p.stdout?.on('data', (d: Buffer) => {
    out += d;
  });
  p.stderr?.on('data', (d: Buffer) => {
    err += d;
  });
  return new Promise((resolve) => p.on('exit', (code) => resolve({ code, out, err })));
}

test('metadata: two processes open a fresh metadata.db and write at once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-meta-mp-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const script = `const [dir, who] = args;
    const local = new LocalStore(dir + '/content');
    await local.init();
    const md = new Metadata(dir + '/metadata.db', local);
    const images = md.namespace('shared').images;
    for (let i = 0; i < 300; i++) {
      images.put({ name: who + '-' + i, target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:' + 'a'.repeat(64), size: i } });
      md.namespace(who).leases.create({ id: 'l' + i });
    }
    console.log(images.list().length);
    md.close();`;
  const results = await Promise.all([run(child(script, [dir, 'a'])), run(child(script, [dir, 'b']))]);
  for (const r of results) assert.equal(r.code, 0, r.err);
  const local = new LocalStore(join(dir, 'content'));
  const md = new Metadata(join(dir, 'metadata.db'), local);
  t.after(() => md.close());
  assert.equal(md.namespace('shared').images.list().length, 600);
  assert.equal(md.namespace('a').leases.list().length, 300);
  assert.equal(md.namespace('b').leases.list().length, 300);
  assert.equal(md.db.sqlite.pragma('integrity_check', { simple: true }), 'ok');
  assert.equal(md.db.sqlite.pragma('journal_mode', { simple: true }), 'wal');
});

test('containers: unique names per namespace, lookup by ID, name or unique prefix, state, rename, delete', async (t) => {
  const { md } = await open(t);
  const a = md.namespace('a').containers;
  const rec = (id: string, name: string) => ({
    id,
    name,
    image: 'docker.io/library/busybox:latest',
    imageId: `sha256:${'1'.repeat(64)}`,
    snapshotter: 'overlayfs',
    snapshotKey: id,
    config: { Cmd: ['true'] },
    state: { status: 'created' as const },
    labels: {},
  });
  const one = `abc1${'0'.repeat(60)}`;
  const two = `abc2${'0'.repeat(60)}`;
  a.create(rec(one, 'web'));
  a.create(rec(two, 'db'));
  assert.throws(() => a.create(rec(`f${'0'.repeat(63)}`, 'web')), { code: 'ALREADY_EXISTS', message: /"\/web" is already in use/ });
  assert.throws(() => a.create(rec(`f${'0'.repeat(63)}`, 'bad name')), { code: 'INVALID_ARGUMENT' });
  md.namespace('b').containers.create(rec(`b${'0'.repeat(63)}`, 'web')); // another namespace: the name is free there
  assert.equal(a.find('web').id, one);
  assert.equal(a.find('/db').id, two);
  assert.equal(a.find(one).name, 'web');
  assert.equal(a.find('abc2').id, two);
  assert.throws(() => a.find('abc'), { code: 'INVALID_ARGUMENT', message: /multiple containers/ });
  assert.throws(() => a.find('nothing'), { code: 'NOT_FOUND', message: /No such container: nothing/ });
  a.setState(one, { status: 'exited', exitCode: 3 });
  assert.deepEqual(a.find('web').state, { status: 'exited', exitCode: 3 });
  assert.throws(() => a.rename(one, 'db'), { code: 'ALREADY_EXISTS' });
  a.rename(one, 'frontend');
  assert.equal(a.find('frontend').id, one);
  assert.deepEqual(
    a
      .list()
      .map((c) => c.name)
      .sort(),
    ['db', 'frontend'],
  );
  assert.throws(() => md.namespaces.remove('a'), { code: 'FAILED_PRECONDITION', message: /2 containers/ });
  a.delete(one);
  a.delete(two);
  assert.throws(() => a.delete(two), { code: 'NOT_FOUND' });
  md.namespaces.remove('a');
});
