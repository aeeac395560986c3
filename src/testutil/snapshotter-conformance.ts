// The Snapshotter contract, run against every driver (snapshots.test.ts).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, link, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { applyLayer, readTar } from '../archive/index.js';
import { mountAll, SNAPSHOT_REF_LABEL, type SnapshotService, type Snapshotter, unmount } from '../snapshots/index.js';
import { xattr } from '../sys/index.js';
import { describeTree } from './tree.js';

const run = promisify(execFile);

export interface ConformanceEnv {
  /** A fresh snapshotter of namespace `ns` (same root for one test), and a scratch directory. */
  open(t: { after: (fn: () => void | Promise<void>) => void }): Promise<{ sn: (ns: string) => SnapshotService; scratch: string }>;
}

/** Mounts the snapshot's mounts on a scratch directory while `fn` runs. */
async function withMounted<T>(sn: Snapshotter, key: string, scratch: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(scratch, 'mnt-'));
  await mountAll(await sn.mounts(key), dir);
  try {
    return await fn(dir);
  } finally {
    await unmount(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

async function listNames(sn: Snapshotter): Promise<string[]> {
  const out: string[] = [];
  for await (const s of sn.list()) out.push(s.name);
  return out.sort();
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

export function snapshotterConformance(name: string, env: ConformanceEnv, opts: { rebase: boolean }): void {
  test(`${name} prepare, write through the mount, commit, view the stack`, async (t) => {
    const { sn: open, scratch } = await env.open(t);
    const sn = open('default');
    await sn.prepare('a-active');
    await withMounted(sn, 'a-active', scratch, async (d) => {
      await writeFile(join(d, 'base'), 'one');
      await writeFile(join(d, 'gone'), 'two');
    });
    await sn.commit('a', 'a-active', { labels: { l: 'v' } });
    await sn.prepare('b-active', { parent: 'a' });
    await withMounted(sn, 'b-active', scratch, async (d) => {
      assert.equal(await readFile(join(d, 'base'), 'utf8'), 'one');
      await rm(join(d, 'gone'));
      await writeFile(join(d, 'top'), 'three');
    });
    await sn.commit('b', 'b-active');
    await sn.view('b-view', { parent: 'b' });
    await withMounted(sn, 'b-view', scratch, async (d) => {
      assert.equal(await readFile(join(d, 'base'), 'utf8'), 'one');
      assert.equal(await readFile(join(d, 'top'), 'utf8'), 'three');
      assert.equal(await exists(join(d, 'gone')), false);
      await assert.rejects(writeFile(join(d, 'x'), 'y'), { code: 'EROFS' });
    });
    const info = await sn.stat('b');
    assert.equal(info.kind, 'committed');
    assert.equal(info.parent, 'a');
    assert.deepEqual((await sn.stat('a')).labels, { l: 'v' });
    assert.equal((await sn.stat('b-view')).kind, 'view');
    assert.deepEqual(await listNames(sn), ['a', 'b', 'b-view']);
  });

  test(`${name} refuses what the contract forbids, by error code`, async (t) => {
    const { sn: open } = await env.open(t);
    const sn = open('default');
    await sn.prepare('active');
    await assert.rejects(sn.prepare('active'), { code: 'ALREADY_EXISTS' });
    await assert.rejects(sn.prepare('x', { parent: 'missing' }), { code: 'NOT_FOUND' });
    await assert.rejects(sn.prepare('x', { parent: 'active' }), { code: 'FAILED_PRECONDITION' });
    await assert.rejects(sn.commit('c', 'missing'), { code: 'NOT_FOUND' });
    await sn.commit('c', 'active');
    await assert.rejects(sn.commit('d', 'c'), { code: 'FAILED_PRECONDITION' });
    await sn.prepare('child', { parent: 'c' });
    await assert.rejects(sn.remove('c'), { code: 'FAILED_PRECONDITION' });
    await assert.rejects(sn.stat('nope'), { code: 'NOT_FOUND' });
    await sn.prepare('other');
    await assert.rejects(sn.commit('c', 'other'), { code: 'ALREADY_EXISTS' });
    await sn.remove('child');
    await sn.remove('c');
    await sn.remove('other');
    assert.deepEqual(await listNames(sn), []);
  });

  test(`${name} usage counts the snapshot's own bytes`, async (t) => {
    const { sn: open, scratch } = await env.open(t);
    const sn = open('default');
    await sn.prepare('u');
    await withMounted(sn, 'u', scratch, (d) => writeFile(join(d, 'mib'), Buffer.alloc(1 << 20, 1)));
    const active = await sn.usage('u');
    assert.ok(active.size >= 1 << 20 && active.size < 2 << 20, `size ${active.size}`);
    assert.equal(active.inodes, 2); // the root and the file
    await sn.commit('u1', 'u');
    assert.deepEqual(await sn.usage('u1'), active);
  });

  test(`${name} remove takes the directory away; nothing is left of a removed chain`, async (t) => {
    const { sn: open } = await env.open(t);
    const sn = open('default');
    await sn.prepare('r');
    const dir = sn.dirOf('r');
    await sn.commit('r1', 'r');
    await sn.prepare('r2-active', { parent: 'r1' });
    const dir2 = sn.dirOf('r2-active');
    await sn.remove('r2-active');
    assert.equal(await exists(dir2), false);
    await sn.remove('r1');
    assert.equal(await exists(dir), false);
  });

  test(`${name} a chainID snapshot is stored once and shared by namespaces`, async (t) => {
    const { sn: open, scratch } = await env.open(t);
    const a = open('ns-a');
    const b = open('ns-b');
    const chain = `sha256:${'ab'.repeat(32)}`;
    await a.prepare('extract', { labels: { [SNAPSHOT_REF_LABEL]: chain } });
    await withMounted(a, 'extract', scratch, (d) => writeFile(join(d, 'shared'), 'x'));
    await a.commit(chain, 'extract');
    // Another namespace asking for it gets it made visible instead of applying again.
    await assert.rejects(b.prepare('extract-b', { labels: { [SNAPSHOT_REF_LABEL]: chain } }), { code: 'ALREADY_EXISTS' });
    assert.equal((await b.stat(chain)).kind, 'committed');
    assert.equal(a.row(chain).id, b.row(chain).id);
    const dir = a.dirOf(chain);
    await a.remove(chain);
    assert.equal(await exists(dir), true, 'still used by ns-b');
    await assert.rejects(a.stat(chain), { code: 'NOT_FOUND' });
    await b.remove(chain);
    assert.equal(await exists(dir), false);
    // Names that are not digests stay private to their namespace.
    await a.prepare('p');
    await a.commit('private', 'p');
    await b.prepare('p');
    await b.commit('private', 'p');
    assert.notEqual(a.row('private').id, b.row('private').id);
  });

  test(`${name} commit with a new parent (rebase) is ${opts.rebase ? 'allowed' : 'refused'}`, async (t) => {
    const { sn: open, scratch } = await env.open(t);
    const sn = open('default');
    await sn.prepare('base-a');
    await withMounted(sn, 'base-a', scratch, (d) => writeFile(join(d, 'below'), 'b'));
    await sn.commit('base', 'base-a');
    await sn.prepare('top-a');
    await withMounted(sn, 'top-a', scratch, (d) => writeFile(join(d, 'above'), 'a'));
    if (!opts.rebase) {
      await assert.rejects(sn.commit('top', 'top-a', { parent: 'base' }), { code: 'FAILED_PRECONDITION' });
      return;
    }
    await sn.commit('top', 'top-a', { parent: 'base' });
    assert.equal((await sn.stat('top')).parent, 'base');
    await sn.view('v', { parent: 'top' });
    await withMounted(sn, 'v', scratch, async (d) => {
      assert.equal(await readFile(join(d, 'below'), 'utf8'), 'b');
      assert.equal(await readFile(join(d, 'above'), 'utf8'), 'a');
    });
  });

  test(`${name} a stack whose mount options pass a page still mounts`, async (t) => {
    const { sn: open, scratch } = await env.open(t);
    const sn = open('default');
    const depth = 90;
    let parent: string | undefined;
    for (let i = 0; i < depth; i++) {
      await sn.prepare(`k${i}`, parent ? { parent } : {});
      await writeFile(join(sn.dirOf(`k${i}`), `f${i}`), String(i));
      await sn.commit(`layer-${i}`, `k${i}`);
      parent = `layer-${i}`;
    }
    await sn.view('deep', { parent: parent as string });
    const optionBytes = (await sn.mounts('deep')).flatMap((m) => m.options).join(',').length;
    if (opts.rebase) assert.ok(optionBytes > 4096, `options of ${optionBytes} bytes`);
    await withMounted(sn, 'deep', scratch, async (d) => {
      for (let i = 0; i < depth; i++) assert.equal(await readFile(join(d, `f${i}`), 'utf8'), String(i));
    });
  });

  test(`${name} diff: the changes over the parent, applied to the parent, give the snapshot's tree`, async (t) => {
    const { sn: open, scratch } = await env.open(t);
    const sn = open('default');
    await sn.prepare('p-a');
    await withMounted(sn, 'p-a', scratch, async (d) => {
      for (const f of ['keep', 'modify', 'gone', 'file2dir', 'chmodme']) await writeFile(join(d, f), f);
      for (const dir of ['gonedir', 'dir2file', 'opq']) {
        await mkdir(join(d, dir));
        await writeFile(join(d, dir, 'child'), dir);
      }
      await symlink('keep', join(d, 'link'));
    });
    await sn.commit('p', 'p-a');
    await sn.prepare('c', { parent: 'p' });
    await withMounted(sn, 'c', scratch, async (d) => {
      await writeFile(join(d, 'modify'), 'changed, and longer');
      await rm(join(d, 'gone'));
      await rm(join(d, 'gonedir'), { recursive: true });
      await rm(join(d, 'dir2file'), { recursive: true });
      await writeFile(join(d, 'dir2file'), 'now a file');
      await rm(join(d, 'file2dir'));
      await mkdir(join(d, 'file2dir'));
      await writeFile(join(d, 'file2dir', 'inside'), 'in');
      await chmod(join(d, 'chmodme'), 0o600);
      await rm(join(d, 'opq'), { recursive: true });
      await mkdir(join(d, 'opq'));
      await writeFile(join(d, 'opq', 'fresh'), 'fresh');
      await mkdir(join(d, 'new'));
      await writeFile(join(d, 'new', 'h1'), 'linked');
      await link(join(d, 'new', 'h1'), join(d, 'new', 'h2'));
      xattr.set(join(d, 'new', 'h1'), 'user.note', Buffer.from('x'));
    });
    const tar = await collect(sn.diff('c'));
    assert.deepEqual(await collect(sn.diff('c')), tar, 'the same tree gives the same bytes');
    const names: string[] = [];
    for await (const e of readTar(once(tar))) names.push(e.header.name);
    // Sorted by the path each entry is about (a whiteout sits where the path it deletes would be).
    const keys = names.map((n) => n.replace(/(^|\/)\.wh\.(\.wh\.\.opq$)?/, '$1').replace(/\/$/, ''));
    assert.deepEqual(keys, [...keys].sort(), 'sorted entries');
    assert.ok(names.includes('gone') === false && names.some((n) => n.endsWith('.wh.gone')), names.join(' '));

    // Apply onto a plain copy of the parent's tree, then compare with the child's tree.
    const target = await mkdtemp(join(scratch, 'applied-'));
    await rm(target, { recursive: true });
    await sn.view('p-view', { parent: 'p' });
    await withMounted(sn, 'p-view', scratch, (d) => run('cp', ['-a', d, target]));
    await applyLayer(target, once(tar), { whiteouts: 'remove' });
    const want = await withMounted(sn, 'c', scratch, (d) => describeTree(d));
    assert.deepEqual(
      (await describeTree(target)).map((e) => JSON.stringify(e)),
      want.map((e) => JSON.stringify(e)),
    );

    // Clamped: no time after the given second.
    for await (const e of readTar(once(await collect(sn.diff('c', { clampMtime: 1000 }))))) {
      assert.ok(e.header.mtime.sec <= 1000 && (e.header.mtime.sec < 1000 || e.header.mtime.nsec === 0), e.header.name);
    }
  });
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

async function* once(b: Buffer): AsyncGenerator<Uint8Array> {
  yield b;
}
