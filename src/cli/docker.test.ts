import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { berth, ok, TestRoots } from '../testutil/cli.js';

// berth's archives against a real Docker engine (Debian's docker.io): dockerd started on a private
// root, exec root and socket, with no networking of its own, and stopped afterwards.

const run = promisify(execFile);
let work: string;
let dockerd: ChildProcess | undefined;
let sock: string;
let unavailable: string | undefined;
const roots = new TestRoots();

const docker = async (...args: string[]) =>
  (await run('/usr/bin/docker', ['-H', `unix://${sock}`, ...args], { maxBuffer: 64 << 20 })).stdout;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-docker-'));
  sock = join(work, 'docker.sock');
  assert.ok(existsSync('/usr/sbin/dockerd'), 'dockerd is installed by scripts/setup.sh (Debian docker.io)');
  dockerd = spawn(
    '/usr/sbin/dockerd',
    [
      '--data-root',
      join(work, 'data'),
      '--exec-root',
      join(work, 'exec'),
      '--pidfile',
      join(work, 'dockerd.pid'),
      '--host',
      `unix://${sock}`,
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  dockerd.stderr?.on('data', (d: Buffer) => {
    if (log.length < 20_000) log += d;
  });
  for (let i = 0; i < 150; i++) {
    if (dockerd.exitCode !== null) break;
    if (
      await docker('version').then(
        () => true,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 200));
  }
  // dockerd cannot run on every machine (no overlayfs or cgroups inside some sandboxes): say why.
  unavailable = `dockerd did not start: ${log.trim().split('\n').slice(-3).join(' | ')}`;
});
after(async () => {
  await roots.cleanup();
  if (dockerd && dockerd.exitCode === null) {
    dockerd.kill('SIGTERM');
    await new Promise((r) => dockerd?.once('exit', r));
  }
  await rm(work, { recursive: true, force: true });
});

describe('a Docker engine', () => {
  test("berth save → docker load keeps the image ID; docker save → berth load keeps docker's", async (t) => {
    if (unavailable) {
      t.skip(unavailable);
      return;
    }
    const root = await roots.make(work);
    const tarball = join(work, 'rootfs.tar');
    await run('tar', ['-C', '/usr/bin', '-cf', tarball, 'busybox']);
    const id = ok(
      await berth(root, ['import', '-c', 'ENTRYPOINT ["/busybox"]', '-c', 'CMD ["echo", "from berth"]', tarball, 'berth/made:1']),
      'import',
    ).stdout.trim();
    const saved = join(work, 'berth.tar');
    ok(await berth(root, ['save', '-o', saved, 'berth/made:1']), 'save');
    assert.match(await docker('load', '-i', saved), /Loaded image: berth\/made:1/);
    assert.equal((await docker('image', 'inspect', '--format', '{{.Id}}', 'berth/made:1')).trim(), id);
    assert.equal(await docker('run', '--rm', '--network', 'none', 'berth/made:1'), 'from berth\n');

    // An image docker made itself (a container committed), saved by docker, loaded by berth.
    await docker('run', '--name', 'maker', '--network', 'none', 'berth/made:1', 'sh', '-c', 'echo docker > /made-by');
    await docker('commit', '-c', 'CMD ["cat", "/made-by"]', 'maker', 'docker/made:1');
    const dockerId = (await docker('image', 'inspect', '--format', '{{.Id}}', 'docker/made:1')).trim();
    const fromDocker = join(work, 'docker.tar');
    await docker('save', '-o', fromDocker, 'docker/made:1');
    assert.match(ok(await berth(root, ['load', '-i', fromDocker]), 'load').stdout, /^Loaded image: docker\/made:1\n$/);
    const inspected = JSON.parse(ok(await berth(root, ['image', 'inspect', 'docker/made:1']), 'inspect').stdout) as { Id: string }[];
    assert.equal(inspected[0]?.Id, dockerId);
    assert.equal(ok(await berth(root, ['run', '--rm', 'docker/made:1']), 'run').stdout, 'docker\n');
  });
});
