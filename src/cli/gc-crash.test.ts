import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pushSharedImages } from '../testutil/busybox.js';
import { berth, ok, type Result, TestRoots } from '../testutil/cli.js';
import { startRegistry, type TestRegistry } from '../testutil/registry.js';

// Garbage collection against work in other processes, and processes killed with SIGKILL in the
// middle of pull, unpack, commit and gc: afterwards fsck finds no damage and the work completes.

let registry: TestRegistry;
let work: string;
let A: string;
let B: string;
const roots = new TestRoots();

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-gc-crash-'));
  registry = await startRegistry();
  const refs = await pushSharedImages(work, registry.host, {
    'crash/a': { 'a.txt': 'image a\n', 'data/a.bin': Buffer.alloc(2_000_000, 1) },
    'crash/b': { 'b.txt': 'image b\n', 'data/b.bin': Buffer.alloc(3_000_000, 2) },
  });
  A = refs['crash/a'] as string;
  B = refs['crash/b'] as string;
});
after(async () => {
  await roots.cleanup();
  await registry.stop();
  await rm(work, { recursive: true, force: true });
});

const newRoot = () => roots.make(work);

let killed = 0;

/** Starts `berth args` and kills it with SIGKILL after `ms` (or lets it finish first). */
async function killAfter(root: string, args: string[], ms: number): Promise<Result> {
  const r = await berth(root, args, { killAfter: ms });
  if (r.code === null) killed++;
  return r;
}

/** fsck finds no error: no corrupt blob, no dangling reference (orphans are allowed). */
async function assertNoDamage(root: string, when: string): Promise<void> {
  const r = await berth(root, ['fsck', '--format', 'json']);
  const findings = JSON.parse(r.stdout || '[]') as { severity: string; kind: string; message: string }[];
  assert.deepEqual(
    findings.filter((f) => f.severity === 'error'),
    [],
    `${when}: fsck errors`,
  );
  assert.equal(r.code, 0, `${when}: ${r.stderr}`);
}

async function assertWhole(root: string, ref: string, file: string, text: string): Promise<void> {
  ok(await berth(root, ['image', 'verify', ref]), `verify ${ref}`);
  assert.equal(ok(await berth(root, ['run', '--rm', ref, 'cat', file]), `run ${ref}`).stdout, text);
}

const delays = [150, 250, 400, 700];

/** Kill points spread over a measured uninterrupted run of `args`, so a fast machine still sees
 * kills in the middle of the work rather than only after it finished. */
async function delaysFor(args: string[], prepare: (root: string) => Promise<void>): Promise<number[]> {
  const root = await newRoot();
  await prepare(root);
  const start = performance.now();
  ok(await berth(root, args), args.join(' '));
  const ms = performance.now() - start;
  return [0.35, 0.5, 0.65, 0.8].map((f) => Math.round(ms * f));
}

describe('gc under concurrency and crashes', () => {
  test('rmi + gc in one process while another pulls an image sharing layers, repeated', async () => {
    const root = await newRoot();
    ok(await berth(root, ['pull', '-q', A]), 'pull A');
    for (let i = 0; i < 6; i++) {
      // The pull needs the bottom layer that only A holds when it starts; rmi A collects it.
      const [, pulled] = await Promise.all([
        (async () => {
          await sleep(i * 60);
          ok(await berth(root, ['rmi', A]), 'rmi A');
          ok(await berth(root, ['gc']), 'gc');
        })(),
        berth(root, ['pull', '-q', B]),
      ]);
      ok(pulled, `pull B, round ${i}`);
      await assertWhole(root, B, '/b.txt', 'image b\n');
      // nothing unreachable stays
      const dry = JSON.parse(ok(await berth(root, ['gc', '--dry-run', '--format', 'json']), 'dry run').stdout) as {
        blobs: unknown[];
        snapshots: unknown[];
      };
      assert.deepEqual([dry.blobs, dry.snapshots], [[], []], `round ${i}: garbage left`);
      ok(await berth(root, ['pull', '-q', A]), 'pull A');
      ok(await berth(root, ['rmi', B]), 'rmi B');
    }
    ok(await berth(root, ['rmi', A]), 'rmi A');
    assert.deepEqual(await readdir(join(root, 'content', 'blobs', 'sha256')), []);
    assert.deepEqual(
      (await readdir(join(root, 'snapshots', 'overlayfs'))).filter((n) => /^\d+$/.test(n)),
      [],
    );
    await assertNoDamage(root, 'end');
  });

  test('SIGKILL during pull, then fsck and pull again', async () => {
    killed = 0;
    for (const ms of delays) {
      const root = await newRoot();
      await killAfter(root, ['pull', '-q', B], ms);
      await assertNoDamage(root, `pull killed after ${ms} ms`);
      ok(await berth(root, ['pull', '-q', B]), 'pull again');
      await assertWhole(root, B, '/b.txt', 'image b\n');
      await assertNoDamage(root, 'after');
    }
    assert.ok(killed >= 2, `${killed} pulls killed`);
  });

  test('SIGKILL during unpack, then fsck and unpack again', async () => {
    killed = 0;
    const pullNoUnpack = async (root: string) => {
      ok(await berth(root, ['pull', '-q', '--no-unpack', A]), 'pull --no-unpack');
    };
    for (const ms of await delaysFor(['image', 'unpack', A], pullNoUnpack)) {
      const root = await newRoot();
      await pullNoUnpack(root);
      await killAfter(root, ['image', 'unpack', A], ms);
      await assertNoDamage(root, `unpack killed after ${ms} ms`);
      ok(await berth(root, ['image', 'unpack', A]), 'unpack again');
      await assertWhole(root, A, '/a.txt', 'image a\n');
    }
    assert.ok(killed >= 2, `${killed} unpacks killed`);
  });

  test('SIGKILL during commit, then fsck and commit again', async () => {
    const root = await newRoot();
    ok(await berth(root, ['pull', '-q', A]), 'pull');
    ok(
      await berth(root, [
        'run',
        '-d',
        '--name',
        'src',
        A,
        'sh',
        '-c',
        'head -c 4000000 /dev/urandom > /big.dat; echo ready > /ready; sleep 1000',
      ]),
      'run',
    );
    for (let i = 0; i < 50 && (await berth(root, ['exec', 'src', 'cat', '/ready'])).code !== 0; i++) await sleep(100);
    killed = 0;
    for (const [i, ms] of delays.entries()) {
      await killAfter(root, ['commit', 'src', `committed:${i}`], ms);
      await assertNoDamage(root, `commit killed after ${ms} ms`);
      ok(await berth(root, ['commit', 'src', `committed:${i}`]), 'commit again');
      assert.equal(
        ok(await berth(root, ['run', '--rm', `committed:${i}`, 'sh', '-c', 'wc -c < /big.dat']), 'run').stdout.trim(),
        '4000000',
      );
    }
    assert.ok(killed >= 2, `${killed} commits killed`);
    ok(await berth(root, ['rm', '-f', 'src']), 'rm');
  });

  test('SIGKILL during gc, then fsck and gc again', async () => {
    killed = 0;
    const prepare = async (root: string) => {
      ok(await berth(root, ['system', 'config', 'gcAfterRemove', 'false']), 'config');
      ok(await berth(root, ['pull', '-q', A]), 'pull A');
      ok(await berth(root, ['pull', '-q', B]), 'pull B');
      ok(await berth(root, ['rmi', B]), 'rmi B');
    };
    // A collection is quick next to the process's start-up, so a kill point may land after it
    // finished; a collection that finished moves the later kill points earlier.
    const pending = await delaysFor(['gc'], prepare);
    for (let attempt = 0; attempt < 10 && killed < 4 && pending.length > 0; attempt++) {
      const ms = pending.shift() as number;
      const root = await newRoot();
      await prepare(root);
      const r = await killAfter(root, ['gc'], ms);
      if (r.code !== null) pending.push(Math.round(ms * 0.7));
      await assertNoDamage(root, `gc killed after ${ms} ms`);
      ok(await berth(root, ['gc']), 'gc again');
      await assertWhole(root, A, '/a.txt', 'image a\n');
      const fsck = ok(await berth(root, ['fsck']), 'fsck').stdout;
      assert.match(fsck, /^0 errors, 0 orphans\n$/, 'gc left nothing behind');
    }
    assert.ok(killed >= 2, `${killed} collections killed`);
  });
});
