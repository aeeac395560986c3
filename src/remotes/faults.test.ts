// Faults the real registry will not make, from an in-process HTTP server speaking just enough of the API.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { gzipSync } from 'node:zlib';
import { pull } from '../images/index.js';
import { MediaType } from '../oci/index.js';
import { Berth } from '../services/index.js';
import { type LayerEntry, writeLayers } from '../testutil/layers.js';
import { Session } from './index.js';

const sha = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Fault {
  /** Answers a blob request, or returns false to serve it normally. */
  blob?: (req: IncomingMessage, res: ServerResponse, n: number, data: Buffer) => boolean;
  manifest404?: boolean;
  /** Answers every request but the token's with a Bearer challenge, and the token with this many bytes. */
  hugeToken?: number;
  /** Answers manifests with a 500 whose body is this many bytes. */
  hugeError?: number;
  layerSize?: number;
  /** A real layer (gzip tar) and its diffID, instead of random bytes. */
  realLayer?: { gzip: Buffer; diffID: string };
}

async function faultyRegistry(t: { after: (fn: () => Promise<void>) => void }, fault: Fault) {
  const layer = fault.realLayer?.gzip ?? randomBytes(fault.layerSize ?? 1 << 20);
  const diffID = fault.realLayer?.diffID ?? sha('x');
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffID] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: sha(config), size: config.length },
      layers: [{ mediaType: MediaType.ociLayerGzip, digest: sha(layer), size: layer.length }],
    }),
  );
  const blobs = new Map([
    [sha(config), config],
    [sha(layer), layer],
  ]);
  const requests: { method: string; url: string; range?: string }[] = [];
  let blobRequests = 0;
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', ...(req.headers.range ? { range: req.headers.range } : {}) });
    const url = req.url ?? '';
    if (fault.hugeToken) {
      if (url.startsWith('/token'))
        return res.writeHead(200, { 'content-type': 'application/json' }).end(Buffer.alloc(fault.hugeToken, 0x20));
      const realm = `http://${req.headers.host}/token`;
      return res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="x"` }).end();
    }
    if (fault.hugeError && url.includes('/manifests/')) return res.writeHead(500).end(Buffer.alloc(fault.hugeError, 0x41));
    if (url === '/v2/') return res.writeHead(200).end('{}');
    const m = /^\/v2\/fault\/app\/(manifests|blobs)\/(.+)$/.exec(url);
    if (!m) return res.writeHead(404).end();
    if (m[1] === 'manifests') {
      if (fault.manifest404)
        return res
          .writeHead(404, { 'content-type': 'application/json' })
          .end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
      res.writeHead(200, {
        'content-type': MediaType.ociManifest,
        'docker-content-digest': sha(manifest),
        'content-length': manifest.length,
      });
      return res.end(req.method === 'HEAD' ? undefined : manifest);
    }
    const data = blobs.get(m[2] as string);
    if (!data) return res.writeHead(404).end();
    if (data === layer && fault.blob?.(req, res, ++blobRequests, data)) return;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    res.writeHead(range ? 206 : 200, { 'content-length': data.length - start, 'content-type': 'application/octet-stream' });
    res.end(data.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  const dir = await mkdtemp(join(tmpdir(), 'berth-faults-'));
  const berth = await Berth.open({ root: dir });
  const session = new Session({ credentialsFile: null, backoff: 10 });
  t.after(async () => {
    await session.close();
    berth.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });
  return { host, requests, layer, berth, session, ns: berth.namespace('default'), dir };
}

test('fault: a connection reset mid-layer is resumed with a Range request', async (t) => {
  const f = await faultyRegistry(t, {
    blob: (_req, res, n, data) => {
      if (n > 1) return false;
      res.writeHead(200, { 'content-length': data.length });
      res.write(data.subarray(0, 300_000), () => setTimeout(() => res.socket?.destroy(), 50));
      return true;
    },
  });
  const r = await pull(f.ns, `${f.host}/fault/app:1`, { session: f.session });
  assert.equal(r.downloaded, 3);
  const ranges = f.requests.filter((q) => q.url.includes(sha(f.layer).slice(7)));
  assert.equal(ranges.length, 2);
  assert.equal(ranges[0]?.range, undefined);
  assert.match(ranges[1]?.range ?? '', /^bytes=\d+-$/);
  assert.ok(Number(/\d+/.exec(ranges[1]?.range ?? '')?.[0]) > 0, 'resumed after the bytes already stored');
  assert.equal((await f.ns.content.info(sha(f.layer) as never)).size, f.layer.length);
});

test('fault: 500 then success is retried', async (t) => {
  const f = await faultyRegistry(t, {
    blob: (_req, res, n) => {
      if (n > 2) return false;
      res.writeHead(n === 1 ? 500 : 503).end();
      return true;
    },
  });
  await pull(f.ns, `${f.host}/fault/app:1`, { session: f.session });
  assert.equal(f.requests.filter((q) => q.url.includes(sha(f.layer).slice(7))).length, 3);
});

test('fault: a body whose bytes do not match the digest is rejected and nothing is stored', async (t) => {
  const f = await faultyRegistry(t, {
    blob: (_req, res, _n, data) => {
      const bad = Buffer.from(data);
      bad[1000] = (bad[1000] as number) ^ 0xff;
      res.writeHead(200, { 'content-length': bad.length }).end(bad);
      return true;
    },
  });
  await assert.rejects(pull(f.ns, `${f.host}/fault/app:1`, { session: f.session }), {
    code: 'FAILED_PRECONDITION',
    message: /digest sha256:[a-f0-9]{64}, expected/,
  });
  await assert.rejects(f.ns.content.info(sha(f.layer) as never), { code: 'NOT_FOUND' });
  assert.deepEqual(await readdir(join(f.dir, 'content', 'ingest')), []);
  assert.deepEqual(f.ns.images.list(), []);
});

test('fault: a 404 manifest is a clear NotFound', async (t) => {
  const f = await faultyRegistry(t, { manifest404: true });
  await assert.rejects(pull(f.ns, `${f.host}/fault/app:1`, { session: f.session }), {
    code: 'NOT_FOUND',
    message: /^manifest for "127\.0\.0\.1:\d+\/fault\/app:1" not found: manifest unknown$/,
  });
});

test('fault: a registry that always fails gives up with Unavailable after the retries', async (t) => {
  const f = await faultyRegistry(t, {
    blob: (_req, res) => {
      res.writeHead(502).end();
      return true;
    },
  });
  await assert.rejects(pull(f.ns, `${f.host}/fault/app:1`, { session: f.session }), { code: 'UNAVAILABLE', message: /502/ });
});

test('fault: a token answer of many megabytes is refused, not read into memory', async (t) => {
  const f = await faultyRegistry(t, { hugeToken: 8 << 20 });
  await assert.rejects(pull(f.ns, `${f.host}/fault/app:1`, { session: f.session }), {
    code: 'FAILED_PRECONDITION',
    message: /token from .*more than the 1048576 bytes expected/,
  });
});

test('fault: a huge error body gives a short error', async (t) => {
  const f = await faultyRegistry(t, { hugeError: 16 << 20 });
  const err = await pull(f.ns, `${f.host}/fault/app:1`, { session: f.session }).catch((e: Error) => e);
  assert.equal((err as { code?: string }).code, 'UNAVAILABLE');
  assert.ok((err as Error).message.length < 200, (err as Error).message.slice(0, 300));
});

test('fault: a berth pull process killed mid-layer resumes from what it stored on the next run', async (t) => {
  const { spawn } = await import('node:child_process');
  const { berthMain } = await import('../testutil/cli.js');
  const { stat } = await import('node:fs/promises');
  let hung: ServerResponse | undefined;
  const f = await faultyRegistry(t, {
    layerSize: 8 << 20,
    blob: (_req, res, n, data) => {
      if (n > 1) return false;
      // The first answer sends 3 MiB, then stalls until the client is killed.
      res.writeHead(200, { 'content-length': data.length });
      res.write(data.subarray(0, 3 << 20));
      hung = res;
      return true;
    },
  });
  t.after(() => hung?.destroy());
  f.berth.close();
  // The layer's ingest (the namespace-qualified ref `default/pull-<digest>`, by its hash).
  const layerIngest = join(
    f.dir,
    'content',
    'ingest',
    createHash('sha256')
      .update(`default/pull-${sha(f.layer)}`)
      .digest('hex'),
    'data',
  );
  const ingestBytes = async () => (await stat(layerIngest).catch(() => undefined))?.size ?? 0;
  const p = spawn(process.execPath, [berthMain, '--root', f.dir, 'pull', '--no-unpack', '-q', `${f.host}/fault/app:1`], {
    stdio: 'ignore',
  });
  const closed = new Promise((r) => p.on('close', r));
  while ((await ingestBytes()) < 2 << 20) await new Promise((r) => setTimeout(r, 20));
  p.kill('SIGKILL');
  await closed;
  // What the killed process had written to disk: the next run must ask for the rest only.
  const stored = await ingestBytes();
  assert.ok(stored >= 2 << 20);
  const again = spawn(process.execPath, [berthMain, '--root', f.dir, 'pull', '--no-unpack', '-q', `${f.host}/fault/app:1`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  again.stderr.on('data', (d: Buffer) => {
    err += d;
  });
  assert.equal(await new Promise((r) => again.on('close', r)), 0, err);
  const layerRequests = f.requests.filter((q) => q.url.includes(sha(f.layer).slice(7)));
  assert.equal(layerRequests.at(-1)?.range, `bytes=${stored}-`, 'the second run asked only for what was missing');
  const berth = await Berth.open({ root: f.dir });
  t.after(() => berth.close());
  const info = await berth.namespace('default').content.info(sha(f.layer) as never);
  assert.equal(info.size, f.layer.length);
  assert.deepEqual(await readdir(join(f.dir, 'content', 'ingest')), []);
});

/** A gzip layer of `files` files of 8 KiB of random bytes (d/f0 … d/fN), and its diffID. */
async function realLayer(dir: string, files: number): Promise<{ gzip: Buffer; diffID: string }> {
  const entries: LayerEntry[] = [{ name: 'd', type: 'dir' }];
  for (let i = 0; i < files; i++) entries.push({ name: `d/f${i}`, data: { hex: randomBytes(8192).toString('hex') } });
  const tars = await writeLayers(dir, { l: entries });
  const tar = await readFile(tars.l as string);
  return { gzip: gzipSync(tar), diffID: sha(tar) };
}

async function findFile(root: string, rel: string): Promise<boolean> {
  const base = join(root, 'snapshots', 'overlayfs');
  for (const id of await readdir(base).catch(() => [] as string[])) {
    if (
      await stat(join(base, id, 'fs', rel)).then(
        () => true,
        () => false,
      )
    )
      return true;
  }
  return false;
}

test('fault: with unpack, a layer is applied while it downloads', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'berth-tee-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  let dir = '';
  let sawFileMidway = false;
  const f = await faultyRegistry(t, {
    realLayer: await realLayer(work, 300),
    blob: (_req, res, _n, data) => {
      // Two thirds, then nothing more until the unpacker has written the first file.
      res.writeHead(200, { 'content-length': data.length });
      res.write(data.subarray(0, Math.floor((data.length * 2) / 3)));
      void (async () => {
        const deadline = Date.now() + 10_000;
        for (;;) {
          sawFileMidway = await findFile(dir, 'd/f0');
          if (sawFileMidway || Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 10));
        }
        res.end(data.subarray(Math.floor((data.length * 2) / 3)));
      })();
      return true;
    },
  });
  dir = f.dir;
  const r = await pull(f.ns, `${f.host}/fault/app:1`, { session: f.session, unpack: f.berth.snapshotter('default', 'overlayfs') });
  assert.ok(sawFileMidway, 'files of the layer were on disk before its download ended');
  assert.equal(r.unpacked?.applied, 1);
});

test('fault: with unpack, a reset mid-layer resumes and the layer still applies whole', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'berth-tee-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const f = await faultyRegistry(t, {
    realLayer: await realLayer(work, 200),
    blob: (_req, res, n, data) => {
      if (n > 1) return false;
      res.writeHead(200, { 'content-length': data.length });
      res.write(data.subarray(0, 700_000), () => setTimeout(() => res.socket?.destroy(), 50));
      return true;
    },
  });
  const sn = f.berth.snapshotter('default', 'overlayfs');
  const r = await pull(f.ns, `${f.host}/fault/app:1`, { session: f.session, unpack: sn });
  assert.equal(f.requests.filter((q) => q.range).length, 1, 'resumed with a Range request');
  const [chain] = r.unpacked?.chainIDs ?? [];
  assert.equal((await sn.stat(chain as string)).kind, 'committed');
  assert.equal(sn.row(chain as string).unpackedSize, 200 * 8192);
});
