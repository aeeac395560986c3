// Test support: the contract of content.Store, run against every implementation.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { readBlob, type Store, writeBlob } from '../content/index.js';
import { type Digest, digestOf } from '../oci/index.js';

export interface ConformanceOpts {
  /** Whether the store keeps labels. */
  labels: boolean;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function* chunks(data: Uint8Array, size = 1000): AsyncIterable<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

/** Registers the conformance tests; `make` returns a fresh, empty store and a cleanup. */
export function contentStoreConformance(
  name: string,
  make: () => Promise<{ store: Store; cleanup: () => Promise<void> }>,
  opts: ConformanceOpts,
): void {
  describe(`${name} conformance`, () => {
    const withStore = (title: string, fn: (store: Store) => Promise<void>) =>
      test(title, async () => {
        const { store, cleanup } = await make();
        try {
          await fn(store);
        } finally {
          await cleanup();
        }
      });

    withStore('write, commit, read back, info, list', async (store) => {
      const data = randomBytes(10_000);
      const digest = digestOf(data);
      const w = await store.writer('ref-1', { expected: { digest, size: data.length } });
      for await (const c of chunks(data)) await w.write(c);
      assert.equal((await w.status()).offset, data.length);
      assert.equal(await w.commit(data.length, digest), digest);
      assert.deepEqual(Buffer.from(await readBlob(store, { digest }, { maxSize: 1 << 20 })), data);
      const info = await store.info(digest);
      assert.equal(info.size, data.length);
      assert.equal(info.digest, digest);
      assert.deepEqual(
        (await collect(store.list())).map((i) => i.digest),
        [digest],
      );
      assert.deepEqual(await collect(store.listStatuses()), []);
    });

    withStore('a wrong digest is rejected and nothing becomes visible', async (store) => {
      const data = randomBytes(5000);
      const w = await store.writer('bad-digest');
      await w.write(data);
      await assert.rejects(w.commit(data.length, digestOf('other')), { code: 'FAILED_PRECONDITION' });
      await assert.rejects(store.info(digestOf(data)), { code: 'NOT_FOUND' });
      await assert.rejects(store.reader({ digest: digestOf(data) }), { code: 'NOT_FOUND' });
      assert.deepEqual(await collect(store.list()), []);
      assert.deepEqual(await collect(store.listStatuses()), []);
    });

    withStore('a wrong size is rejected and nothing becomes visible', async (store) => {
      const data = randomBytes(5000);
      const w = await store.writer('bad-size');
      await w.write(data);
      await assert.rejects(w.commit(data.length + 1, digestOf(data)), { code: 'FAILED_PRECONDITION' });
      await assert.rejects(store.info(digestOf(data)), { code: 'NOT_FOUND' });
    });

    withStore('bytes beyond the expected size are refused as they arrive', async (store) => {
      const data = randomBytes(100);
      const w = await store.writer('too-long', { expected: { digest: digestOf(data), size: 50 } });
      await w.write(data.subarray(0, 50));
      await assert.rejects(w.write(data.subarray(50)), { code: 'FAILED_PRECONDITION' });
      await w.close();
    });

    withStore('writeBlob rejects a source whose bytes do not match', async (store) => {
      const data = randomBytes(3000);
      await assert.rejects(writeBlob(store, 'mismatch', chunks(data), { expected: { digest: digestOf('x'), size: data.length } }), {
        code: 'FAILED_PRECONDITION',
      });
      assert.deepEqual(await collect(store.list()), []);
    });

    withStore('a second writer on a ref in use is Unavailable', async (store) => {
      const w = await store.writer('busy');
      await assert.rejects(store.writer('busy'), { code: 'UNAVAILABLE' });
      await w.close();
      const again = await store.writer('busy');
      await again.close();
    });

    withStore('a closed ingest resumes from its offset', async (store) => {
      const data = randomBytes(20_000);
      const digest = digestOf(data);
      const w1 = await store.writer('resume', { expected: { digest, size: data.length } });
      await w1.write(data.subarray(0, 7000));
      await w1.close();
      const statuses = await collect(store.listStatuses());
      assert.equal(statuses.length, 1);
      assert.equal(statuses[0]?.ref, 'resume');
      assert.equal(statuses[0]?.offset, 7000);
      assert.equal(statuses[0]?.total, data.length);
      const w2 = await store.writer('resume', { expected: { digest, size: data.length } });
      assert.equal((await w2.status()).offset, 7000);
      await w2.write(data.subarray(7000));
      assert.equal(await w2.commit(data.length, digest), digest);
      assert.deepEqual(Buffer.from(await readBlob(store, { digest }, { maxSize: 1 << 20 })), data);
    });

    withStore('writeBlob resumes through openAt without reading the start again', async (store) => {
      const data = randomBytes(30_000);
      const digest = digestOf(data);
      const w = await store.writer('helper', { expected: { digest, size: data.length } });
      await w.write(data.subarray(0, 12_000));
      await w.close();
      const asked: number[] = [];
      const res = await writeBlob(store, 'helper', undefined, {
        expected: { digest, size: data.length },
        openAt: (offset) => {
          asked.push(offset);
          return chunks(data.subarray(offset));
        },
      });
      assert.deepEqual(asked, [12_000]);
      assert.deepEqual(res, { digest, size: data.length, created: true });
    });

    withStore('writeBlob commits an ingest that holds every byte without asking the source for more', async (store) => {
      // A process killed after its last write and before its commit: a range past the end would be
      // refused (HTTP 416), so the source must not be asked.
      const data = randomBytes(10_000);
      const digest = digestOf(data);
      const w = await store.writer('whole', { expected: { digest, size: data.length } });
      await w.write(data);
      await w.close();
      const res = await writeBlob(store, 'whole', undefined, {
        expected: { digest, size: data.length },
        openAt: (offset) => {
          throw new Error(`asked for bytes from ${offset}`);
        },
      });
      assert.deepEqual(res, { digest, size: data.length, created: true });
      assert.deepEqual(Buffer.from(await readBlob(store, { digest }, { maxSize: 1 << 20 })), data);
    });

    withStore('a whole ingest with wrong bytes fails its commit, and the next write starts over', async (store) => {
      const data = randomBytes(10_000);
      const digest = digestOf(data);
      const expected = { digest, size: data.length };
      const w = await store.writer('bad', { expected });
      await w.write(randomBytes(data.length));
      await w.close();
      const openAt = (offset: number) => chunks(data.subarray(offset));
      await assert.rejects(writeBlob(store, 'bad', undefined, { expected, openAt }), { code: 'FAILED_PRECONDITION' });
      assert.deepEqual(await writeBlob(store, 'bad', undefined, { expected, openAt }), { digest, size: data.length, created: true });
    });

    withStore('writing what exists reports AlreadyExists', async (store) => {
      const data = randomBytes(1000);
      const digest = digestOf(data);
      assert.equal((await writeBlob(store, 'a', chunks(data))).created, true);
      await assert.rejects(store.writer('b', { expected: { digest, size: data.length } }), { code: 'ALREADY_EXISTS' });
      const w = await store.writer('c');
      await w.write(data);
      await assert.rejects(w.commit(data.length, digest), { code: 'ALREADY_EXISTS' });
      assert.deepEqual(await writeBlob(store, 'd', chunks(data), { expected: { digest, size: data.length } }), {
        digest,
        size: data.length,
        created: false,
      });
      assert.equal((await collect(store.list())).length, 1);
      assert.deepEqual(await collect(store.listStatuses()), []);
    });

    withStore('an ingest left behind for a blob that got committed is cleaned by the next writer of its ref', async (store) => {
      const data = randomBytes(2000);
      const digest = digestOf(data);
      const left = await store.writer('left-behind', { expected: { digest, size: data.length } });
      await left.write(data);
      await left.close();
      await writeBlob(store, 'another', [data]);
      await assert.rejects(store.writer('left-behind', { expected: { digest, size: data.length } }), { code: 'ALREADY_EXISTS' });
      assert.deepEqual(await collect(store.listStatuses()), []);
    });

    withStore('reads byte ranges', async (store) => {
      const data = randomBytes(3 << 20);
      const { digest } = await writeBlob(store, 'ranges', chunks(data, 1 << 16));
      await using r = await store.reader({ digest });
      assert.equal(r.size, data.length);
      const part = Buffer.concat(await collect(r.read({ start: 100, end: (2 << 20) + 7 })));
      assert.deepEqual(part, data.subarray(100, (2 << 20) + 7));
      assert.deepEqual(Buffer.concat(await collect(r.read({ start: data.length }))), Buffer.alloc(0));
      await assert.rejects(collect(r.read({ start: 10, end: 5 })), { code: 'INVALID_ARGUMENT' });
    });

    withStore('delete removes a blob; deleting again is NotFound', async (store) => {
      const { digest } = await writeBlob(store, 'del', chunks(randomBytes(10)));
      await store.delete(digest);
      await assert.rejects(store.info(digest), { code: 'NOT_FOUND' });
      await assert.rejects(store.delete(digest), { code: 'NOT_FOUND' });
    });

    withStore('abort drops an ingest', async (store) => {
      const w = await store.writer('to-abort');
      await w.write(randomBytes(10));
      await w.close();
      await store.abort('to-abort');
      assert.deepEqual(await collect(store.listStatuses()), []);
      await assert.rejects(store.abort('to-abort'), { code: 'NOT_FOUND' });
    });

    withStore('bad digests are InvalidArgument', async (store) => {
      await assert.rejects(store.info('sha256:nope' as Digest), { code: 'INVALID_ARGUMENT' });
      await assert.rejects(store.reader({ digest: 'md5:x' as Digest }), { code: 'INVALID_ARGUMENT' });
    });

    withStore('an aborted signal stops a write', async (store) => {
      const w = await store.writer('signal');
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(w.write(randomBytes(10), { signal: ac.signal }), { code: 'ABORTED' });
      await w.close();
    });

    withStore('sha512 content', async (store) => {
      const data = randomBytes(500);
      const digest = digestOf(data, 'sha512');
      const res = await writeBlob(store, 'sha512', chunks(data), { expected: { digest, size: data.length } });
      assert.equal(res.digest, digest);
      assert.equal((await store.info(digest)).size, 500);
    });

    if (opts.labels) {
      withStore('labels are set, merged and removed', async (store) => {
        const data = randomBytes(10);
        const w = await store.writer('labels');
        await w.write(data);
        const digest = await w.commit(data.length, undefined, { labels: { a: '1' } });
        assert.deepEqual((await store.info(digest)).labels, { a: '1' });
        assert.deepEqual((await store.update(digest, { b: '2' })).labels, { a: '1', b: '2' });
        assert.deepEqual((await store.update(digest, { a: '' })).labels, { b: '2' });
        assert.deepEqual((await store.info(digest)).labels, { b: '2' });
        await assert.rejects(store.update(digestOf('none'), { a: '1' }), { code: 'NOT_FOUND' });
      });
    }
  });
}
