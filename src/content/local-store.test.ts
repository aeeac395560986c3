import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { digestOf } from '../oci/index.js';
import { contentStoreConformance } from '../testutil/content-conformance.js';
import { LocalStore, readBlob, writeBlob } from './index.js';

async function tempStore(t?: { after: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'berth-content-'));
  const store = new LocalStore(join(dir, 'content'));
  await store.init();
  const cleanup = () => rm(dir, { recursive: true, force: true });
  t?.after(cleanup);
  return { dir, store, cleanup };
}

contentStoreConformance('LocalStore', tempStore, { labels: false });

const storeModule = new URL('./index.js', import.meta.url).href;

const exits = new WeakMap<ChildProcess, Promise<number | null>>();

/** Runs a script in a child process with `LocalStore` and `writeBlob` in scope. */
function child(script: string, args: string[]): ChildProcess {
  const code = `import { LocalStore, writeBlob } from ${JSON.stringify(storeModule)};\nconst args = ${JSON.stringify(args)};\n${script}`;
  const p = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  // Listen at once: a child may exit before the test asks.
  exits.set(p, new Promise((resolve) => p.on('close', (c) => resolve(c))));
  return p;
}

function exited(p: ChildProcess): Promise<number | null> {
  return exits.get(p) as Promise<number | null>;
}

function firstLine(p: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    p.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) resolve(buf.slice(0, buf.indexOf('\n')));
    });
    void exited(p).then(() => reject(new Error(`child exited before writing a line (${buf})`)));
  });
}

test('LocalStore ingest killed with SIGKILL halfway resumes and completes', async (t) => {
  const { dir, store } = await tempStore(t);
  const size = 64 << 20;
  const data = randomBytes(size);
  const src = join(dir, 'src.bin');
  await writeFile(src, data);
  const digest = digestOf(data);
  // The child writes 1 MiB at a time, slowly, and announces each chunk.
  const p = child(
    `const [root, src, digest, size] = args;
     import { open } from 'node:fs/promises';
     const store = new LocalStore(root);
     const w = await store.writer('killed', { expected: { digest, size: Number(size) } });
     const fh = await open(src);
     const buf = Buffer.alloc(1 << 20);
     for (let pos = 0; ; pos += buf.length) {
       const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
       if (!bytesRead) break;
       await w.write(buf.subarray(0, bytesRead));
       console.log(pos + bytesRead);
       await new Promise((r) => setTimeout(r, 5));
     }`,
    [store.root, src, digest, String(size)],
  );
  await new Promise<void>((resolve) => {
    p.stdout?.on('data', (d: Buffer) => {
      const last = Number(d.toString().trim().split('\n').pop());
      if (last >= size / 2) resolve();
    });
  });
  p.kill('SIGKILL');
  assert.equal(await exited(p), null);
  const [status] = await collect(store.listStatuses());
  assert.ok(status && status.offset >= size / 2 && status.offset < size, `offset ${status?.offset}`);
  await assert.rejects(store.info(digest), { code: 'NOT_FOUND' });
  // The lock died with the process: resume at once, reading the source from the recorded offset.
  const offsets: number[] = [];
  const { createReadStream } = await import('node:fs');
  const res = await writeBlob(store, 'killed', undefined, {
    expected: { digest, size },
    openAt: (offset) => {
      offsets.push(offset);
      return createReadStream(src, { start: offset });
    },
  });
  assert.deepEqual(offsets, [status.offset]);
  assert.equal(res.created, true);
  assert.equal((await store.info(digest)).size, size);
  assert.equal(digestOf(await readBlob(store, { digest }, { maxSize: size })), digest);
  assert.deepEqual(await collect(store.listStatuses()), []);
});

test('LocalStore writer on a ref held by another process is Unavailable until that process dies', async (t) => {
  const { store } = await tempStore(t);
  const p = child(
    `const store = new LocalStore(args[0]);
     const w = await store.writer('held');
     await w.write(Buffer.alloc(3 << 20, 1));
     console.log('holding');
     setInterval(() => {}, 1000);`,
    [store.root],
  );
  assert.equal(await firstLine(p), 'holding');
  await assert.rejects(store.writer('held'), { code: 'UNAVAILABLE', message: /locked by another writer/ });
  await assert.rejects(store.abort('held'), { code: 'UNAVAILABLE' });
  p.kill('SIGKILL');
  await exited(p);
  const w = await store.writer('held');
  assert.equal((await w.status()).offset, 3 << 20);
  await w.close();
});

test('LocalStore: two processes writing the same blob at once end with one correct blob', async (t) => {
  const { dir, store } = await tempStore(t);
  const data = randomBytes(16 << 20);
  const src = join(dir, 'same.bin');
  await writeFile(src, data);
  const digest = digestOf(data);
  const script = `import { createReadStream } from 'node:fs';
    const [root, src, ref] = args;
    const store = new LocalStore(root);
    const res = await writeBlob(store, ref, createReadStream(src, { highWaterMark: 65536 }));
    console.log(JSON.stringify(res));`;
  const ps = [child(script, [store.root, src, 'writer-a']), child(script, [store.root, src, 'writer-b'])];
  const lines = await Promise.all(ps.map(firstLine));
  assert.deepEqual(await Promise.all(ps.map(exited)), [0, 0]);
  const results = lines.map((l) => JSON.parse(l) as { digest: string; created: boolean });
  assert.deepEqual(
    results.map((r) => r.digest),
    [digest, digest],
  );
  assert.equal(results.filter((r) => r.created).length, 1, 'exactly one writer created the blob');
  assert.deepEqual(await readdir(join(store.root, 'blobs', 'sha256')), [digest.slice(7)]);
  assert.equal((await stat(store.blobPath(digest))).size, data.length);
  assert.equal(digestOf(await readBlob(store, { digest }, { maxSize: data.length })), digest);
  assert.deepEqual(await collect(store.listStatuses()), []);
});

test('LocalStore: processes racing on the same refs end with every blob once and no ingest left', async (t) => {
  const { store } = await tempStore(t);
  // Four processes write the same 30 blobs under the same refs: one writer per ref at a time, the
  // others wait for the lock or find the blob committed; removal of a finished ingest races with
  // the next writer creating its lock file in the same directory.
  const script = `const [root] = args;
    const store = new LocalStore(root);
    let created = 0;
    for (let i = 0; i < 30; i++) {
      const data = Buffer.alloc(200_000 + i, i);
      for (;;) {
        try {
          const r = await writeBlob(store, 'race-' + i, [data]);
          if (r.created) created++;
          break;
        } catch (err) {
          if (err.code !== 'UNAVAILABLE') throw err;
          await new Promise((r) => setTimeout(r, 1));
        }
      }
    }
    console.log(created);`;
  const ps = [0, 1, 2, 3].map(() => child(script, [store.root]));
  const lines = await Promise.all(ps.map(firstLine));
  assert.deepEqual(await Promise.all(ps.map(exited)), [0, 0, 0, 0]);
  assert.equal(lines.map(Number).reduce((a, b) => a + b, 0) >= 30, true);
  assert.equal((await readdir(join(store.root, 'blobs', 'sha256'))).length, 30);
  assert.deepEqual(await readdir(join(store.root, 'ingest')), []);
  for await (const info of store.list()) assert.equal(digestOf(await readBlob(store, info, { maxSize: 1 << 20 })), info.digest);
});

test('LocalStore blobs are read-only files and never half written', async (t) => {
  const { store } = await tempStore(t);
  const data = randomBytes(1000);
  const { digest } = await writeBlob(store, 'mode', [data]);
  assert.equal((await stat(store.blobPath(digest))).mode & 0o777, 0o444);
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
