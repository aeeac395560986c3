// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text, where ${VAR} is substitution
// POST /build (the classic builder's protocol) driven by real clients: the docker CLI with
// DOCKER_BUILDKIT=0, dockerode's buildImage (a gzip context), docker-compose 1.29's `build:`.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { test } from 'node:test';
import { berth, cleanupRoots, ok, runProgram } from '../testutil/cli.js';
import { daemonFixture, dockerCli, dockerClis } from '../testutil/daemon.js';

interface Dockerode {
  buildImage(file: { context: string; src: string[] }, opts: object): Promise<Readable>;
  listImages(opts?: object): Promise<{ Id: string; RepoTags: string[] }[]>;
  modem: {
    followProgress(s: Readable, done: (err: Error | null, out: { stream?: string; aux?: { ID: string }; error?: string }[]) => void): void;
  };
}
const Docker = createRequire(import.meta.url)('dockerode') as new (opts: { socketPath: string }) => Dockerode;

const fx = daemonFixture('build-api');
const docker = (...args: string[]) => dockerCli(dockerClis['docker 28'], fx.daemon.host, args, { timeout: 120_000 });

async function context(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(fx.work, name);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

const dockerfile = 'ARG BASE\nFROM $BASE\nWORKDIR /app\nCOPY . .\nRUN cat msg.txt > /built.txt\nCMD ["cat", "/built.txt"]\n';

test('docker build (classic protocol): steps, tags, --iidfile, the same image ID as berth build, and a failure by line', async () => {
  const ctx = await context('cli', {
    Dockerfile: dockerfile,
    'msg.txt': 'from the docker CLI\n',
    'skip.me': 'x',
    '.dockerignore': 'skip.me\n',
  });
  const iid = join(fx.work, 'iid');
  const r = await docker(
    'build',
    '--network',
    'none',
    '--build-arg',
    `BASE=${fx.image}`,
    '-t',
    'api:1',
    '-t',
    'api:2',
    '--iidfile',
    iid,
    ctx,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\nStep 1\/6 : ARG BASE\nStep 2\/6 : FROM \$BASE\n(Pulling .*\n)? ---> [0-9a-f]{12}\nStep 3\/6 : WORKDIR \/app\n/);
  assert.match(r.stdout, /Successfully built [0-9a-f]{12}\nSuccessfully tagged api:1\nSuccessfully tagged api:2\n/);
  const id = (await readFile(iid, 'utf8')).trim();
  assert.equal((await docker('image', 'inspect', '--format', '{{.Id}}', 'api:2')).stdout.trim(), id);
  assert.equal((await docker('run', '--rm', '--network', 'none', 'api:1')).stdout, 'from the docker CLI\n');
  // the same context through the berth CLI on a root of its own gives the same image
  const other = join(fx.work, 'other-root');
  const mine = ok(await berth(other, ['build', '-q', '--network', 'none', '--build-arg', `BASE=${fx.image}`, ctx]), 'berth build');
  assert.equal(mine.stdout.trim(), id);
  await cleanupRoots([other]);
  // a Dockerfile outside the context (the CLI sends it in the tar under a name of its own)
  const outside = join(fx.work, 'outside.Dockerfile');
  await writeFile(outside, 'ARG BASE\nFROM $BASE\nRUN echo outside > /o\n');
  assert.equal((await docker('build', '-q', '--network', 'none', '--build-arg', `BASE=${fx.image}`, '-f', outside, ctx)).code, 0);
  const bad = await context('bad', { Dockerfile: 'ARG BASE\nFROM $BASE\nRUN echo failing-output; exit 7\n' });
  const f = await docker('build', '--network', 'none', '--build-arg', `BASE=${fx.image}`, bad);
  assert.notEqual(f.code, 0);
  assert.match(f.stdout, /failing-output/);
  assert.match(f.stderr, /Dockerfile:3: RUN echo failing-output; exit 7: .*exit code: 7/);
});

test("dockerode's buildImage: a gzip context, the stream and aux ID", async () => {
  const client = new Docker({ socketPath: fx.daemon.sock });
  const ctx = await context('dockerode', { Dockerfile: `FROM ${fx.image}\nCOPY msg.txt /\n`, 'msg.txt': 'dockerode\n' });
  const stream = await client.buildImage({ context: ctx, src: ['Dockerfile', 'msg.txt'] }, { t: 'dode:1', networkmode: 'none' });
  const out = await new Promise<{ stream?: string; aux?: { ID: string }; error?: string }[]>((resolve, reject) =>
    client.modem.followProgress(stream, (err, o) => (err ? reject(err) : resolve(o))),
  );
  assert.equal(out.find((m) => m.error)?.error, undefined);
  const id = out.find((m) => m.aux)?.aux?.ID;
  assert.match(id ?? '', /^sha256:[0-9a-f]{64}$/);
  const images = await client.listImages();
  assert.equal(images.find((i) => i.RepoTags.includes('dode:1'))?.Id, id);
});

test("docker-compose 1.29's build: the service's image is built and runs", async () => {
  const dir = await context('compose', {
    'docker-compose.yml': [
      'version: "3.8"',
      'services:',
      '  app:',
      '    build:',
      '      context: .',
      '      args:',
      `        BASE: ${fx.image}`,
      '      network: none',
      '    network_mode: none',
    ].join('\n'),
    Dockerfile: dockerfile,
    'msg.txt': 'from compose\n',
  });
  const env = { DOCKER_HOST: fx.daemon.host, COMPOSE_INTERACTIVE_NO_CLI: '1', DOCKER_BUILDKIT: '0', COMPOSE_DOCKER_CLI_BUILD: '0' };
  const b = await runProgram('docker-compose', ['-p', 'bld', 'build'], { cwd: dir, env, killAfter: 120_000 });
  assert.equal(b.code, 0, b.stderr + b.stdout);
  assert.equal((await docker('run', '--rm', '--network', 'none', 'bld_app')).stdout, 'from compose\n');
});
