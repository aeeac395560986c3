import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readBlob, verifyBlob } from '../content/index.js';
import type { NamespaceScope } from '../metadata/index.js';
import { type Digest, digestOf, hostPlatform, MediaType, parseIndex, parseManifest, parsePlatform, platformMatcher } from '../oci/index.js';
import { Session } from '../remotes/index.js';
import { Berth } from '../services/index.js';
import { type Corpus, pushCorpus } from '../testutil/corpus.js';
import { skopeoCopy, skopeoRaw } from '../testutil/peers.js';
import { startRegistry, type TestRegistry } from '../testutil/registry.js';
import { contentSize, pull, push, resolveImage, type TransferEvent } from './index.js';

const sha = (s: string | Uint8Array) => `sha256:${createHash('sha256').update(s).digest('hex')}` as Digest;

let registry: TestRegistry;
let corpus: Corpus;
let work: string;
const session = new Session({ credentialsFile: null });

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-pull-'));
  registry = await startRegistry();
  corpus = await pushCorpus(registry.host, work);
});
after(async () => {
  await session.close();
  await registry.stop();
  await rm(work, { recursive: true, force: true });
});

async function freshRoot(t: { after: (fn: () => void) => void }): Promise<{ berth: Berth; ns: NamespaceScope; root: string }> {
  const root = await mkdtemp(join(work, 'root-'));
  const berth = await Berth.open({ root });
  t.after(() => berth.close());
  return { berth, ns: berth.namespace('default'), root };
}

/** Checks that what berth holds for `repo` is what skopeo reports: manifest digest, image ID, blobs. */
async function assertMatchesSkopeo(ns: NamespaceScope, repo: string): Promise<void> {
  const ref = `${registry.host}/${repo}`;
  const image = ns.images.get(ref);
  const rawManifest = await skopeoRaw(`docker://${ref}`, 'manifest');
  assert.equal(image.target.digest, sha(rawManifest), `${repo}: manifest digest`);
  const resolved = await resolveImage(ns.content, image.target, platformMatcher(hostPlatform()));
  const rawConfig = await skopeoRaw(`docker://${ref}`, 'config');
  assert.equal(resolved.config.digest, sha(rawConfig), `${repo}: image ID`);
  const manifest = resolved.manifest.value;
  for (const d of [manifest.config, ...manifest.layers]) {
    const v = await verifyBlob(ns.content, d);
    assert.ok(v.ok, `${repo}: blob ${d.digest} ${v.problem ?? ''}`);
  }
  const layerTotal = manifest.layers.reduce((n, l) => n + l.size, 0);
  assert.equal(
    contentSize(resolved),
    (resolved.index?.raw.length ?? 0) + resolved.manifest.raw.length + resolved.config.raw.length + layerTotal,
  );
}

describe('pull from the reference registry', () => {
  test('pull: OCI gzip, Docker schema 2, zstd and uncompressed images made by peers keep their digests', async (t) => {
    const { ns } = await freshRoot(t);
    for (const repo of [corpus.oci, corpus.docker, corpus.zstd, corpus.uncompressed]) {
      const r = await pull(ns, `${registry.host}/${repo}`, { session });
      assert.equal(r.image.name, `${registry.host}/${repo}`);
      await assertMatchesSkopeo(ns, repo);
    }
    const docker = ns.images.get(`${registry.host}/${corpus.docker}`);
    assert.equal(docker.target.mediaType, MediaType.dockerManifest);
    const zstd = await resolveImage(ns.content, ns.images.get(`${registry.host}/${corpus.zstd}`).target, platformMatcher(hostPlatform()));
    assert.equal(zstd.manifest.value.layers[0]?.mediaType, MediaType.ociLayerZstd);
    const raw = await resolveImage(
      ns.content,
      ns.images.get(`${registry.host}/${corpus.uncompressed}`).target,
      platformMatcher(hostPlatform()),
    );
    assert.equal(raw.manifest.value.layers[0]?.mediaType, MediaType.ociLayer);
    // All four are one image: the same config, so the same image ID.
    assert.equal(zstd.config.digest, raw.config.digest);
  });

  test('pull: an index resolves to the host platform; the record points at the index, as containerd does', async (t) => {
    const { ns } = await freshRoot(t);
    const ref = `${registry.host}/${corpus.multi}`;
    const r = await pull(ns, ref, { session });
    const rawIndex = await skopeoRaw(`docker://${ref}`, 'manifest');
    assert.equal(r.image.target.digest, sha(rawIndex));
    assert.equal(r.image.target.mediaType, MediaType.ociIndex);
    const index = parseIndex(Buffer.from(rawIndex)).value;
    const host = index.manifests.find((m) => m.platform?.architecture === hostPlatform().architecture);
    assert.deepEqual(
      r.manifests.map((m) => m.digest),
      [host?.digest],
    );
    const other = index.manifests.find((m) => m !== host);
    await assert.rejects(ns.content.info(other?.digest as Digest), { code: 'NOT_FOUND' });
    const resolved = await resolveImage(ns.content, r.image.target, platformMatcher(hostPlatform()));
    const hostConfig = await skopeoRaw(`docker://${ref}`, 'config', ['--override-arch', hostPlatform().architecture]);
    assert.equal(resolved.config.digest, sha(hostConfig));
  });

  test('pull: --platform picks another manifest; --all-platforms fetches every one', async (t) => {
    const { ns } = await freshRoot(t);
    const ref = `${registry.host}/${corpus.multi}`;
    const arm = await pull(ns, ref, { session, platform: parsePlatform('linux/arm64') });
    const armConfig = await skopeoRaw(`docker://${ref}`, 'config', ['--override-arch', 'arm64']);
    const resolved = await resolveImage(ns.content, arm.image.target, platformMatcher(parsePlatform('linux/arm64')));
    assert.equal(resolved.config.digest, sha(armConfig));
    assert.equal(resolved.config.value.architecture, 'arm64');
    await assert.rejects(pull(ns, ref, { session, platform: parsePlatform('linux/s390x') }), {
      code: 'NOT_FOUND',
      message: /no matching manifest for linux\/s390x/,
    });
    const all = await pull(ns, ref, { session, allPlatforms: true });
    assert.equal(all.manifests.length, 2);
    for (const m of all.manifests) assert.ok((await verifyBlob(ns.content, m)).ok);
  });

  test('pull: pulling the same image twice transfers no layer the second time', async (t) => {
    const { ns } = await freshRoot(t);
    const ref = `${registry.host}/${corpus.oci}`;
    const first = await pull(ns, ref, { session });
    assert.equal(first.existing, 0);
    const events: TransferEvent[] = [];
    const second = await pull(ns, ref, { session, onEvent: (e) => events.push(e) });
    assert.equal(second.downloaded, 0);
    assert.equal(events.filter((e) => e.type === 'progress').length, 0);
    assert.ok(events.filter((e) => e.type === 'done').every((e) => e.type === 'done' && e.status === 'exists'));
  });

  test('pull: a blob in another namespace is not downloaded again', async (t) => {
    const { berth } = await freshRoot(t);
    const ref = `${registry.host}/${corpus.docker}`;
    await pull(berth.namespace('k8s.io'), ref, { session });
    const again = await pull(berth.namespace('default'), ref, { session });
    assert.equal(again.downloaded, 0);
    assert.ok(again.existing > 0);
  });

  test('pull: two concurrent berth pull processes of the same image end with one correct copy', async (t) => {
    const { root } = await freshRoot(t);
    const main = fileURLToPath(new URL('../cli/main.js', import.meta.url));
    const ref = `${registry.host}/${corpus.oci}`;
    const runPull = () =>
      new Promise<{ code: number | null; err: string }>((resolve) => {
        const p = spawn(process.execPath, [main, '--root', root, 'pull', '-q', ref], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        p.stderr.on('data', (d: Buffer) => {
          err += d;
        });
        p.on('close', (code) => resolve({ code, err }));
      });
    const results = await Promise.all([runPull(), runPull()]);
    for (const r of results) assert.equal(r.code, 0, r.err);
    const berth = await Berth.open({ root });
    t.after(() => berth.close());
    const ns = berth.namespace('default');
    await assertMatchesSkopeo(ns, corpus.oci);
    const blobs = await readdir(join(root, 'content', 'blobs', 'sha256'));
    const resolved = await resolveImage(ns.content, ns.images.get(ref).target, platformMatcher(hostPlatform()));
    assert.equal(blobs.length, 2 + resolved.manifest.value.layers.length);
    assert.deepEqual(await readdir(join(root, 'content', 'ingest')), []);
  });
});

describe('push to the reference registry', () => {
  test('push: skopeo copies what berth pushed back into an OCI layout with identical digests', async (t) => {
    const { ns } = await freshRoot(t);
    const src = `${registry.host}/${corpus.oci}`;
    const pulled = await pull(ns, src, { session });
    const dest = `${registry.host}/pushed/by-berth:v1`;
    const events: TransferEvent[] = [];
    const r = await push(ns, pulled.image.name, dest, { session, onEvent: (e) => events.push(e) });
    assert.equal(r.desc.digest, pulled.image.target.digest, 'the manifest digest is kept');
    // The layers came from another repository of this registry: mounted, not uploaded.
    assert.ok(events.some((e) => e.type === 'done' && e.status === 'mounted'));
    const layout = join(work, `back-${Date.now()}`);
    await skopeoCopy(`docker://${dest}`, `oci:${layout}:v1`, ['--preserve-digests']);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]?.digest, pulled.image.target.digest);
    const manifestRaw = await readFile(join(layout, 'blobs', 'sha256', pulled.image.target.digest.slice(7)));
    const manifest = parseManifest(manifestRaw).value;
    const resolved = await resolveImage(ns.content, pulled.image.target, platformMatcher(hostPlatform()));
    assert.equal(manifest.config.digest, resolved.config.digest, 'the image ID is kept');
    for (const d of [manifest.config, ...manifest.layers]) {
      const bytes = await readFile(join(layout, 'blobs', 'sha256', d.digest.slice(7)));
      assert.equal(sha(bytes), d.digest);
      assert.deepEqual(Buffer.from(await readBlob(ns.content, d, { maxSize: 1 << 24 })), bytes);
    }
  });

  test('push: uploads (not mounts) to a registry that lacks the blobs, then pulls back identical', async (t) => {
    const { ns } = await freshRoot(t);
    const src = `${registry.host}/${corpus.zstd}`;
    await pull(ns, src, { session });
    const other = await startRegistry();
    t.after(() => other.stop());
    const dest = `${other.host}/elsewhere/zstd:1`;
    const events: TransferEvent[] = [];
    await push(ns, src, dest, { session, onEvent: (e) => events.push(e) });
    assert.ok(events.some((e) => e.type === 'done' && e.status === 'pushed' && e.desc.mediaType === MediaType.ociLayerZstd));
    assert.equal(sha(await skopeoRaw(`docker://${dest}`, 'manifest')), ns.images.get(src).target.digest);
    // Pushing again skips every blob.
    const again: TransferEvent[] = [];
    await push(ns, src, dest, { session, onEvent: (e) => again.push(e) });
    assert.ok(
      again
        .filter((e) => e.type === 'done' && e.desc.mediaType !== MediaType.ociManifest)
        .every((e) => e.type === 'done' && e.status === 'exists'),
    );
  });

  test('push: by digest, and refused when the digest is not the image', async (t) => {
    const { ns } = await freshRoot(t);
    const src = `${registry.host}/${corpus.docker}`;
    const pulled = await pull(ns, src, { session });
    const digest = pulled.image.target.digest;
    const r = await push(ns, src, `${registry.host}/bydigest/x@${digest}`, { session });
    assert.equal(r.desc.digest, digest);
    assert.equal(sha(await skopeoRaw(`docker://${registry.host}/bydigest/x@${digest}`, 'manifest')), digest);
    await assert.rejects(push(ns, src, `${registry.host}/bydigest/x@${sha('other')}`, { session }), {
      code: 'FAILED_PRECONDITION',
      message: /the image is sha256:/,
    });
  });

  test('push: a large layer goes up in chunks', async (t) => {
    const { ns } = await freshRoot(t);
    await pull(ns, `${registry.host}/${corpus.uncompressed}`, { session });
    const other = await startRegistry();
    t.after(() => other.stop());
    const { Repository } = await import('../remotes/index.js');
    const resolved = await resolveImage(
      ns.content,
      ns.images.get(`${registry.host}/${corpus.uncompressed}`).target,
      platformMatcher(hostPlatform()),
    );
    const layer = resolved.manifest.value.layers.reduce((a, b) => (a.size > b.size ? a : b));
    const repo = new Repository(session, { domain: other.host, path: 'chunked/x' });
    const offsets: number[] = [];
    await repo.pushBlob(
      layer,
      async function* (start, end) {
        await using r = await ns.content.reader(layer);
        yield* r.read({ start, end });
      },
      { chunkSize: 64 << 10, onProgress: (o) => offsets.push(o) },
    );
    assert.ok(offsets.length > 2, `chunks: ${offsets.length}`);
    assert.equal(offsets.at(-1), layer.size);
    assert.equal(await repo.blobExists(layer), true);
  });

  test('push: a multi-platform index goes up whole when every platform is stored, else fails clearly', async (t) => {
    const { ns } = await freshRoot(t);
    const src = `${registry.host}/${corpus.multi}`;
    await pull(ns, src, { session });
    await assert.rejects(push(ns, src, `${registry.host}/pushed/multi:1`, { session }), {
      code: 'FAILED_PRECONDITION',
      message: /--all-platforms/,
    });
    await pull(ns, src, { session, allPlatforms: true });
    const r = await push(ns, src, `${registry.host}/pushed/multi:1`, { session });
    assert.equal(r.desc.digest, sha(await skopeoRaw(`docker://${src}`, 'manifest')));
    assert.equal(sha(await skopeoRaw(`docker://${registry.host}/pushed/multi:1`, 'manifest')), r.desc.digest);
    const one = await push(ns, src, `${registry.host}/pushed/multi:arm64`, { session, platform: parsePlatform('linux/arm64') });
    assert.equal(one.desc.mediaType, MediaType.ociManifest);
    assert.equal(digestOf(await skopeoRaw(`docker://${registry.host}/pushed/multi:arm64`, 'manifest')), one.desc.digest);
  });
});

describe('mirrors from hosts.toml', () => {
  test('pull: a mirror that has the image serves it; one that lacks it hands over to the registry', async (t) => {
    const { ns } = await freshRoot(t);
    const upstream = await startRegistry();
    t.after(() => upstream.stop());
    const { mkdir, writeFile } = await import('node:fs/promises');
    const hostsDir = join(work, `hosts-${Date.now()}`);
    await mkdir(join(hostsDir, upstream.host), { recursive: true });
    // The mirror is the corpus registry; the upstream registry is empty.
    await writeFile(
      join(hostsDir, upstream.host, 'hosts.toml'),
      `server = "http://${upstream.host}"\n\n[host."http://${registry.host}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    const mirrored = new Session({ credentialsFile: null, hosts: { configDirs: [hostsDir] } });
    t.after(() => mirrored.close());
    const r = await pull(ns, `${upstream.host}/${corpus.oci}`, { session: mirrored });
    assert.equal(r.image.name, `${upstream.host}/${corpus.oci}`);
    assert.equal(r.image.target.digest, sha(await skopeoRaw(`docker://${registry.host}/${corpus.oci}`, 'manifest')));
    // An image only the registry has: the mirror's 404 hands over to the server.
    await skopeoCopy(`docker://${registry.host}/${corpus.docker}`, `docker://${upstream.host}/only/upstream:1`);
    const own = await pull(ns, `${upstream.host}/only/upstream:1`, { session: mirrored });
    assert.equal(own.image.target.digest, sha(await skopeoRaw(`docker://${upstream.host}/only/upstream:1`, 'manifest')));
  });
});
