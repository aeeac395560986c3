import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pushBusyboxImage } from '../testutil/busybox.js';
import { berth, fails, ok, type Result, TestRoots } from '../testutil/cli.js';
import { sh, skopeoCopy, skopeoRaw } from '../testutil/peers.js';
import { startRegistry, type TestRegistry } from '../testutil/registry.js';

// save and load (docker-archive and OCI archives), image export/import --oci (OCI layouts), with
// skopeo and umoci as the peers that read and write the same formats.

let registry: TestRegistry;
let work: string;
let img: string;
let imageId: string;
let manifestDigest: string;
const roots = new TestRoots();

/** The /etc/group that pushBusyboxImage writes. */
const groupFile = 'root:x:0:\nwheel:x:10:app\nstaff:x:50:app,other\napp:x:1000:\nnogroup:x:65534:\n';
const sha = (s: string | Buffer) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-save-load-'));
  registry = await startRegistry();
  img = await pushBusyboxImage(work, registry.host, 'archive/busybox');
  imageId = sha(await skopeoRaw(`docker://${img}`, 'config'));
  manifestDigest = sha(await skopeoRaw(`docker://${img}`, 'manifest'));
});
after(async () => {
  await roots.cleanup();
  await registry.stop();
  await rm(work, { recursive: true, force: true });
});

const newRoot = () => roots.make(work);
interface Inspected {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
}
const inspect = async (root: string, ref: string) =>
  (JSON.parse(ok(await berth(root, ['image', 'inspect', ref]), 'inspect').stdout) as Inspected[])[0] as Inspected;
const tarList = async (file: string) => (await sh('tar', ['-tf', file])).split('\n').filter(Boolean);

/** Runs `python3 -c script` and pipes its standard output into `berth load`. */
async function loadFromPython(root: string, script: string): Promise<Result> {
  const py = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  const r = await berth(root, ['load', '-q'], { input: py.stdout });
  py.kill();
  return r;
}

/** A tar holding the members `[name, bytes, type?, linkname?]`, made by Python's tarfile. */
const tarScript = (members: [string, string, string?, string?][]) => `
import io, sys, tarfile
t = tarfile.open(fileobj=sys.stdout.buffer, mode='w|')
for name, data, kind, link in ${JSON.stringify(members.map((m) => [m[0], m[1], m[2] ?? 'file', m[3] ?? '']))}:
    i = tarfile.TarInfo(name)
    if kind == 'symlink':
        i.type = tarfile.SYMTYPE; i.linkname = link; t.addfile(i)
    else:
        b = data.encode(); i.size = len(b); t.addfile(i, io.BytesIO(b))
t.close()
`;

describe('save and load', () => {
  test('berth save → skopeo copy docker-archive: → OCI layout → berth: IDs and digests agree at every hop', async () => {
    const root = await newRoot();
    ok(await berth(root, ['pull', '-q', img]), 'pull');
    // An image berth made itself goes the same way (its config is written as the peers write one).
    const rootfs = join(work, 'rootfs.tar');
    await sh('tar', ['-C', '/usr/bin', '-cf', rootfs, 'busybox']);
    const made = ok(
      await berth(root, ['import', '-c', 'ENV A=1', '-c', 'CMD ["busybox", "true"]', rootfs, 'made:1']),
      'import',
    ).stdout.trim();
    for (const [ref, id] of [
      [img, imageId],
      ['made:1', made],
    ] as const) {
      const archive = join(work, `saved-${id.slice(7, 15)}.tar`);
      ok(await berth(root, ['save', '-o', archive, ref]), 'save');
      const members = await tarList(archive);
      for (const m of ['manifest.json', 'index.json', 'oci-layout', `blobs/sha256/${id.slice(7)}`])
        assert.ok(members.includes(m), `${m} in the archive`);
      // skopeo reads it as a docker-archive: the same config bytes, so the same image ID.
      assert.equal(sha(await sh('skopeo', ['inspect', '--raw', '--config', `docker-archive:${archive}`])), id);
      const layout = join(work, `layout-${id.slice(7, 15)}`);
      await skopeoCopy(`docker-archive:${archive}`, `oci:${layout}:hop`);
      // skopeo converts the manifest on the way and encodes the config again: the bytes, and so the
      // ID, survive when the config was written as Go writes it (berth's own do). umoci ends its
      // configs with a newline, which that encoding drops; berth then agrees with skopeo's new ID.
      const hopId = sha(await sh('skopeo', ['inspect', '--raw', '--config', `oci:${layout}:hop`]));
      if (ref === 'made:1') assert.equal(hopId, id, "skopeo kept berth's config byte for byte");
      const other = await newRoot();
      assert.match(
        ok(await berth(other, ['image', 'import', '--oci', `${layout}:hop`, 'hop/image:1']), 'import --oci').stdout,
        /Loaded image: hop\/image:1/,
      );
      assert.equal((await inspect(other, 'hop/image:1')).Id, hopId);
      const [listed] = JSON.parse(ok(await berth(other, ['images', '--digests', '--format', 'json']), 'images').stdout) as {
        digest: string;
      }[];
      assert.equal(listed?.digest, sha(await sh('skopeo', ['inspect', '--raw', `oci:${layout}:hop`])), "skopeo's manifest, byte for byte");
    }
    assert.equal(ok(await berth(root, ['run', '--rm', img, 'cat', '/etc/group']), 'run').stdout, groupFile);

    // berth's own archive back into berth: the manifest digest too.
    const third = await newRoot();
    ok(await berth(third, ['load', '-i', join(work, `saved-${imageId.slice(7, 15)}.tar`)]), 'load berth archive');
    const target = JSON.parse(ok(await berth(third, ['images', '--digests', '--format', 'json']), 'images').stdout) as {
      digest: string;
      id: string;
    }[];
    assert.deepEqual(
      target.map((t) => [t.id, t.digest]),
      [[imageId, manifestDigest]],
    );
    assert.equal(ok(await berth(third, ['run', '--rm', img, 'cat', '/etc/group']), 'run').stdout, groupFile);
  });

  test('skopeo docker-archive and gzip input load with the registry image ID; save --format oci is an oci-archive', async () => {
    const root = await newRoot();
    const archive = join(work, 'from-skopeo.tar');
    await skopeoCopy(`docker://${img}`, `docker-archive:${archive}:mirror/busybox:1`);
    await sh('gzip', ['-k', archive]);
    const loaded = ok(await berth(root, ['load'], { input: await readFile(`${archive}.gz`) }), 'load gzip from stdin');
    assert.match(loaded.stdout, /Loaded image: mirror\/busybox:1/);
    assert.equal((await inspect(root, 'mirror/busybox:1')).Id, imageId);

    ok(await berth(root, ['pull', '-q', img]), 'pull');
    const oci = join(work, 'saved.oci.tar');
    ok(await berth(root, ['save', '--format', 'oci', '-o', oci, img]), 'save --format oci');
    assert.ok(!(await tarList(oci)).includes('manifest.json'));
    assert.equal(sha(await sh('skopeo', ['inspect', '--raw', `oci-archive:${oci}`])), manifestDigest);
    // skopeo's oci-archive: the name from its ref name annotation.
    const fromSkopeo = join(work, 'skopeo.oci.tar');
    await skopeoCopy(`docker://${img}`, `oci-archive:${fromSkopeo}:mirror/oci:2`);
    const other = await newRoot();
    assert.match(ok(await berth(other, ['load', '-i', fromSkopeo]), 'load oci-archive').stdout, /^Loaded image: mirror\/oci:2\n$/);
    assert.equal((await inspect(other, 'mirror/oci:2')).Id, imageId);
  });

  test('OCI layouts: umoci → image import --oci → run; image export --oci → skopeo and umoci read it', async () => {
    const root = await newRoot();
    const layout = join(work, 'umoci-layout');
    await skopeoCopy(`docker://${img}`, `oci:${layout}:v1`);
    await sh('umoci', ['config', '--image', `${layout}:v1`, '--tag', 'v2', '--config.cmd', 'echo', '--config.cmd', 'from umoci']);
    const imported = ok(await berth(root, ['image', 'import', '--oci', `${layout}:v2`, 'local/umoci:v2']), 'import --oci').stdout;
    assert.match(imported, /Loaded image: local\/umoci:v2/);
    assert.equal(ok(await berth(root, ['run', '--rm', 'local/umoci:v2']), 'run').stdout, 'from umoci\n');
    const v2Manifest = sha(await sh('skopeo', ['inspect', '--raw', `oci:${layout}:v2`]));
    const images = JSON.parse(ok(await berth(root, ['images', '--digests', '--format', 'json']), 'images').stdout) as { digest: string }[];
    assert.deepEqual(
      images.map((i) => i.digest),
      [v2Manifest],
    );

    ok(await berth(root, ['pull', '-q', img]), 'pull');
    const out = join(work, 'exported-layout');
    ok(await berth(root, ['image', 'export', '--oci', out, img, 'local/umoci:v2']), 'export --oci');
    assert.equal(sha(await sh('skopeo', ['inspect', '--raw', `oci:${out}:latest`])), manifestDigest);
    assert.equal(sha(await sh('skopeo', ['inspect', '--raw', `oci:${out}:v2`])), v2Manifest);
    assert.match(await sh('umoci', ['ls', '--layout', out]), /latest\nv2\n|v2\nlatest\n/);
    fails(await berth(root, ['image', 'import', '--oci', join(work, 'nope')]), 2, /not an OCI image layout/);
    // load takes a layout directory too (every image in it; the ones without a name by their ID).
    const fourth = await newRoot();
    assert.match(ok(await berth(fourth, ['load', '-i', out]), 'load a directory').stdout, /Loaded image: .*archive\/busybox:latest\n/);
  });

  test('hostile archives are refused with one clear line, nothing written outside, memory and time bounded', async () => {
    const root = await newRoot();
    const refused = async (script: string, code: number, message: RegExp) => {
      const r = await loadFromPython(root, script);
      assert.equal(r.code, code, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0] as string, message);
    };
    await refused(tarScript([['../../escaped-by-load', 'x']]), 2, /"\.\.\/\.\.\/escaped-by-load": path leaves the archive/);
    await refused(tarScript([['/etc/absolute-by-load', 'x']]), 2, /absolute/);
    await refused(tarScript([['blobs/sha256/link', '', 'symlink', '../../../etc/passwd']]), 2, /path leaves the archive/);
    await refused(
      tarScript([['manifest.json', JSON.stringify([{ Config: '../../etc/passwd', RepoTags: ['x:1'], Layers: [] }])]]),
      2,
      /manifest\.json.*path leaves the archive|"\.\.\/\.\.\/etc\/passwd"/,
    );
    await refused(
      tarScript([['manifest.json', JSON.stringify([{ Config: 'blobs/sha256/0000', RepoTags: ['x:1'], Layers: [] }])]]),
      2,
      /manifest\.json names "blobs\/sha256\/0000", which the archive does not hold/,
    );
    await refused(tarScript([[`blobs/sha256/${'a'.repeat(64)}`, 'not what the name says']]), 11, /does not match its name/);
    await refused(
      `
import io, sys, tarfile
t = tarfile.open(fileobj=sys.stdout.buffer, mode='w|')
m = b'[' + b' ' * (5 << 20) + b']'
i = tarfile.TarInfo('manifest.json'); i.size = len(m); t.addfile(i, io.BytesIO(m))
t.close()
`,
      2,
      /manifest\.json is larger than 4194304 bytes/,
    );
    // A well-formed archive whose layer climbs out: refused when it is applied, and nothing of it stays.
    await refused(
      `
import hashlib, io, json, sys, tarfile
layer = io.BytesIO()
lt = tarfile.open(fileobj=layer, mode='w')
i = tarfile.TarInfo('../../escaped-by-layer'); i.size = 1; lt.addfile(i, io.BytesIO(b'x'))
lt.close()
lb = layer.getvalue()
diff = 'sha256:' + hashlib.sha256(lb).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
ch = hashlib.sha256(config).hexdigest()
t = tarfile.open(fileobj=sys.stdout.buffer, mode='w|')
for name, data in [(ch + '.json', config), ('layer/layer.tar', lb), ('manifest.json', json.dumps([{"Config": ch + '.json', "RepoTags": ["evil:1"], "Layers": ["layer/layer.tar"]}]).encode())]:
    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
t.close()
`,
      2,
      /^berth: load: unpack layer sha256:\w+: tar entry "\.\.\/\.\.\/escaped-by-layer": path climbs out/,
    );
    assert.equal(existsSync(join(work, 'escaped-by-layer')), false);
    assert.equal(existsSync(join(work, 'escaped-by-load')), false);
    assert.equal(existsSync('/etc/absolute-by-load'), false);

    // A million empty members: refused at the member limit, without reading them all.
    const started = Date.now();
    await refused(
      `
import sys, tarfile
t = tarfile.open(fileobj=sys.stdout.buffer, mode='w|')
for n in range(1000000):
    t.addfile(tarfile.TarInfo('e/%d' % n))
t.close()
`,
      9,
      /more than 100000 members/,
    );
    assert.ok(Date.now() - started < 60_000, 'bounded time');

    // A config of 1 GiB: stored as it streams (never held), then refused as a config.
    const zeros = createHash('sha256');
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < 1024; i++) zeros.update(chunk);
    const hex = zeros.digest('hex');
    await refused(
      `
import io, json, sys, tarfile
class Zeros(io.RawIOBase):
    def __init__(self, n): self.n = n
    def readable(self): return True
    def readinto(self, b):
        k = min(len(b), self.n); b[:k] = bytes(k); self.n -= k; return k
t = tarfile.open(fileobj=sys.stdout.buffer, mode='w|')
i = tarfile.TarInfo('blobs/sha256/${hex}'); i.size = 1 << 30; t.addfile(i, io.BufferedReader(Zeros(1 << 30), 1 << 20))
m = json.dumps([{"Config": "blobs/sha256/${hex}", "RepoTags": ["big:1"], "Layers": []}]).encode()
i = tarfile.TarInfo('manifest.json'); i.size = len(m); t.addfile(i, io.BytesIO(m))
t.close()
`,
      5,
      /1073741824 bytes, more than the \d+ allowed/,
    );
    const images = JSON.parse(ok(await berth(root, ['images', '--format', 'json']), 'images').stdout) as unknown[];
    assert.deepEqual(images, []);
    ok(await berth(root, ['gc']), 'gc');
    assert.match(ok(await berth(root, ['fsck']), 'fsck').stdout, /^0 errors, 0 orphans\n$/);
  });

  test('image convert: zstd, uncompressed, docker and OCI media types; the image ID and the filesystem stay', async () => {
    const root = await newRoot();
    ok(await berth(root, ['pull', '-q', img]), 'pull');
    const tree = async (ref: string) =>
      ok(await berth(root, ['run', '--rm', ref, 'sh', '-c', 'ls -lnR /bin /home | md5sum; cat /etc/group /etc/passwd']), 'run').stdout;
    const original = await tree(img);
    interface Manifest {
      mediaType: string;
      config: { digest: string; mediaType: string };
      layers: { mediaType: string; digest: string }[];
    }
    const manifestOf = async (ref: string) => {
      const inspected = JSON.parse(ok(await berth(root, ['image', 'inspect', ref]), 'inspect').stdout) as {
        Id: string;
        RepoDigests: string[];
      }[];
      const out = join(work, `m-${Math.random().toString(36).slice(2)}`);
      const digest = ok(await berth(root, ['images', '--digests', '--format', 'json', '--filter', `reference=${ref}`]), 'images').stdout;
      const d = (JSON.parse(digest) as { digest: string }[])[0]?.digest as string;
      ok(await berth(root, ['content', 'get', d, '-o', out]), 'content get');
      return { id: inspected[0]?.Id, manifest: JSON.parse(await readFile(out, 'utf8')) as Manifest };
    };
    const printed = ok(await berth(root, ['image', 'convert', '--zstd', img, 'converted/busybox:zstd']), 'convert --zstd').stdout.trim();
    const zstd = await manifestOf('converted/busybox:zstd');
    assert.equal(zstd.id, imageId, 'the image ID stays');
    assert.deepEqual(
      zstd.manifest.layers.map((l) => l.mediaType),
      ['application/vnd.oci.image.layer.v1.tar+zstd'],
    );
    assert.match(printed, /^sha256:[0-9a-f]{64}$/);
    // The zstd layer unpacks to the same tree: run it in a fresh root that only has this image.
    const other = await newRoot();
    const zarchive = join(work, 'zstd.tar');
    ok(await berth(root, ['save', '-o', zarchive, 'converted/busybox:zstd']), 'save the zstd image');
    ok(await berth(other, ['load', '-i', zarchive]), 'load it elsewhere');
    assert.equal(
      ok(
        await berth(other, [
          'run',
          '--rm',
          'converted/busybox:zstd',
          'sh',
          '-c',
          'ls -lnR /bin /home | md5sum; cat /etc/group /etc/passwd',
        ]),
        'run zstd',
      ).stdout,
      original,
    );

    ok(
      await berth(root, ['image', 'convert', '--uncompressed', '--docker', 'converted/busybox:zstd', 'converted/busybox:plain']),
      'convert --uncompressed --docker',
    );
    const plain = await manifestOf('converted/busybox:plain');
    assert.equal(plain.id, imageId);
    assert.equal(plain.manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(plain.manifest.config.mediaType, 'application/vnd.docker.container.image.v1+json');
    assert.deepEqual(
      plain.manifest.layers.map((l) => l.mediaType),
      ['application/vnd.docker.image.rootfs.diff.tar'],
    );
    // Uncompressed, the layer blob is the tar itself: its digest is the diffID.
    const config = JSON.parse(await skopeoRaw(`docker://${img}`, 'config')) as { rootfs: { diff_ids: string[] } };
    assert.equal(plain.manifest.layers[0]?.digest, config.rootfs.diff_ids[0]);
    assert.equal(await tree('converted/busybox:plain'), original);
    fails(await berth(root, ['image', 'convert', '--zstd', '--gzip', img, 'x:1']), 2, /choose one of --zstd, --gzip, --uncompressed/);
  });

  test('save refuses an image whose compressed layers were dropped', async () => {
    const root = await newRoot();
    ok(await berth(root, ['pull', '-q', '--discard-unpacked-layers', img]), 'pull');
    fails(await berth(root, ['save', '-o', join(work, 'dropped.tar'), img]), 5, /is not in the content store .*pull the image again/);
    assert.equal(existsSync(join(work, 'dropped.tar')), false);
  });
});
