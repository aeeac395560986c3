// docker-py (Debian's python3-docker, under Debian's python3), unmodified, against `berth daemon`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { daemonFixture } from '../testutil/daemon.js';
import { skopeoRaw } from '../testutil/peers.js';

const fx = daemonFixture('docker-py');

// One script, each step printing a JSON line the test checks.
const script = `
import json, sys, time, docker
image, pushed = sys.argv[1], sys.argv[2]
out = lambda **kw: print(json.dumps(kw), flush=True)
c = docker.from_env()
out(ping=c.ping())
img = c.images.pull(image)
out(pulled=img.id, listed=[i.id for i in c.images.list()])
out(run=c.containers.run(image, ["sh", "-c", "echo hi"], remove=True).decode())
try:
    c.containers.run(image, ["sh", "-c", "exit 3"], remove=True)
    out(exit=0)
except docker.errors.ContainerError as e:
    out(exit=e.exit_status)
ct = c.containers.run(image, ["sh", "-c", "echo started; exec sleep 300"], detach=True, name="py")
time.sleep(0.5)
out(listed=[x.name for x in c.containers.list()], logs=ct.logs().decode())
r = ct.exec_run(["sh", "-c", "echo in-exec; exit 4"])
out(exec_code=r.exit_code, exec_out=r.output.decode())
ct.stop(timeout=1)
ct.reload()
out(status=ct.status)
ct.remove()
img.tag(pushed)
for line in c.images.push(pushed, stream=True, decode=True):
    if "aux" in line: out(aux=line["aux"])
    if "error" in line: out(error=line["error"])
data = b"".join(c.images.get(pushed).save(named=pushed))
c.images.remove(pushed)
loaded = c.images.load(data)
out(loaded=[t for i in loaded for t in i.tags])
out(df_images=len(c.df()["Images"]))
since = time.time() - 1
c.containers.run(image, ["true"], remove=True, name="py-ev")
events = c.events(since=since, until=time.time() + 1, decode=True, filters={"container": "py-ev"})
out(events=[e["Action"] for e in events])
ct = c.containers.run(image, ["sleep", "300"], detach=True, name="py-2")
st = ct.stats(stream=False)
ct.pause(); ct.reload(); paused = ct.status
ct.unpause(); ct.reload()
out(pids=st["pids_stats"]["current"], memory=st["memory_stats"]["usage"] > 0, paused=paused, after=ct.status)
ct.remove(force=True)
rs = c.containers.run(image, ["sh", "-c", "exit 1"], detach=True, restart_policy={"Name": "on-failure", "MaximumRetryCount": 1})
for _ in range(100):
    rs.reload()
    if rs.attrs["RestartCount"] == 1 and rs.status == "exited": break
    time.sleep(0.1)
out(restarts=rs.attrs["RestartCount"], final=rs.status)
rs.remove()
`;

function python(): Promise<{ [k: string]: unknown }[]> {
  return new Promise((resolve, reject) => {
    execFile(
      '/usr/bin/python3',
      ['-c', script, fx.image, `${fx.registry.host}/py:v1`],
      { env: { ...process.env, DOCKER_HOST: fx.daemon.host }, timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`docker-py: ${err.message}\n${stdout}\n${stderr}`));
        else
          resolve(
            stdout
              .trim()
              .split('\n')
              .map((l) => JSON.parse(l) as { [k: string]: unknown }),
          );
      },
    );
  });
}

test('docker-py drives berth daemon', async () => {
  const [ping, pulled, run, exit, listed, exec, status, aux, loaded, df, events, paused, restarted] = await python();
  assert.deepEqual(ping, { ping: true });
  const config = await skopeoRaw(`docker://${fx.image}`, 'config');
  const id = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  assert.equal(pulled?.pulled, id);
  assert.deepEqual(pulled?.listed, [id]);
  assert.deepEqual(run, { run: 'hi\n' });
  assert.deepEqual(exit, { exit: 3 });
  assert.deepEqual(listed, { listed: ['py'], logs: 'started\n' });
  assert.deepEqual(exec, { exec_code: 4, exec_out: 'in-exec\n' });
  assert.deepEqual(status, { status: 'exited' });
  const manifest = await skopeoRaw(`docker://${fx.registry.host}/py:v1`, 'manifest');
  assert.deepEqual(aux, {
    aux: { Tag: 'v1', Digest: `sha256:${createHash('sha256').update(manifest).digest('hex')}`, Size: manifest.length },
  });
  // The loaded image is the one busybox:latest names too: it has both tags, as with docker.
  assert.deepEqual(((loaded?.loaded ?? []) as string[]).sort(), [`${fx.registry.host}/busybox:latest`, `${fx.registry.host}/py:v1`]);
  assert.deepEqual(df, { df_images: 1 });
  assert.deepEqual(
    ((events?.events ?? []) as string[]).filter((a) => !a.startsWith('attach')),
    ['create', 'start', 'die', 'destroy'],
  );
  assert.deepEqual(paused, { pids: 1, memory: true, paused: 'paused', after: 'running' });
  assert.deepEqual(restarted, { restarts: 1, final: 'exited' });
});
