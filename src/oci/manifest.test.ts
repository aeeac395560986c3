import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { digestOf, MediaType, parseImageConfig, parseIndex, parseManifest, parseManifestOrIndex } from './index.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const enc = (v: unknown, indent?: number) => new TextEncoder().encode(JSON.stringify(v, null, indent));

const manifest = {
  schemaVersion: 2,
  mediaType: MediaType.ociManifest,
  config: { mediaType: MediaType.ociConfig, digest: D('a'), size: 123 },
  layers: [
    { mediaType: MediaType.ociLayerGzip, digest: D('b'), size: 456 },
    { mediaType: MediaType.ociLayerZstd, digest: D('c'), size: 789, annotations: { k: 'v' } },
  ],
  annotations: { 'org.opencontainers.image.ref.name': 'x' },
};

test('parseManifest keeps the raw bytes and digests them, not a re-serialisation', () => {
  const raw = enc(manifest, 3);
  const m = parseManifest(raw);
  assert.equal(m.raw, raw);
  assert.equal(m.digest, digestOf(raw));
  assert.notEqual(m.digest, digestOf(enc(manifest)));
  assert.equal(m.value.layers.length, 2);
  assert.equal(m.value.layers[1]?.annotations?.k, 'v');
  assert.equal(m.value.config.size, 123);
});

test('parseManifest reads Docker schema 2 and an OCI manifest without mediaType', () => {
  const docker = { ...manifest, mediaType: MediaType.dockerManifest, config: { ...manifest.config, mediaType: MediaType.dockerConfig } };
  assert.equal(parseManifest(enc(docker)).value.mediaType, MediaType.dockerManifest);
  const { mediaType: _, ...bare } = manifest;
  assert.equal(parseManifest(enc(bare)).value.mediaType, MediaType.ociManifest);
  assert.equal(parseManifest(enc(bare), MediaType.dockerManifest).value.mediaType, MediaType.dockerManifest);
});

test('parseManifest refuses schema 1 with a clear message', () => {
  const v1 = { schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] };
  assert.throws(() => parseManifest(enc(v1)), { code: 'INVALID_ARGUMENT', message: /schema 1 is deprecated/ });
  assert.throws(() => parseManifestOrIndex(enc(v1), MediaType.dockerSchema1SignedManifest), {
    code: 'INVALID_ARGUMENT',
    message: /schema 1/,
  });
});

test('parseManifest names the bad field', () => {
  const cases: [unknown, RegExp][] = [
    [{ ...manifest, schemaVersion: 3 }, /schemaVersion/],
    [{ ...manifest, config: undefined }, /config: expected an object/],
    [{ ...manifest, layers: [manifest.layers[0], { ...manifest.layers[0], digest: 'sha256:nope' }] }, /layers\[1\]\.digest/],
    [{ ...manifest, layers: [{ ...manifest.layers[0], size: -1 }] }, /layers\[0\]\.size/],
    [{ ...manifest, layers: [{ ...manifest.layers[0], size: 1.5 }] }, /layers\[0\]\.size/],
    [{ ...manifest, layers: [{ ...manifest.layers[0], mediaType: 7 }] }, /layers\[0\]\.mediaType/],
    [{ ...manifest, annotations: { a: 1 } }, /annotations\["a"\]/],
    [{ ...manifest, mediaType: MediaType.ociIndex }, /mediaType/],
    [{ ...manifest, manifests: [] }, /manifests/],
    [[], /expected an object/],
  ];
  for (const [doc, re] of cases) assert.throws(() => parseManifest(enc(doc)), { code: 'INVALID_ARGUMENT', message: re });
  assert.throws(() => parseManifest(new TextEncoder().encode('{nope')), { code: 'INVALID_ARGUMENT', message: /not UTF-8 JSON/ });
  assert.throws(() => parseManifest(new Uint8Array([0xff, 0xfe])), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => parseManifest(enc(manifest), MediaType.dockerManifest), { code: 'INVALID_ARGUMENT', message: /does not match/ });
});

test('parseManifest refuses documents over 4 MiB', () => {
  const big = new Uint8Array((4 << 20) + 1).fill(0x20);
  assert.throws(() => parseManifest(big), { code: 'INVALID_ARGUMENT', message: /larger than/ });
});

const index = {
  schemaVersion: 2,
  mediaType: MediaType.ociIndex,
  manifests: [
    { mediaType: MediaType.ociManifest, digest: D('1'), size: 10, platform: { os: 'linux', architecture: 'amd64' } },
    { mediaType: MediaType.ociManifest, digest: D('2'), size: 11, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
  ],
};

test('parseIndex reads OCI indexes and Docker manifest lists', () => {
  const x = parseIndex(enc(index));
  assert.equal(x.value.manifests[1]?.platform?.variant, 'v7');
  const list = { ...index, mediaType: MediaType.dockerManifestList };
  assert.equal(parseIndex(enc(list)).value.mediaType, MediaType.dockerManifestList);
  assert.throws(() => parseIndex(enc({ ...index, manifests: [{ ...index.manifests[0], platform: { os: 'linux' } }] })), {
    code: 'INVALID_ARGUMENT',
    message: /manifests\[0\]\.platform\.architecture/,
  });
});

test('parseManifestOrIndex tells the kinds apart by type or shape', () => {
  assert.equal(parseManifestOrIndex(enc(index)).kind, 'index');
  assert.equal(parseManifestOrIndex(enc(manifest)).kind, 'manifest');
  const { mediaType: _, ...bareIndex } = index;
  assert.equal(parseManifestOrIndex(enc(bareIndex)).kind, 'index');
  assert.throws(() => parseManifestOrIndex(enc({ ...manifest, mediaType: 'text/plain' })), { code: 'INVALID_ARGUMENT' });
});

const config = {
  architecture: 'amd64',
  os: 'linux',
  created: '2024-01-01T00:00:00Z',
  config: { Env: ['PATH=/bin'], Cmd: ['sh'], WorkingDir: '/', Labels: { a: 'b' } },
  rootfs: { type: 'layers', diff_ids: [D('d')] },
  history: [{ created_by: 'ADD x /' }, { created_by: 'ENV', empty_layer: true }],
  extra: { kept: true },
};

test('parseImageConfig checks the fields berth uses and keeps the rest', () => {
  const c = parseImageConfig(enc(config));
  assert.equal(c.digest, digestOf(enc(config)));
  assert.deepEqual(c.value.rootfs.diff_ids, [D('d')]);
  assert.deepEqual(c.value.extra, { kept: true });
  const cases: [unknown, RegExp][] = [
    [{ ...config, rootfs: { type: 'x', diff_ids: [] } }, /rootfs\.type/],
    [{ ...config, rootfs: { type: 'layers', diff_ids: ['sha256:x'] } }, /rootfs\.diff_ids\[0\]/],
    [{ ...config, config: { Cmd: 'sh' } }, /config\.Cmd/],
    [{ ...config, config: { Env: [1] } }, /config\.Env\[0\]/],
    [{ ...config, architecture: undefined }, /architecture/],
    [{ ...config, history: [{ empty_layer: 'yes' }] }, /history\[0\]\.empty_layer/],
  ];
  for (const [doc, re] of cases) assert.throws(() => parseImageConfig(enc(doc)), { code: 'INVALID_ARGUMENT', message: re });
});

test('document parsers property: arbitrary JSON parses or throws InvalidArgument', () => {
  const parsers = [parseManifest, parseIndex, parseManifestOrIndex, parseImageConfig];
  fc.assert(
    fc.property(fc.oneof(fc.json(), fc.constant(JSON.stringify(manifest)), fc.constant(JSON.stringify(index))), (json) => {
      for (const parse of parsers) {
        try {
          parse(new TextEncoder().encode(json));
        } catch (err) {
          assert.equal((err as { code?: string }).code, 'INVALID_ARGUMENT', json);
        }
      }
    }),
    { numRuns: 500 },
  );
});
