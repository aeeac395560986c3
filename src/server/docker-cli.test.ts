// The docker CLIs, unmodified, against `berth daemon`: 28 (/usr/local/bin/docker) and Debian's
// 20.10. Images come from the reference registry; skopeo reads what they push.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { selfSignedCert, signedCert } from '../testutil/certs.js';
import { berth, cleanupRoots, ok, type Result } from '../testutil/cli.js';
import { daemonFixture, dockerCli, dockerClis, startBerthDaemon } from '../testutil/daemon.js';
import { skopeoRaw } from '../testutil/peers.js';
import { freePort, startRegistry } from '../testutil/registry.js';

const fx = daemonFixture('daemon');

const passes = (r: Result, what: string) => {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
};

for (const [client, bin] of Object.entries(dockerClis)) {
  test(`${client} drives berth daemon`, async (t) => {
    assert.ok(existsSync(bin), `${bin} is missing: this machine kind has the docker CLI 28 there, and setup installs Debian's docker.io`);
    const tag = client.replace(/\W/g, '');
    const docker = (args: string[], input?: string) => dockerCli(bin, fx.daemon.host, args, input === undefined ? {} : { input });

    await t.test('pull, images and inspect: the ID is the config digest skopeo reads', async () => {
      const out = passes(await docker(['pull', fx.image]), 'pull');
      assert.match(out, /Status: (Downloaded newer image|Image is up to date) for /);
      assert.match(passes(await docker(['images']), 'images'), new RegExp(`${fx.registry.host}/busybox\\s+latest`));
      const id = passes(await docker(['image', 'inspect', '--format', '{{.Id}}', fx.image]), 'inspect').trim();
      const config = await skopeoRaw(`docker://${fx.image}`, 'config');
      assert.equal(id, `sha256:${createHash('sha256').update(config).digest('hex')}`);
    });

    await t.test('run: output, exit code, stdin', async () => {
      assert.equal(passes(await docker(['run', '--rm', fx.image, 'echo', 'hi']), 'run'), 'hi\n');
      const three = await docker(['run', '--rm', fx.image, 'sh', '-c', 'echo err >&2; exit 3']);
      assert.equal(three.code, 3);
      assert.equal(three.stderr, 'err\n');
      assert.equal(passes(await docker(['run', '-i', '--rm', fx.image, 'cat'], 'input-data\n'), 'run -i'), 'input-data\n');
    });

    await t.test('run -d, ps, logs, exec, stop, rm', async () => {
      const name = `web-${tag}`;
      const id = passes(await docker(['run', '-d', '--name', name, fx.image, 'sh', '-c', 'echo started; exec sleep 300']), 'run -d').trim();
      assert.match(id, /^[0-9a-f]{64}$/);
      assert.match(passes(await docker(['ps']), 'ps'), new RegExp(`${id.slice(0, 12)}.*Up .*${name}`));
      let logs = '';
      for (let i = 0; i < 50 && logs !== 'started\n'; i++) {
        logs = passes(await docker(['logs', name]), 'logs');
        if (logs !== 'started\n') await sleep(100);
      }
      assert.equal(logs, 'started\n');
      const ex = await docker(['exec', name, 'sh', '-c', 'echo in-exec; exit 4']);
      assert.equal(ex.code, 4, ex.stderr);
      assert.equal(ex.stdout, 'in-exec\n');
      assert.equal(passes(await docker(['exec', '-i', name, 'cat'], 'to-exec\n'), 'exec -i'), 'to-exec\n');
      // The berth CLI on the same root sees the container the daemon started.
      assert.match(ok(await berth(fx.root, ['ps']), 'berth ps').stdout, new RegExp(name));
      assert.equal(passes(await docker(['stop', '-t', '1', name]), 'stop').trim(), name);
      assert.match(passes(await docker(['ps', '-a', '--filter', `name=${name}`]), 'ps -a'), /Exited \(137\)/);
      assert.equal(passes(await docker(['rm', name]), 'rm').trim(), name);
      const missing = await docker(['rm', name]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, new RegExp(`No such container: ${name}`));
    });

    await t.test('stats: memory and pids from the cgroup; update changes the limit', async () => {
      const name = `st-${tag}`;
      passes(await docker(['run', '-d', '--name', name, fx.image, 'sh', '-c', 'sleep 300 & sleep 300 & wait']), 'run -d');
      const out = passes(await docker(['stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}} {{.PIDs}}', name]), 'stats');
      const m = new RegExp(`^${name} ([\\d.]+)([KMG]i?B) / \\S+ (\\d+)$`).exec(out.trim());
      assert.ok(m, out);
      assert.ok(Number(m[1]) > 0, out);
      assert.equal(m[3], '3', 'sh and its two sleeps');
      // update: the new limit is the cgroup's at once, and recorded.
      passes(await docker(['update', '--memory', '64m', '--restart', 'on-failure:3', name]), 'update');
      const limited = passes(await docker(['stats', '--no-stream', '--format', '{{.MemUsage}}', name]), 'stats');
      assert.match(limited.trim(), / \/ 64MiB$/);
      assert.equal(
        passes(await docker(['inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}', name]), 'inspect').trim(),
        '67108864 on-failure',
      );
      passes(await docker(['rm', '-f', name]), 'rm -f');
    });

    await t.test('pause freezes a container and unpause thaws it', async () => {
      const name = `pz-${tag}`;
      passes(await docker(['run', '-d', '--name', name, fx.image, 'sh', '-c', 'while true; do echo tick; sleep 0.05; done']), 'run -d');
      await sleep(300);
      passes(await docker(['pause', name]), 'pause');
      assert.match(passes(await docker(['ps', '--filter', `name=${name}`]), 'ps'), /Up .* \(Paused\)/);
      const ticks = async () => passes(await docker(['logs', name]), 'logs').split('\n').length;
      const frozen = await ticks();
      await sleep(500);
      assert.equal(await ticks(), frozen, 'no output while paused');
      assert.equal((await docker(['exec', name, 'true'])).code, 1);
      passes(await docker(['unpause', name]), 'unpause');
      await sleep(500);
      assert.ok((await ticks()) > frozen, 'output again after unpause');
      passes(await docker(['rm', '-f', name]), 'rm -f');
    });

    await t.test('cp into and out of a container, running and stopped', async () => {
      const name = `cp-${tag}`;
      passes(await docker(['run', '-d', '--name', name, fx.image, 'sleep', '300']), 'run -d');
      const local = join(fx.work, `cp-${tag}`);
      await mkdir(join(local, 'dir', 'sub'), { recursive: true });
      await writeFile(join(local, 'note.txt'), 'from the host\n');
      await writeFile(join(local, 'dir', 'sub', 'deep.txt'), 'deep\n');
      passes(await docker(['cp', join(local, 'note.txt'), `${name}:/tmp/`]), 'cp in');
      passes(await docker(['cp', join(local, 'dir'), `${name}:/tmp/dir`]), 'cp dir in');
      assert.equal(
        passes(await docker(['exec', name, 'cat', '/tmp/note.txt', '/tmp/dir/sub/deep.txt']), 'exec cat'),
        'from the host\ndeep\n',
      );
      passes(await docker(['exec', name, 'sh', '-c', 'echo made inside > /tmp/inside.txt']), 'exec');
      passes(await docker(['exec', name, 'sh', '-c', 'rm /etc/group && echo x >> /etc/passwd']), 'exec');
      const diff = passes(await docker(['diff', name]), 'diff')
        .trim()
        .split('\n');
      for (const line of [
        'C /etc',
        'C /etc/passwd',
        'D /etc/group',
        'C /tmp',
        'A /tmp/inside.txt',
        'A /tmp/note.txt',
        'A /tmp/dir/sub/deep.txt',
      ]) {
        assert.ok(diff.includes(line), `${line} in ${JSON.stringify(diff)}`);
      }
      passes(await docker(['stop', '-t', '0', name]), 'stop');
      passes(await docker(['cp', `${name}:/tmp/inside.txt`, join(local, 'out.txt')]), 'cp out of a stopped one');
      assert.equal(await readFile(join(local, 'out.txt'), 'utf8'), 'made inside\n');
      passes(await docker(['cp', `${name}:/tmp/dir`, join(local, 'dir-back')]), 'cp dir out');
      assert.equal(await readFile(join(local, 'dir-back', 'sub', 'deep.txt'), 'utf8'), 'deep\n');
      const missing = await docker(['cp', `${name}:/no/such/file`, local]);
      assert.equal(missing.code, 1);
      // 28 prints the daemon's message; 20.10 its own for the 404.
      assert.match(missing.stderr, /Could not find the file \/no\/such\/file in container|No such container:path: .*:\/no\/such\/file/);
      passes(await docker(['rm', name]), 'rm');
    });

    await t.test('a container the berth CLI started shows in docker ps', async () => {
      const name = `cli-${tag}`;
      ok(await berth(fx.root, ['run', '-d', '--name', name, fx.image, 'sleep', '300']), 'berth run -d');
      assert.match(passes(await docker(['ps']), 'ps'), new RegExp(name));
      passes(await docker(['rm', '-f', name]), 'rm -f');
      assert.doesNotMatch(ok(await berth(fx.root, ['ps', '-a']), 'berth ps').stdout, new RegExp(name));
    });

    await t.test('tag and push: skopeo reads the pushed manifest', async () => {
      const target = `${fx.registry.host}/pushed-${tag}:v1`;
      passes(await docker(['tag', fx.image, target]), 'tag');
      const out = passes(await docker(['push', target]), 'push');
      const digest = /v1: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(out)?.[1];
      assert.ok(digest, out);
      const manifest = await skopeoRaw(`docker://${target}`, 'manifest');
      assert.equal(`sha256:${createHash('sha256').update(manifest).digest('hex')}`, digest);
    });

    await t.test('save, rmi and load', async () => {
      const name = `${fx.registry.host}/saved-${tag}:v1`;
      passes(await docker(['tag', fx.image, name]), 'tag');
      const id = passes(await docker(['image', 'inspect', '--format', '{{.Id}}', name]), 'inspect').trim();
      const file = join(fx.work, `saved-${tag}.tar`);
      passes(await docker(['save', '-o', file, name]), 'save');
      assert.match(passes(await docker(['rmi', name]), 'rmi'), new RegExp(`Untagged: ${name}`));
      assert.equal((await docker(['image', 'inspect', name])).code, 1);
      assert.match(passes(await docker(['load', '-i', file]), 'load'), new RegExp(`Loaded image: ${name}`));
      assert.equal(passes(await docker(['image', 'inspect', '--format', '{{.Id}}', name]), 'inspect').trim(), id);
    });

    await t.test('system df and info', async () => {
      assert.match(passes(await docker(['system', 'df']), 'df'), /^Images\s+\d+\s+\d+\s+\S+/m);
      assert.match(passes(await docker(['info', '--format', '{{.Driver}} {{.OSType}}']), 'info').trim(), /^(overlayfs|native) linux$/);
    });

    await t.test('events: a run --rm is created, started, dies and is destroyed', async () => {
      const since = Math.floor(Date.now() / 1000) - 1;
      const name = `ev-${tag}`;
      passes(await docker(['run', '--rm', '--name', name, fx.image, 'true']), 'run');
      const until = Math.floor(Date.now() / 1000) + 1;
      const out = passes(
        await docker([
          'events',
          '--since',
          String(since),
          '--until',
          String(until),
          '--filter',
          `container=${name}`,
          '--format',
          '{{.Action}}',
        ]),
        'events',
      );
      assert.deepEqual(
        out
          .trim()
          .split('\n')
          .filter((a) => !a.startsWith('attach')),
        ['create', 'start', 'die', 'destroy'],
      );
    });

    await t.test('restart policy on-failure:2 runs it three times', async () => {
      const name = `rs-${tag}`;
      passes(await docker(['run', '-d', '--name', name, '--restart', 'on-failure:2', fx.image, 'sh', '-c', 'exit 1']), 'run');
      let state = '';
      for (let i = 0; i < 100; i++) {
        state = passes(await docker(['inspect', '--format', '{{.RestartCount}} {{.State.Status}}', name]), 'inspect').trim();
        if (state === '2 exited') break;
        await sleep(100);
      }
      await sleep(500); // no third restart
      assert.equal(
        passes(await docker(['inspect', '--format', '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}', name]), 'inspect').trim(),
        '2 exited 1',
      );
      passes(await docker(['rm', name]), 'rm');
    });

    await t.test('run pulls an image the daemon lacks (create answers 404)', async () => {
      const other = `${fx.registry.host}/busybox:latest`;
      passes(await docker(['rmi', other]), 'rmi');
      const r = await docker(['run', '--rm', other, 'echo', 'pulled']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /Unable to find image .* locally/);
      assert.equal(r.stdout.split('\n').at(-2), 'pulled');
    });
  });
}

test('berth daemon: containers outlive it, and one daemon holds a root', async () => {
  const docker = (args: string[]) => dockerCli(dockerClis['docker 28'], fx.daemon.host, args);
  const id = passes(
    await docker(['run', '-d', '--name', 'survivor', fx.image, 'sh', '-c', 'echo before; exec sleep 300']),
    'run -d',
  ).trim();
  const second = await startBerthDaemon(fx.root, join(fx.work, 'run2')).then(
    (d) => d,
    (err: Error) => err,
  );
  assert.ok(second instanceof Error, 'a second daemon on the same root must refuse');
  assert.match(second.message, /another berth daemon is running on root/);
  assert.equal(await fx.daemon.stop('SIGTERM'), 0);
  fx.daemon = await startBerthDaemon(fx.root, join(fx.work, 'run'));
  assert.match(passes(await docker(['ps']), 'ps'), new RegExp(`${id.slice(0, 12)}.*Up .*survivor`));
  assert.equal(passes(await docker(['logs', 'survivor']), 'logs'), 'before\n');
  assert.equal(passes(await docker(['exec', 'survivor', 'echo', 'after']), 'exec'), 'after\n');
  const waited = docker(['wait', 'survivor']);
  await sleep(200);
  passes(await docker(['kill', 'survivor']), 'kill');
  assert.equal(passes(await waited, 'wait').trim(), '137');
  passes(await docker(['rm', 'survivor']), 'rm');
});

test('berth daemon refuses plain tcp on a non-loopback address', async () => {
  const r = await berth(fx.root, ['daemon', '-H', 'tcp://0.0.0.0:2375', '-H', `unix://${join(fx.work, 'never.sock')}`]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /refusing plain tcp on "tcp:\/\/0.0.0.0:2375"/);
});

test('berth daemon over tcp with TLS: the docker CLI with a client certificate gets in, one without does not', async () => {
  const dir = join(fx.work, 'tls');
  await mkdir(dir, { recursive: true });
  const ca = { key: join(dir, 'ca.key'), cert: join(dir, 'ca.pem') };
  await selfSignedCert(ca.key, ca.cert, 'berth-test-ca');
  const server = await signedCert(dir, ca, 'server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  const client = await signedCert(dir, ca, 'client', 'extendedKeyUsage=clientAuth');
  const port = await freePort();
  const tlsd = await startBerthDaemon(join(fx.work, 'tls-root'), join(dir, 'run'), [
    '-H',
    `tcp://127.0.0.1:${port}`,
    '--tlsverify',
    '--tlscacert',
    ca.cert,
    '--tlscert',
    server.cert,
    '--tlskey',
    server.key,
  ]);
  try {
    const host = `tcp://127.0.0.1:${port}`;
    const withCert = await dockerCli(dockerClis['docker 28'], host, [
      '--tlsverify',
      '--tlscacert',
      ca.cert,
      '--tlscert',
      client.cert,
      '--tlskey',
      client.key,
      'version',
      '--format',
      '{{.Server.Version}}',
    ]);
    assert.equal(withCert.code, 0, withCert.stderr);
    assert.match(withCert.stdout.trim(), /^\d+\.\d+\.\d+/);
    const withoutCert = await dockerCli(dockerClis['docker 28'], host, ['--tlsverify', '--tlscacert', ca.cert, 'version']);
    assert.notEqual(withoutCert.code, 0);
    assert.match(withoutCert.stderr, /certificate|tls|handshake/i);
  } finally {
    await tlsd.stop();
    await cleanupRoots([join(fx.work, 'tls-root')]);
  }
});

test('berth daemon: docker login goes through it, and push and pull carry the credentials', async () => {
  const secured = await startRegistry({ auth: { kind: 'htpasswd', user: 'alice', password: 's3cret' } });
  const config = join(fx.work, 'docker-config');
  const docker = (args: string[], input?: string) =>
    dockerCli(dockerClis['docker 28'], fx.daemon.host, args, { config, ...(input ? { input } : {}) });
  try {
    const wrong = await docker(['login', '-u', 'alice', '--password-stdin', secured.host], 'wrong\n');
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /Error response from daemon: .*(401|unauthorized|denied)/i);
    const login = await docker(['login', '-u', 'alice', '--password-stdin', secured.host], 's3cret\n');
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /Login Succeeded/);
    const target = `${secured.host}/private:v1`;
    passes(await docker(['tag', fx.image, target]), 'tag');
    assert.match(passes(await docker(['push', target]), 'push'), /v1: digest: sha256:/);
    passes(await docker(['rmi', target]), 'rmi');
    passes(await docker(['pull', target]), 'pull with credentials');
    passes(await docker(['logout', secured.host]), 'logout');
    passes(await docker(['rmi', target]), 'rmi');
    const anonymous = await docker(['pull', target]);
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, /401|unauthorized|authentication required|denied/i);
  } finally {
    await secured.stop();
  }
});

test('berth daemon: its socket is 0660 and its pid file names it', async () => {
  const st = statSync(fx.daemon.sock);
  assert.equal(st.mode & 0o777, 0o660);
  assert.equal(readFileSync(join(fx.work, 'run', 'berth.pid'), 'utf8').trim(), String(fx.daemon.pid));
});
