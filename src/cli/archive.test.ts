import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Berth } from '../services/index.js';
import { berth, cleanupRoots, fails, ok } from '../testutil/cli.js';
import { freePort } from '../testutil/registry.js';

// import (a root filesystem tarball becomes a one-layer image) and export (a container's
// filesystem as a tarball), on a root filesystem of Debian's busybox-static.

let work: string;
let root: string;
let rootfs: string;
let plainTar: string;
let server: ChildProcess | undefined;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-archive-'));
  root = join(work, 'root');
  rootfs = join(work, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp']) await mkdir(join(rootfs, d), { recursive: true });
  execFileSync('cp', ['/usr/bin/busybox', join(rootfs, 'bin/busybox')]);
  for (const a of ['sh', 'cat', 'ls', 'echo']) await symlink('busybox', join(rootfs, 'bin', a));
  await writeFile(join(rootfs, 'etc/hello'), 'hello from a tarball\n');
  plainTar = join(work, 'rootfs.tar');
  execFileSync('tar', ['--numeric-owner', '--sort=name', '-C', rootfs, '-cf', plainTar, '.']);
  execFileSync('gzip', ['-k', plainTar]);
});
after(async () => {
  server?.kill();
  await cleanupRoots([root]);
  await rm(work, { recursive: true, force: true });
});

const sha256 = async (path: string) =>
  `sha256:${createHash('sha256')
    .update(await readFile(path))
    .digest('hex')}`;
interface Inspected {
  Id: string;
  Os: string;
  Architecture: string;
  RootFS: { Layers: string[] };
  Config: { Cmd?: string[]; Env?: string[] };
}
const inspect = async (ref: string) =>
  (JSON.parse(ok(await berth(root, ['image', 'inspect', ref]), 'inspect').stdout) as Inspected[])[0] as Inspected;

describe('import and export', () => {
  test('import: a file (gzip), stdin (plain) and a URL give one layer whose diffID is the tar digest', async () => {
    const id = ok(
      await berth(root, ['import', '-c', 'CMD ["cat", "/etc/hello"]', '-c', 'ENV A=1', `${plainTar}.gz`, 'imported:gz']),
      'import',
    ).stdout.trim();
    const img = await inspect('imported:gz');
    assert.equal(img.Id, id);
    assert.deepEqual(img.RootFS.Layers, [await sha256(plainTar)], 'the diffID is the uncompressed tar, byte for byte');
    assert.deepEqual(img.Config.Cmd, ['cat', '/etc/hello']);
    assert.deepEqual(img.Config.Env, ['A=1']);
    assert.equal(img.Os, 'linux');
    assert.equal(ok(await berth(root, ['run', '--rm', 'imported:gz']), 'run').stdout, 'hello from a tarball\n');
    assert.match(ok(await berth(root, ['image', 'history', 'imported:gz']), 'history').stdout, /Imported from .*rootfs\.tar\.gz/);

    const fromStdin = ok(
      await berth(root, ['import', '-', 'imported:stdin'], { input: await readFile(plainTar) }),
      'import -',
    ).stdout.trim();
    assert.deepEqual((await inspect('imported:stdin')).RootFS.Layers, [await sha256(plainTar)]);
    assert.notEqual(fromStdin, id, 'another config (CMD, ENV, time)');
    // Unpacked once: both images share the one layer stack.
    const b = await Berth.open({ root });
    try {
      assert.equal(
        b
          .snapshotter('default')
          .records.allRows()
          .filter((r) => r.kind === 'committed').length,
        1,
      );
    } finally {
      b.close();
    }

    const port = await freePort();
    server = spawn('python3', ['-m', 'http.server', '--bind', '127.0.0.1', String(port), '--directory', work], { stdio: 'ignore' });
    const url = `http://127.0.0.1:${port}/rootfs.tar.gz`;
    for (
      let i = 0;
      i < 50 &&
      (await fetch(url)
        .then((r) => r.ok)
        .catch(() => false)) === false;
      i++
    )
      await new Promise((r) => setTimeout(r, 100));
    ok(await berth(root, ['image', 'import', url, 'imported:url']), 'import URL');
    assert.equal(ok(await berth(root, ['run', '--rm', 'imported:url', 'cat', '/etc/hello']), 'run').stdout, 'hello from a tarball\n');
    fails(await berth(root, ['import', `http://127.0.0.1:${port}/missing.tar`]), 3, /404/);

    // Unnamed: docker's <none>:<none>, named by its ID.
    const unnamed = ok(await berth(root, ['import', plainTar]), 'import unnamed').stdout.trim();
    assert.match(ok(await berth(root, ['images']), 'images').stdout, new RegExp(`<none> +<none> +${unnamed.slice(7, 19)}`));
    ok(await berth(root, ['rmi', unnamed]), 'rmi by ID');
  });

  test('import refuses what is not a root filesystem, and keeps nothing of it', async () => {
    const notTar = join(work, 'not.tar');
    await writeFile(notTar, Buffer.alloc(4096, 7));
    const bad = await berth(root, ['import', notTar, 'bad:1']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /^berth: import ".*not\.tar": .*\n$/);
    // A tar with an entry climbing out of the root, made by Python's tarfile.
    const hostile = join(work, 'hostile.tar');
    execFileSync('python3', [
      '-c',
      `import tarfile, io
t = tarfile.open(${JSON.stringify(hostile)}, 'w')
data = b'escaped'
i = tarfile.TarInfo('../../escaped-by-import'); i.size = len(data); t.addfile(i, io.BytesIO(data))
t.close()`,
    ]);
    const climbing = await berth(root, ['import', hostile, 'bad:2']);
    assert.notEqual(climbing.code, 0);
    assert.match(climbing.stderr, /import ".*hostile\.tar"/);
    assert.equal(existsSync(join(work, '..', 'escaped-by-import')), false);
    const names = JSON.parse(ok(await berth(root, ['images', '--format', 'json']), 'images').stdout) as { name: string }[];
    assert.equal(
      names.some((n) => n.name.includes('bad')),
      false,
    );
    fails(await berth(root, ['import', join(work, 'no-such.tar')]), 3, /no such file/);
  });

  test("export: a container's filesystem, stopped or running; export then import gives the same tree", async () => {
    ok(await berth(root, ['run', '--name', 'changed', 'imported:gz', 'sh', '-c', 'echo changed > /etc/new; rm /etc/hello']), 'run');
    const out = join(work, 'changed.tar');
    ok(await berth(root, ['export', '-o', out, 'changed']), 'export');
    const listing = execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).split('\n');
    assert.ok(listing.includes('etc/new'), 'the change');
    assert.ok(!listing.includes('etc/hello'), 'the deletion');
    assert.ok(listing.includes('bin/busybox'), 'the image');
    assert.equal(execFileSync('tar', ['-xOf', out, 'etc/new'], { encoding: 'utf8' }), 'changed\n');
    ok(await berth(root, ['import', '-c', 'CMD ["cat", "/etc/new"]', out, 'reimported:1']), 'import the export');
    assert.equal(ok(await berth(root, ['run', '--rm', 'reimported:1']), 'run').stdout, 'changed\n');
    assert.equal((await berth(root, ['run', '--rm', 'reimported:1', 'cat', '/etc/hello'])).code, 1);

    ok(await berth(root, ['run', '-d', '--name', 'live', 'imported:gz', 'sh', '-c', 'echo live > /tmp/live; sleep 100']), 'run -d');
    const liveTar = join(work, 'live.tar');
    let tar = '';
    for (let i = 0; i < 50 && !tar.includes('tmp/live'); i++) {
      ok(await berth(root, ['container', 'export', '-o', liveTar, 'live']), 'export running');
      tar = execFileSync('tar', ['-tf', liveTar], { encoding: 'utf8' });
    }
    assert.match(tar, /tmp\/live/);
    ok(await berth(root, ['rm', '-f', 'live', 'changed']), 'rm');
    fails(await berth(root, ['export', '-o', out, 'nope']), 3, /No such container/);
  });
});
