// dockerode 5, unmodified, against `berth daemon`: its own request shapes (unversioned paths,
// true/false booleans, a 200 attach without Upgrade, filters as arrays, options echoed in the query).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { daemonFixture } from '../testutil/daemon.js';
import { skopeoRaw } from '../testutil/peers.js';

// dockerode ships no types: the calls used here, as it documents them.
interface Stream extends Readable {}
interface DContainer {
  id: string;
  start(): Promise<unknown>;
  attach(opts: object): Promise<Stream & { end(data?: string): void }>;
  wait(opts?: object): Promise<{ StatusCode: number }>;
  inspect(): Promise<{ State: { Status: string; ExitCode: number }; RestartCount: number; Name: string }>;
  logs(opts: object): Promise<Buffer>;
  exec(opts: object): Promise<{ start(opts: object): Promise<Stream>; inspect(): Promise<{ ExitCode: number | null; Running: boolean }> }>;
  stop(opts?: object): Promise<unknown>;
  remove(opts?: object): Promise<unknown>;
  pause(): Promise<unknown>;
  unpause(): Promise<unknown>;
  stats(opts: { stream: false }): Promise<{ memory_stats: { usage: number }; pids_stats: { current: number } }>;
}
interface DImage {
  inspect(): Promise<{ Id: string; RepoTags: string[] }>;
  history(): Promise<{ Id: string }[]>;
  tag(opts: object): Promise<unknown>;
  push(opts: object): Promise<Stream>;
  get(): Promise<Stream>;
  remove(): Promise<{ Untagged?: string; Deleted?: string }[]>;
}
interface Dockerode {
  ping(): Promise<Buffer | string>;
  version(): Promise<{ ApiVersion: string }>;
  pull(ref: string): Promise<Stream>;
  listImages(opts?: object): Promise<{ Id: string; RepoTags: string[] }[]>;
  listContainers(opts?: object): Promise<{ Id: string; Names: string[]; State: string }[]>;
  getImage(name: string): DImage;
  getContainer(id: string): DContainer;
  createContainer(opts: object): Promise<DContainer>;
  loadImage(stream: Readable): Promise<Stream>;
  df(): Promise<{ Images: unknown[]; LayersSize: number }>;
  getEvents(opts: object): Promise<Stream>;
  modem: {
    followProgress(s: Stream, done: (err: Error | null, out: { error?: string; status?: string }[]) => void): void;
    demuxStream(s: Stream, out: NodeJS.WritableStream, err: NodeJS.WritableStream): void;
  };
}
const Docker = createRequire(import.meta.url)('dockerode') as new (opts: { socketPath: string }) => Dockerode;

let docker: Dockerode;
const fx = daemonFixture('dockerode', {
  ready: async (f) => {
    docker = new Docker({ socketPath: f.daemon.sock });
  },
});

const progress = (s: Stream) =>
  new Promise<{ error?: string; status?: string }[]>((resolve, reject) =>
    docker.modem.followProgress(s, (err, out) => (err ? reject(err) : resolve(out))),
  );

async function collect(s: Stream): Promise<{ stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { stdout: '', stderr: '' };
  out.on('data', (d: Buffer) => {
    chunks.stdout += d;
  });
  err.on('data', (d: Buffer) => {
    chunks.stderr += d;
  });
  docker.modem.demuxStream(s, out, err);
  await new Promise((resolve) => s.on('end', resolve));
  return chunks;
}

test('dockerode drives berth daemon', async (t) => {
  await t.test('ping and version, unversioned', async () => {
    assert.equal(String(await docker.ping()), 'OK');
    assert.match((await docker.version()).ApiVersion, /^1\.\d+$/);
  });

  await t.test('pull, list with filters, inspect: the ID is the config digest skopeo reads', async () => {
    const msgs = await progress(await docker.pull(fx.image));
    assert.ok(!msgs.some((m) => m.error), JSON.stringify(msgs));
    const list = await docker.listImages({ filters: { reference: [`${fx.registry.host}/busybox`] } });
    assert.equal(list.length, 1);
    const config = await skopeoRaw(`docker://${fx.image}`, 'config');
    const id = `sha256:${createHash('sha256').update(config).digest('hex')}`;
    assert.equal(list[0]?.Id, id);
    assert.equal((await docker.getImage(fx.image).inspect()).Id, id);
    assert.equal((await docker.getImage(fx.image).history())[0]?.Id, id);
  });

  await t.test('create, attach (200, no upgrade), start, wait: output and exit code', async () => {
    const c = await docker.createContainer({ Image: fx.image, Cmd: ['sh', '-c', 'echo out; echo err >&2; exit 5'], Tty: false });
    const stream = await c.attach({ stream: true, stdout: true, stderr: true });
    const output = collect(stream);
    await c.start();
    assert.deepEqual((await c.wait()).StatusCode, 5);
    assert.deepEqual(await output, { stdout: 'out\n', stderr: 'err\n' });
    const logs = await c.logs({ stdout: true, stderr: true });
    assert.equal(logs.length, 2 * 8 + 'out\n'.length + 'err\n'.length, 'logs are multiplexed frames');
    await c.remove();
  });

  await t.test('attach with hijack and stdin', async () => {
    const c = await docker.createContainer({ Image: fx.image, Cmd: ['cat'], OpenStdin: true, StdinOnce: true, Tty: false });
    const stream = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
    const output = collect(stream);
    await c.start();
    stream.end('through-stdin\n');
    assert.equal((await c.wait()).StatusCode, 0);
    assert.equal((await output).stdout, 'through-stdin\n');
    await c.remove();
  });

  await t.test('run detached, list, exec exit code, stop (304 is an error to dockerode), remove', async () => {
    const c = await docker.createContainer({ Image: fx.image, Cmd: ['sleep', '300'], name: 'dode' });
    await c.start();
    const running = await docker.listContainers();
    assert.ok(running.some((x) => x.Id === c.id && x.Names[0] === '/dode' && x.State === 'running'));
    const exec = await c.exec({ Cmd: ['sh', '-c', 'echo e; exit 6'], AttachStdout: true, AttachStderr: true });
    const out = await collect(await exec.start({ hijack: true, stdin: false }));
    assert.equal(out.stdout, 'e\n');
    assert.deepEqual(await exec.inspect().then((x) => [x.ExitCode, x.Running]), [6, false]);
    const stats = await c.stats({ stream: false });
    assert.ok(stats.memory_stats.usage > 0);
    assert.equal(stats.pids_stats.current, 1);
    await c.pause();
    assert.equal((await c.inspect()).State.Status, 'paused');
    await c.unpause();
    assert.equal((await c.inspect()).State.Status, 'running');
    await c.stop({ t: 1 });
    await assert.rejects(c.stop({ t: 1 }), /304/);
    assert.equal((await c.inspect()).State.Status, 'exited');
    await c.remove({ force: true, v: true });
    assert.ok(!(await docker.listContainers({ all: true })).some((x) => x.Id === c.id));
  });

  await t.test('tag, push (skopeo reads it), get and load, remove', async () => {
    const img = docker.getImage(fx.image);
    await img.tag({ repo: `${fx.registry.host}/dode`, tag: 'v1' });
    const msgs = await progress(await docker.getImage(`${fx.registry.host}/dode:v1`).push({ tag: 'v1' }));
    assert.ok(!msgs.some((m) => m.error), JSON.stringify(msgs));
    const manifest = await skopeoRaw(`docker://${fx.registry.host}/dode:v1`, 'manifest');
    const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
    assert.ok(
      msgs.some((m) => m.status === `v1: digest: ${digest} size: ${manifest.length}`),
      JSON.stringify(msgs),
    );
    const tar = await docker.getImage(`${fx.registry.host}/dode:v1`).get();
    const chunks: Buffer[] = [];
    for await (const c of tar) chunks.push(c as Buffer);
    const removed = await docker.getImage(`${fx.registry.host}/dode:v1`).remove();
    assert.deepEqual(removed[0], { Untagged: `${fx.registry.host}/dode:v1` });
    const loaded = await progress(await docker.loadImage(Readable.from([Buffer.concat(chunks)])));
    assert.ok(
      loaded.some((m) => (m as { stream?: string }).stream === `Loaded image: ${fx.registry.host}/dode:v1\n`),
      JSON.stringify(loaded),
    );
  });

  await t.test('events since and until', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const c = await docker.createContainer({ Image: fx.image, Cmd: ['true'], name: 'dode-ev' });
    await c.start();
    await c.wait({ condition: 'not-running' });
    await c.remove();
    const events = await docker.getEvents({ since, until: Math.floor(Date.now() / 1000) + 1, filters: { container: ['dode-ev'] } });
    let text = '';
    for await (const chunk of events) text += chunk;
    const actions = text
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { Action: string }).Action);
    assert.deepEqual(actions, ['create', 'start', 'die', 'destroy']);
  });

  await t.test('df', async () => {
    const df = await docker.df();
    assert.ok(df.Images.length >= 1);
    assert.ok(df.LayersSize > 0);
  });

  await t.test('restart policy always brings a container back until it is stopped', async () => {
    const c = await docker.createContainer({
      Image: fx.image,
      Cmd: ['sh', '-c', 'sleep 0.2'],
      HostConfig: { RestartPolicy: { Name: 'always' } },
    });
    await c.start();
    let count = 0;
    for (let i = 0; i < 100 && count < 2; i++) {
      count = (await c.inspect()).RestartCount;
      await sleep(100);
    }
    assert.ok(count >= 2, `restarted ${count} times`);
    await c.stop({ t: 1 }).catch(() => {});
    await sleep(1000);
    const after = await c.inspect();
    assert.equal(after.State.Status, 'exited');
    await sleep(500);
    assert.equal((await c.inspect()).RestartCount, after.RestartCount, 'a stopped container stays stopped');
    await c.remove({ force: true });
  });
});
