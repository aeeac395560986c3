import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { berth, ok, TestRoots } from '../testutil/cli.js';
import { type Dockerd, startDockerd } from '../testutil/dockerd.js';

// berth's archives against a real Docker engine (Debian's docker.io), on a private root and socket.

const run = promisify(execFile);
let work: string;
let engine: Dockerd | undefined;
let unavailable: string | undefined;
const roots = new TestRoots();

const docker = (...args: string[]) => (engine as Dockerd).docker(...args);

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-docker-'));
  const started = await startDockerd(join(work, 'dockerd'));
  if ('unavailable' in started) unavailable = started.unavailable;
  else engine = started;
});
after(async () => {
  await roots.cleanup();
  await engine?.stop();
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
