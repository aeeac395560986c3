// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text, where ${VAR} is substitution
// berth build on its own: reproducibility across roots, the cache, the Dockerfile features the
// peers' versions here lack (here-documents, RUN --mount, --chmod, ADD --checksum), errors, and
// confinement of what comes from a context or an archive.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pushBusyboxImage } from '../testutil/busybox.js';
import { berth, berthMain, fails, ok, TestRoots } from '../testutil/cli.js';
import { sh } from '../testutil/peers.js';
import { startRegistry, type TestRegistry } from '../testutil/registry.js';

let work: string;
let registry: TestRegistry;
let base: string;
let root: string;
const roots = new TestRoots();

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-build-'));
  registry = await startRegistry();
  base = await pushBusyboxImage(work, registry.host, 'busybox');
  root = await roots.make(work);
  ok(await berth(root, ['pull', '-q', base]), 'pull'); // so that no test's output starts with a pull
});

after(async () => {
  await roots.cleanup();
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

type Files = Record<string, string | Buffer | { symlink: string }>;

async function context(name: string, dockerfile: string, files: Files = {}): Promise<string> {
  const dir = join(work, 'ctx', name);
  await rm(dir, { recursive: true, force: true });
  const all: Files = { ...files, Dockerfile: dockerfile };
  for (const [path, content] of Object.entries(all)) {
    const full = join(dir, path);
    await mkdir(join(full, '..'), { recursive: true });
    if (typeof content === 'object' && 'symlink' in content) await symlink(content.symlink, full);
    else await writeFile(full, content);
  }
  return dir;
}

/** `berth build -q` on `r`: the image ID. */
async function buildId(r: string, ctx: string, extra: string[] = []): Promise<string> {
  const res = ok(await berth(r, ['build', '-q', '--network', 'none', '--build-arg', `BASE=${base}`, ...extra, ctx]), 'build');
  return res.stdout.trim();
}

const run = async (image: string, ...cmd: string[]) =>
  ok(await berth(root, ['run', '--rm', '--network', 'none', image, ...cmd]), 'run').stdout;

describe('berth build', () => {
  test('reproducible: two roots give the same image ID and manifest; a changed file a new one; touching one does not', async () => {
    const ctx = await context(
      'repro',
      'ARG BASE\nFROM $BASE\nCOPY . /app\nRUN echo built > /app/out && chmod 600 /app/out\nCMD ["cat", "/app/out"]\n',
      {
        'a.txt': 'one\n',
        'dir/b.txt': 'two\n',
      },
    );
    const other = await roots.make(work);
    const id1 = await buildId(root, ctx, ['-t', 'repro:1']);
    const id2 = await buildId(other, ctx, ['-t', 'repro:1']);
    assert.match(id1, /^sha256:[0-9a-f]{64}$/);
    assert.equal(id2, id1);
    const digest = async (r: string) => JSON.parse(ok(await berth(r, ['image', 'inspect', 'repro:1']), 'inspect').stdout)[0].RepoDigests[0];
    assert.equal(await digest(other), await digest(root));
    const inspect = JSON.parse(ok(await berth(root, ['image', 'inspect', 'repro:1']), 'inspect').stdout)[0];
    assert.equal(inspect.Created, '1970-01-01T00:00:00Z');
    await sh('touch', ['-d', '2001-01-01', join(ctx, 'a.txt')]);
    assert.equal(await buildId(root, ctx, ['--no-cache']), id1, 'times of context files do not reach the image');
    await writeFile(join(ctx, 'a.txt'), 'changed\n');
    assert.notEqual(await buildId(root, ctx), id1);
    const epoch = await buildId(root, ctx, ['--build-arg', 'SOURCE_DATE_EPOCH=1700000000', '-t', 'repro:epoch']);
    assert.notEqual(epoch, id1);
    assert.equal(
      JSON.parse(ok(await berth(root, ['image', 'inspect', 'repro:epoch']), 'inspect').stdout)[0].Created,
      '2023-11-14T22:13:20Z',
    );
    const real1 = await buildId(root, ctx, ['--no-reproducible', '--no-cache']);
    await new Promise((r) => setTimeout(r, 1100));
    assert.notEqual(await buildId(root, ctx, ['--no-reproducible', '--no-cache']), real1, 'the opt-out keeps real times');
    assert.equal(await run('repro:1'), 'built\n');
  });

  test('cache: a rebuild uses it for every step, survives processes, shows in system df; --no-cache and builder prune drop it', async () => {
    const ctx = await context('cache', 'ARG BASE\nFROM $BASE\nCOPY a.txt /a\nRUN echo $RANDOM-$$ > /stamp\nRUN cat /a /stamp > /both\n', {
      'a.txt': 'a\n',
    });
    const args = ['build', '--network', 'none', '--build-arg', `BASE=${base}`, '-t', 'cached', ctx];
    ok(await berth(root, args), 'first build');
    const stamp = await run('cached', 'cat', '/stamp');
    const t0 = performance.now();
    const second = ok(await berth(root, args), 'second build');
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(second.stdout.match(/Using cache/g)?.length, 3, second.stdout);
    assert.equal(await run('cached', 'cat', '/stamp'), stamp);
    assert.ok(seconds < 3, `a cached rebuild took ${seconds}s`);
    const df = JSON.parse(ok(await berth(root, ['--format', 'json', 'system', 'df']), 'df').stdout);
    assert.ok(df.namespaces[0].buildCache.total >= 3, JSON.stringify(df.namespaces[0].buildCache));
    const fresh = ok(await berth(root, [...args.slice(0, 1), '--no-cache', ...args.slice(1)]), 'no-cache build');
    assert.doesNotMatch(fresh.stdout, /Using cache/);
    assert.notEqual(await run('cached', 'cat', '/stamp'), stamp);
    const pruned = JSON.parse(ok(await berth(root, ['--format', 'json', 'builder', 'prune', '-f']), 'prune').stdout);
    assert.ok(pruned.removed.length >= 3);
    const after = ok(await berth(root, args), 'build after prune');
    assert.doesNotMatch(after.stdout, /Using cache/);
    ok(await berth(root, ['system', 'prune', '-f']), 'system prune');
    const dfAfter = JSON.parse(ok(await berth(root, ['--format', 'json', 'system', 'df']), 'df').stdout);
    assert.equal(dfAfter.namespaces[0].buildCache.total, 0, 'system prune takes the build cache too');
  });

  test('here-documents, --chmod, ONBUILD, and RUN --mount: cache, secret (never in a layer), bind from a stage, tmpfs', async () => {
    const secret = join(work, 'secret.txt');
    await writeFile(secret, 'TOPSECRET');
    const parent = await context('onbuild', 'ARG BASE\nFROM $BASE\nONBUILD RUN echo triggered > /onbuild\n');
    ok(await berth(root, ['build', '-q', '--network', 'none', '--build-arg', `BASE=${base}`, '-t', 'with-trigger', parent]), 'parent');
    const dockerfile = [
      'FROM with-trigger AS src',
      'RUN mkdir /srcdir && echo from-stage > /srcdir/f',
      'FROM with-trigger',
      'ARG WHO=heredoc',
      'ENV GREETING=hello',
      'RUN <<EOF',
      'echo "$WHO ran" > /h1',
      'echo second line >> /h1',
      'EOF',
      'RUN cat <<A > /h2',
      'cat input $GREETING',
      'A',
      'COPY <<EOT /h3',
      '$GREETING ${WHO} \\$literal',
      'EOT',
      "COPY <<'EOT' /h4",
      '$GREETING unexpanded',
      'EOT',
      'COPY --chmod=0751 a.txt /a',
      'RUN --mount=type=cache,target=/cache echo x >> /cache/log && wc -l < /cache/log > /cache-lines',
      'RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null && test ! -e /tok-copied && wc -c < /run/secrets/tok > /secret-size',
      'RUN --mount=type=bind,from=src,source=/srcdir,target=/mnt cp /mnt/f /bound',
      'RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch > /tmpfs-list',
      'COPY --from=with-trigger /etc/group /group-from-image',
    ].join('\n');
    const ctx = await context('features', `${dockerfile}\n`, { 'a.txt': 'a\n' });
    const args = ['build', '--network', 'none', '--secret', `id=tok,src=${secret}`, '-t', 'features', ctx];
    ok(await berth(root, args), 'build');
    assert.equal(
      await run('features', 'cat', '/onbuild', '/h1', '/h2', '/h3', '/h4', '/bound', '/secret-size', '/tmpfs-list'),
      'triggered\nheredoc ran\nsecond line\ncat input hello\nhello heredoc $literal\n$GREETING unexpanded\nfrom-stage\n9\nx\n',
    );
    assert.equal((await run('features', 'stat', '-c', '%a %u:%g', '/a')).trim(), '751 0:0');
    assert.match(await run('features', 'cat', '/group-from-image'), /^app:x:1000:$/m, 'COPY --from an image');
    // the mount points the steps needed are not in the image
    assert.equal(await run('features', 'sh', '-c', 'for p in /run /mnt /scratch /cache; do test -e $p && echo "$p left"; done; true'), '');
    // the cache mount outlives the build: a second build without the layer cache appends to it
    ok(await berth(root, [...args.slice(0, 1), '--no-cache', ...args.slice(1)]), 'rebuild');
    assert.equal((await run('features', 'cat', '/cache-lines')).trim(), '2');
    // the secret is in no layer and no history
    const saved = join(work, 'features.tar');
    ok(await berth(root, ['save', '-o', saved, 'features']), 'save');
    const listing = await sh('sh', [
      '-c',
      `mkdir -p ${work}/feat && tar -C ${work}/feat -xf ${saved} && for f in $(find ${work}/feat/blobs -type f); do (gzip -dc "$f" 2>/dev/null || cat "$f"); done | grep -c TOPSECRET || true`,
    ]);
    assert.equal(listing.trim(), '0');
    const history = ok(await berth(root, ['--format', 'json', 'image', 'history', 'features']), 'history').stdout;
    assert.doesNotMatch(history, /TOPSECRET/);
    assert.match(history, /RUN \|1 WHO=heredoc/);
  });

  test('RUN --mount=type=bind from the context: cached by what it shows; rw writes to a copy, never the context', async () => {
    const dockerfile =
      'ARG BASE\nFROM $BASE\nRUN --mount=type=bind,source=conf,target=/conf cat /conf/c.txt > /seen\n' +
      'RUN --mount=type=bind,source=conf,target=/w,rw echo appended >> /w/c.txt && cat /w/c.txt > /rw-seen\n';
    const ctx = await context('bind', dockerfile, { 'conf/c.txt': 'first\n' });
    const build = async () =>
      ok(await berth(root, ['build', '--network', 'none', '--build-arg', `BASE=${base}`, '-t', 'bound', ctx]), 'build');
    await build();
    assert.equal(await run('bound', 'cat', '/seen', '/rw-seen'), 'first\nfirst\nappended\n');
    assert.equal(await readFile(join(ctx, 'conf/c.txt'), 'utf8'), 'first\n', 'the context is untouched');
    assert.equal((await build()).stdout.match(/Using cache/g)?.length, 2);
    await writeFile(join(ctx, 'conf/c.txt'), 'second\n');
    assert.doesNotMatch((await build()).stdout, /Using cache/, 'a changed file behind the mount runs the step again');
    assert.equal(await run('bound', 'cat', '/seen'), 'second\n');
  });

  test('--target builds only the stages it needs; independent stages run at once', async () => {
    const ctx = await context(
      'stages',
      [
        'ARG BASE',
        'FROM $BASE AS broken',
        'RUN exit 1',
        'FROM $BASE AS one',
        'RUN sleep 1 && echo one > /one',
        'FROM $BASE AS two',
        'RUN sleep 1 && echo two > /two',
        'FROM $BASE AS final',
        'COPY --from=one /one /',
        'COPY --from=two /two /',
        'FROM broken AS last',
      ].join('\n'),
    );
    const t0 = performance.now();
    ok(
      await berth(root, [
        'build',
        '-q',
        '--no-cache',
        '--network',
        'none',
        '--build-arg',
        `BASE=${base}`,
        '--target',
        'final',
        '-t',
        'staged',
        ctx,
      ]),
      'build',
    );
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(seconds < 2.8, `two 1 s stages took ${seconds}s together`);
    assert.equal(await run('staged', 'cat', '/one', '/two'), 'one\ntwo\n');
    fails(
      await berth(root, ['build', '-q', '--network', 'none', '--build-arg', `BASE=${base}`, '--target', 'nosuch', ctx]),
      2,
      /target stage "nosuch" could not be found/,
    );
  });

  test('on a terminal: a live view of the steps, each with its time, finished at the end', async () => {
    const ctx = await context('tty', 'ARG BASE\nFROM $BASE\nRUN echo line-one && sleep 0.3 && echo line-two\nENV A=1\n');
    const out = execFileSync(
      'script',
      [
        '-qec',
        `stty cols 120; ${process.execPath} ${berthMain} build --no-cache --network none --build-arg BASE=${base} -t tty ${ctx}`,
        '/dev/null',
      ],
      { env: { ...process.env, BERTH_ROOT: root, BERTH_NAMESPACE: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    ).toString();
    assert.match(out, /\[\+\] Building [\d.]+s \(4\/4\) FINISHED/);
    assert.match(out, / => \[0 3\/4\] RUN echo line-one && sleep 0\.3 && echo line-two +[\d.]+s/);
    assert.match(out, /\x1b\[\d+A/, 'the view is redrawn in place');
    assert.doesNotMatch(out, /Step 1\/4/, 'not the plain lines');
    assert.match(out, /Successfully tagged tty:latest/);
  });

  test('a context archive on stdin (bzip2, xz), and a lone Dockerfile on stdin', async () => {
    const ctx = await context('stdin', 'ARG BASE\nFROM $BASE\nCOPY note.txt /\nCMD ["cat", "/note.txt"]\n', { 'note.txt': 'from stdin\n' });
    for (const [flag, tag] of [
      ['-j', 'stdin:bz2'],
      ['-J', 'stdin:xz'],
    ] as const) {
      const archive = await sh('sh', ['-c', `tar ${flag} -C ${ctx} -cf - . | base64 -w0`]);
      const r = await berth(root, ['build', '-q', '--network', 'none', '--build-arg', `BASE=${base}`, '-t', tag, '-'], {
        input: Buffer.from(archive, 'base64'),
      });
      ok(r, `build ${tag}`);
      assert.equal(await run(tag), 'from stdin\n');
    }
    const lone = ok(
      await berth(root, ['build', '-q', '--network', 'none', '--build-arg', `BASE=${base}`, '-t', 'stdin:df', '-'], {
        input: 'ARG BASE\nFROM $BASE\nRUN echo no context > /x\n',
      }),
      'build a lone Dockerfile',
    );
    assert.match(lone.stdout, /^sha256:/);
    assert.equal(await run('stdin:df', 'cat', '/x'), 'no context\n');
  });

  test('errors name the Dockerfile line; a failing RUN shows its output and exits with its kind', async () => {
    const ctx = await context('fail', 'ARG BASE\nFROM $BASE\nRUN echo visible-output\nRUN echo about to fail; exit 3\n');
    const r = await berth(root, ['build', '--network', 'none', '--build-arg', `BASE=${base}`, ctx]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stdout, /about to fail/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(
      r.stderr,
      /Dockerfile:4: RUN echo about to fail; exit 3: process "\/bin\/sh -c echo about to fail; exit 3" did not complete successfully: exit code: 3/,
    );
    const quiet = await berth(root, ['build', '-q', '--network', 'none', '--build-arg', `BASE=${base}`, ctx]);
    assert.match(quiet.stderr, /about to fail\n[\s\S]*Dockerfile:4:/, 'quiet shows the failing output before the error');
    // a failing stage stops the one still running beside it, and its error is the one reported
    const parallel = await context(
      'fail-parallel',
      'ARG BASE\nFROM $BASE AS slow\nRUN sleep 30\nFROM $BASE AS bad\nRUN exit 4\nFROM $BASE\nCOPY --from=slow /etc/passwd /a\nCOPY --from=bad /etc/passwd /b\n',
    );
    const t0 = performance.now();
    const pr = await berth(root, ['build', '--no-cache', '--network', 'none', '--build-arg', `BASE=${base}`, parallel]);
    assert.ok(performance.now() - t0 < 15_000, 'the sleeping stage was stopped');
    assert.equal(pr.code, 5);
    assert.match(pr.stderr, /Dockerfile:5: RUN exit 4: .*exit code: 4/);
    assert.match(pr.stdout, /^Step 1\/8 : ARG BASE\nStep 2\/8 : FROM \$BASE AS slow\n[\s\S]*Step 5\/8 : RUN exit 4/);
    fails(
      await berth(root, ['build', await context('unknown', 'FROM scratch\nFROBNICATE x\n')]),
      2,
      /Dockerfile:2: FROBNICATE x: unknown instruction: FROBNICATE/,
    );
    fails(
      await berth(root, ['build', await context('nosrc', 'FROM scratch\nCOPY missing.txt /\n')]),
      3,
      /Dockerfile:2: .*"missing.txt": not found/,
    );
    fails(
      await berth(root, [
        'build',
        await context('ignored', 'FROM scratch\nCOPY secret.key /\n', { 'secret.key': 'k', '.dockerignore': '*.key\n' }),
      ]),
      3,
      /excluded by \.dockerignore/,
    );
    fails(
      await berth(root, ['build', await context('syntax', 'FROM scratch\nRUN <<EOF\nnever closed\n')]),
      2,
      /Dockerfile:2: unterminated heredoc/,
    );
  });

  test("a context's symlinks and an ADD archive never reach outside their roots", async () => {
    const outside = join(work, 'outside');
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'host-secret'), 'host\n');
    const ctx = await context('confined', 'FROM scratch\nCOPY escape /escape\n', { escape: { symlink: `${outside}/host-secret` } });
    fails(await berth(root, ['build', ctx]), 3, /"escape": not found/);
    const up = await context('confined-up', 'FROM scratch\nCOPY up/host-secret /x\n', {
      up: { symlink: '../../../../../../../../outside' },
    });
    fails(await berth(root, ['build', up]), 3, /not found/);
    // an archive whose entries climb out and write through a link to /: everything lands under /dst
    const evil = join(work, 'evil');
    await mkdir(join(evil, 'src'), { recursive: true });
    await symlink('/', join(evil, 'src', 'rootlink'));
    await sh('tar', ['-C', join(evil, 'src'), '-cf', join(evil, 'links.tar'), 'rootlink']);
    await writeFile(join(evil, 'payload'), 'pwned\n');
    await sh('tar', ['-C', evil, '--transform', `s|payload|rootlink${outside}/pwned|`, '-rf', join(evil, 'links.tar'), 'payload']);
    const addCtx = await context('evil-add', 'ARG BASE\nFROM $BASE\nADD links.tar /dst/\n', {
      'links.tar': await readFile(join(evil, 'links.tar')),
    });
    ok(await berth(root, ['build', '--network', 'none', '--build-arg', `BASE=${base}`, '-t', 'evil', addCtx]), 'build');
    assert.equal(await readFile(join(outside, 'pwned'), 'utf8').catch(() => 'absent'), 'absent');
    assert.equal(await run('evil', 'cat', `/dst${outside}/pwned`), 'pwned\n');
    const climb = join(work, 'climb.tar');
    await sh('tar', ['-C', evil, '--transform', 's|payload|../../../../../../tmp/berth-climbed|', '-cf', climb, '-P', 'payload']);
    const climbCtx = await context('climb-add', 'ARG BASE\nFROM $BASE\nADD climb.tar /dst/\n', { 'climb.tar': await readFile(climb) });
    fails(
      await berth(root, ['build', '--network', 'none', '--build-arg', `BASE=${base}`, climbCtx]),
      2,
      /Dockerfile:3: .*tar entry "\.\.\/.*": /,
    );
    assert.equal(await readFile('/tmp/berth-climbed', 'utf8').catch(() => 'absent'), 'absent');
  });

  test('ADD: a zstd archive is extracted; a URL is fetched and checked against --checksum', async () => {
    const server: Server = createServer((req, res) => {
      if (req.url === '/files/tool.sh') res.end('#!/bin/sh\necho tool\n');
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const sum = `sha256:${createHash('sha256').update('#!/bin/sh\necho tool\n').digest('hex')}`;
      const src = join(work, 'zsrc');
      await mkdir(join(src, 'd'), { recursive: true });
      await writeFile(join(src, 'd', 'z.txt'), 'zstd content\n');
      await sh('tar', ['--zstd', '-C', src, '-cf', join(work, 'z.tar.zst'), 'd']);
      const ctx = await context(
        'add',
        `ARG BASE\nFROM $BASE\nADD z.tar.zst /z/\nADD --checksum=${sum} http://127.0.0.1:${port}/files/tool.sh /usr/local/bin/\n`,
        {
          'z.tar.zst': await readFile(join(work, 'z.tar.zst')),
        },
      );
      ok(await berth(root, ['build', '-q', '--network', 'none', '--build-arg', `BASE=${base}`, '-t', 'added', ctx]), 'build');
      assert.equal(await run('added', 'cat', '/z/d/z.txt', '/usr/local/bin/tool.sh'), 'zstd content\n#!/bin/sh\necho tool\n');
      assert.equal((await run('added', 'stat', '-c', '%a', '/usr/local/bin/tool.sh')).trim(), '600');
      const bad = await context(
        'add-bad',
        `ARG BASE\nFROM $BASE\nADD --checksum=sha256:${'0'.repeat(64)} http://127.0.0.1:${port}/files/tool.sh /t\n`,
      );
      fails(await berth(root, ['build', '--network', 'none', '--build-arg', `BASE=${base}`, bad]), 2, /digest mismatch/);
      const missing = await context('add-404', `ARG BASE\nFROM $BASE\nADD http://127.0.0.1:${port}/nope /t\n`);
      fails(await berth(root, ['build', '--network', 'none', '--build-arg', `BASE=${base}`, missing]), 5, /404/);
    } finally {
      server.close();
    }
  });
});
