// Load on `berth daemon`: concurrent docker CLIs and listings lose nothing; a daemon killed mid-load
// and started again tells the truth about every container.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { daemonFixture, dockerCli, dockerClis, startBerthDaemon } from '../testutil/daemon.js';
import { hostTraces } from '../testutil/network.js';

const fx = daemonFixture('daemon-load');

const docker = (args: string[]) => dockerCli(dockerClis['docker 28'], fx.daemon.host, args, { timeout: 120_000 });

interface Listed {
  Id: string;
  State: string;
}

function list(): Promise<{ status: number; items: Listed[] }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: fx.daemon.sock, path: '/v1.43/containers/json?all=1' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, items: res.statusCode === 200 ? (JSON.parse(body) as Listed[]) : [] }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** docker inspect's State.Status and State.Pid of each container. */
async function states(ids: string[]): Promise<Map<string, { status: string; pid: number }>> {
  const r = await docker(['inspect', '--format', '{{.Id}} {{.State.Status}} {{.State.Pid}}', ...ids]);
  assert.equal(r.code, 0, r.stderr);
  return new Map(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([id, status, pid]) => [id as string, { status: status as string, pid: Number(pid) }]),
  );
}

test('load: 50 concurrent docker run -d beside 200 listings; then SIGKILL mid-load and a restart', async () => {
  assert.equal((await docker(['pull', '-q', fx.image])).code, 0);
  const runs = Array.from({ length: 50 }, () => docker(['run', '-d', fx.image, 'sleep', '300']));
  const lists = Array.from({ length: 200 }, async (_, i) => {
    await sleep(i * 20);
    return list();
  });
  const ran = await Promise.all(runs);
  for (const r of ran) assert.equal(r.code, 0, r.stderr);
  const ids = ran.map((r) => r.stdout.trim());
  for (const l of await Promise.all(lists)) assert.equal(l.status, 200);
  const listed = (await list()).items;
  assert.equal(listed.length, 50);
  for (const id of ids) assert.equal(listed.find((c) => c.Id === id)?.State, 'running', `${id} is listed running`);

  // Kill the daemon while twenty more runs are in flight.
  const more = Array.from({ length: 20 }, () => docker(['run', '-d', fx.image, 'sleep', '300']));
  await sleep(1500);
  await fx.daemon.stop('SIGKILL');
  const outcome = await Promise.all(more);
  fx.daemon = await startBerthDaemon(fx.root, join(fx.work, 'run'));
  const after = (await list()).items;
  // Every container a client was told about is there, and running.
  for (const id of [...ids, ...outcome.filter((r) => r.code === 0).map((r) => r.stdout.trim())]) {
    assert.equal(after.find((c) => c.Id === id)?.State, 'running', `${id} survived the daemon`);
  }
  // What the listing says matches the processes: running ones have a live init, the rest none.
  const seen = await states(after.map((c) => c.Id));
  for (const [id, s] of seen) {
    if (s.status === 'running') assert.ok(existsSync(`/proc/${s.pid}`), `${id}: running with a live pid`);
    else assert.ok(['created', 'exited'].includes(s.status), `${id}: ${s.status}`);
  }
  const all = after.map((c) => c.Id);
  const removed = await docker(['rm', '-f', ...all]);
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal((await list()).items.length, 0);
  // Nothing of their networking is left, whatever the kill interrupted.
  for (const id of all) assert.deepEqual(hostTraces(id), [], id);
});
