import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { berth, fails, berthMain as main, ok } from '../testutil/cli.js';

async function tempRoot(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'root');
}

const sha256 = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('cli version and info, as table and JSON', async (t) => {
  const root = await tempRoot(t);
  assert.match(ok(await berth(root, ['version']), 'version').stdout, /berth: +\d+\.\d+\.\d+/);
  const v = JSON.parse(ok(await berth(root, ['version', '--format', 'json']), 'version json').stdout);
  assert.equal(v.node, process.versions.node);
  assert.match(ok(await berth(root, ['--version']), '--version').stdout, /^\d+\.\d+\.\d+\n$/);
  const info = ok(await berth(root, ['info']), 'info').stdout;
  assert.match(info, new RegExp(`Root: ${root}`));
  assert.match(info, /Blobs: 0/);
  ok(await berth(root, ['-n', 'k8s.io', 'content', 'add', '-'], { input: 'abc' }), 'add');
  const j = JSON.parse(ok(await berth(root, ['info', '--format', 'json']), 'info json').stdout);
  assert.equal(j.root, root);
  assert.deepEqual(j.content, { blobs: 1, size: 3, ingests: 0, ingestSize: 0 });
  assert.deepEqual(
    j.namespaces.map((n: { name: string; blobs: number }) => [n.name, n.blobs]),
    [
      ['default', 0],
      ['k8s.io', 1],
    ],
  );
});

test('cli namespace ls, create, label, rm and their errors', async (t) => {
  const root = await tempRoot(t);
  assert.equal(ok(await berth(root, ['namespace', 'create', 'k8s.io', 'team=a']), 'create').stdout, 'k8s.io\n');
  const table = ok(await berth(root, ['namespace', 'ls']), 'ls').stdout;
  assert.match(table, /^NAME +LABELS\n/);
  assert.match(table, /\nk8s\.io +team=a\n/);
  const json = JSON.parse(ok(await berth(root, ['namespace', 'ls', '--format', 'json']), 'ls json').stdout);
  assert.deepEqual(
    json.map((n: { name: string }) => n.name),
    ['default', 'k8s.io'],
  );
  assert.equal(ok(await berth(root, ['ns', 'ls', '-q']), 'ls -q').stdout, 'default\nk8s.io\n');
  assert.equal(ok(await berth(root, ['namespace', 'label', 'k8s.io', 'team=', 'env=prod']), 'label').stdout, 'env=prod\n');
  fails(await berth(root, ['namespace', 'create', 'k8s.io']), 4, /namespace "k8s\.io": already exists/);
  fails(await berth(root, ['namespace', 'create', 'bad name']), 2, /invalid namespace "bad name"/);
  fails(await berth(root, ['namespace', 'rm', 'nope']), 3, /namespace "nope": not found/);
  fails(await berth(root, ['namespace', 'label', 'nope', 'a=b']), 3, /namespace "nope": not found/);
  fails(await berth(root, ['namespace', 'label', 'k8s.io', 'novalue']), 2, /expected key=value/);
  ok(await berth(root, ['-n', 'k8s.io', 'content', 'add', '-'], { input: 'x' }), 'add');
  fails(await berth(root, ['namespace', 'rm', 'k8s.io']), 5, /not empty \(1 blob\)/);
  ok(await berth(root, ['-n', 'k8s.io', 'content', 'rm', sha256('x')]), 'content rm');
  assert.equal(ok(await berth(root, ['namespace', 'rm', 'k8s.io']), 'rm').stdout, 'k8s.io\n');
});

test('cli content add, ls, get, info, label, rm; namespaces isolate and blobs are stored once', async (t) => {
  const root = await tempRoot(t);
  const dir = join(root, '..');
  const file = join(dir, 'blob.bin');
  const data = randomBytes(300_000);
  await writeFile(file, data);
  const digest = sha256(data);
  assert.equal(ok(await berth(root, ['-n', 'k8s.io', 'content', 'add', file, '-l', 'a=1', '-q']), 'add').stdout, `${digest}\n`);
  // Not listed in default; listed in k8s.io (also through BERTH_NAMESPACE).
  assert.equal(ok(await berth(root, ['content', 'ls', '-q']), 'ls default').stdout, '');
  assert.equal(ok(await berth(root, ['content', 'ls', '-q'], { env: { BERTH_NAMESPACE: 'k8s.io' } }), 'ls env').stdout, `${digest}\n`);
  const table = ok(await berth(root, ['-n', 'k8s.io', 'content', 'ls']), 'ls').stdout;
  assert.match(table, /^DIGEST +SIZE +AGE +LABELS\n/);
  assert.match(table, new RegExp(`${digest} +300kB +.+ +a=1\\n`));
  const json = JSON.parse(ok(await berth(root, ['-n', 'k8s.io', 'content', 'ls', '--format', 'json']), 'ls json').stdout);
  assert.deepEqual(
    json.map((i: { digest: string; size: number; labels: object }) => [i.digest, i.size, i.labels]),
    [[digest, data.length, { a: '1' }]],
  );
  // get to stdout and to a file
  const got = ok(await berth(root, ['-n', 'k8s.io', 'content', 'get', digest, '-o', join(dir, 'out.bin')]), 'get -o');
  assert.equal(got.stdout, '');
  assert.deepEqual(await readFile(join(dir, 'out.bin')), data);
  const small = ok(await berth(root, ['-n', 'k8s.io', 'content', 'add', '-'], { input: 'hello\n' }), 'add stdin').stdout.trim();
  assert.equal(ok(await berth(root, ['-n', 'k8s.io', 'content', 'get', small]), 'get').stdout, 'hello\n');
  // info and labels
  const info = JSON.parse(ok(await berth(root, ['-n', 'k8s.io', 'content', 'info', digest]), 'info').stdout);
  assert.equal(info.size, data.length);
  assert.equal(ok(await berth(root, ['-n', 'k8s.io', 'content', 'label', digest, 'a=', 'b=2']), 'label').stdout, 'b=2\n');
  // the same blob in default is shared: one file on disk
  ok(await berth(root, ['content', 'add', file, '-q']), 'add default');
  const blobs = await readdir(join(root, 'content', 'blobs', 'sha256'));
  assert.deepEqual(blobs.sort(), [digest.slice(7), small.slice(7)].sort());
  ok(await berth(root, ['-n', 'k8s.io', 'content', 'rm', digest]), 'rm k8s.io');
  assert.ok(await stat(join(root, 'content', 'blobs', 'sha256', digest.slice(7))), 'still referenced by default');
  ok(await berth(root, ['content', 'rm', digest]), 'rm default');
  await assert.rejects(stat(join(root, 'content', 'blobs', 'sha256', digest.slice(7))), { code: 'ENOENT' });
});

test('cli content add with a wrong expected digest exits 5 and stores nothing', async (t) => {
  const root = await tempRoot(t);
  fails(
    await berth(root, ['content', 'add', '--expected-digest', sha256('other'), '-'], { input: 'data' }),
    5,
    /digest sha256:[a-f0-9]{64}, expected sha256:/,
  );
  assert.equal(ok(await berth(root, ['content', 'ls', '-q']), 'ls').stdout, '');
  assert.equal(ok(await berth(root, ['content', 'active', '--format', 'json']), 'active').stdout, '[]\n');
  assert.deepEqual(await readdir(join(root, 'content', 'blobs', 'sha256')), []);
  const right = ok(await berth(root, ['content', 'add', '--expected-digest', sha256('data'), '-'], { input: 'data' }), 'add');
  assert.equal(right.stdout, `${sha256('data')}\n`);
});

test('cli content add killed halfway resumes on the next run', async (t) => {
  const root = await tempRoot(t);
  const file = join(root, '..', 'big.bin');
  const data = randomBytes(8 << 20);
  await writeFile(file, data);
  // First run: the bytes come slowly through a pipe; kill it with SIGKILL while it waits for more.
  const p = spawn(process.execPath, [main, 'content', 'add', '--ref', 'resumable', '-'], {
    env: { ...process.env, BERTH_ROOT: root },
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  p.stdin.write(data.subarray(0, 3 << 20));
  const ingestData = async () => {
    const dirs = await readdir(join(root, 'content', 'ingest')).catch(() => []);
    for (const d of dirs) {
      const s = await stat(join(root, 'content', 'ingest', d, 'data')).catch(() => undefined);
      if (s) return s.size;
    }
    return 0;
  };
  while ((await ingestData()) < 3 << 20) await new Promise((r) => setTimeout(r, 20));
  p.kill('SIGKILL');
  await new Promise((r) => p.on('close', r));
  const active = JSON.parse(ok(await berth(root, ['content', 'active', '--format', 'json']), 'active').stdout);
  assert.deepEqual(
    active.map((s: { ref: string; offset: number }) => [s.ref, s.offset]),
    [['resumable', 3 << 20]],
  );
  // Second run, from the file: it continues at the recorded offset and commits the right blob.
  assert.equal(ok(await berth(root, ['content', 'add', '--ref', 'resumable', file, '-q']), 'resume').stdout, `${sha256(data)}\n`);
  assert.equal(ok(await berth(root, ['content', 'active', '--format', 'json']), 'active after').stdout, '[]\n');
  ok(await berth(root, ['content', 'verify']), 'verify');
});

test('cli content verify reports a blob damaged on disk', async (t) => {
  const root = await tempRoot(t);
  const a = ok(await berth(root, ['content', 'add', '-'], { input: 'good' }), 'add').stdout.trim();
  const b = ok(await berth(root, ['content', 'add', '-'], { input: 'soon bad' }), 'add').stdout.trim();
  assert.match(ok(await berth(root, ['content', 'verify']), 'verify').stdout, /2 blobs checked, 0 damaged/);
  const path = join(root, 'content', 'blobs', 'sha256', b.slice(7));
  await chmod(path, 0o644);
  await writeFile(path, 'evil bad');
  const r = await berth(root, ['content', 'verify']);
  assert.equal(r.code, 11, r.stderr);
  assert.match(r.stdout, new RegExp(`${b}: content hashes to sha256:`));
  assert.doesNotMatch(r.stdout, new RegExp(a));
  assert.match(r.stderr, /verify: 1 of 2 blobs damaged/);
  const j = await berth(root, ['content', 'verify', a, '--format', 'json']);
  assert.equal(j.code, 0);
  assert.deepEqual(JSON.parse(j.stdout), [{ digest: a, ok: true }]);
});

test('cli error paths: one line and an exit code per kind', async (t) => {
  const root = await tempRoot(t);
  const missing = sha256('missing');
  fails(await berth(root, ['-n', 'nope', 'content', 'ls']), 3, /^berth: namespace "nope": not found$/);
  fails(await berth(root, ['-n', 'bad/ns', 'content', 'ls']), 2, /invalid namespace "bad\/ns"/);
  fails(await berth(root, ['content', 'get', 'sha256:abc']), 2, /^berth: invalid digest "sha256:abc"/);
  fails(await berth(root, ['content', 'info', 'md5:abc']), 2, /unsupported algorithm "md5"/);
  fails(await berth(root, ['content', 'get', missing]), 3, new RegExp(`content "${missing}": not found`));
  fails(await berth(root, ['content', 'rm', missing]), 3, /not found/);
  fails(await berth(root, ['content', 'label', missing, 'a=b']), 3, /not found/);
  fails(await berth(root, ['content', 'add', join(root, 'no-such-file')]), 3, /no such file/);
  fails(await berth(root, ['content', 'add', root]), 2, /not a regular file/);
  fails(await berth(root, ['content', 'add', '--expected-digest', 'sha256:x', '-']), 2, /invalid digest/);
  assert.equal((await berth(root, ['bogus'])).code, 2);
  assert.equal((await berth(root, ['content', 'ls', '--format', 'yaml'])).code, 2);
  assert.equal((await berth(root, ['content', 'get'])).code, 2);
  const debug = await berth(root, ['--debug', 'content', 'get', missing]);
  assert.equal(debug.code, 3);
  assert.match(debug.stderr, /NotFoundError: content "sha256:[a-f0-9]{64}": not found\n\s+at /);
});

test('cli --help of every command exits 0 and shows an example', async (t) => {
  const root = await tempRoot(t);
  // Walk the command tree from the help texts themselves, so that no command is left out.
  const seen: string[] = [];
  const visit = async (path: string[]) => {
    const r = await berth(root, [...path, '--help']);
    assert.equal(r.code, 0, path.join(' '));
    assert.match(r.stdout, /Usage: berth/, path.join(' '));
    assert.match(r.stdout, /Example:\n {2}\$ berth /, `${path.join(' ')} has no example`);
    seen.push(path.join(' '));
    const commands = r.stdout.split('\nCommands:\n')[1]?.split('\n\n')[0] ?? '';
    for (const line of commands.split('\n')) {
      const name = /^ {2}([a-z][a-z-]*)/.exec(line)?.[1];
      if (name && name !== 'help') await visit([...path, name]);
    }
  };
  await visit([]);
  for (const c of [
    'pull',
    'push',
    'login',
    'logout',
    'images',
    'image ls',
    'image inspect',
    'image history',
    'history',
    'build',
    'builder prune',
    'tag',
    'rmi',
    'manifest inspect',
    'content add',
    'namespace ls',
    'info',
    'version',
    'run',
    'create',
    'start',
    'ps',
    'logs',
    'stop',
    'kill',
    'wait',
    'rm',
    'exec',
    'inspect',
    'top',
    'rename',
    'commit',
    'container ls',
    'container run',
  ]) {
    assert.ok(seen.includes(c), `${c} was not reached (${seen.join(', ')})`);
  }
});
