import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Berth } from '../services/index.js';
import { berth, ok, type Result, runProgram } from '../testutil/cli.js';
import { daemonFixture, dockerCli, dockerClis, startBerthDaemon } from '../testutil/daemon.js';
import { hostTraces } from '../testutil/network.js';

// docker-compose 1.29 (Debian's, unmodified) through berth daemon: a web server with a published
// port and a named volume, and a client that reaches it by service name; then the daemon killed,
// and a simulated reboot, with what the host holds for containers checked after each.

const fx = daemonFixture('compose');

function compose(project: string, dir: string, args: string[]): Promise<Result> {
  return runProgram('docker-compose', ['-p', project, ...args], {
    cwd: dir,
    env: { DOCKER_HOST: fx.daemon.host, COMPOSE_INTERACTIVE_NO_CLI: '1' },
    killAfter: 120_000,
  });
}

const docker = (...args: string[]) => dockerCli(dockerClis['docker 28'], fx.daemon.host, args);

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function get(url: string): Promise<string> {
  const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return r.text();
}

describe('docker-compose and the daemon over networks and volumes', () => {
  test('compose up -d, ps, logs, exec, down -v: the app works, and nothing of it is left', async () => {
    const dir = join(fx.work, 'app');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'docker-compose.yml'),
      [
        'version: "3.8"',
        'services:',
        '  web:',
        `    image: ${fx.image}`,
        `    command: sh -c 'mkdir -p /www; [ -f /data/index.html ] || echo "stored in a volume" > /data/index.html; cp /data/index.html /www/; httpd -f -p 80 -h /www'`,
        '    ports:',
        '      - "18291:80"',
        '    volumes:',
        '      - pages:/data',
        '  client:',
        `    image: ${fx.image}`,
        `    command: sh -c 'while true; do wget -q -O - http://web/ || echo miss; sleep 0.5; done'`,
        '    depends_on:',
        '      - web',
        'volumes:',
        '  pages:',
        '',
      ].join('\n'),
    );
    ok(await compose('shop', dir, ['up', '-d']), 'up -d');
    const ps = ok(await compose('shop', dir, ['ps']), 'ps').stdout;
    assert.match(ps, /shop_web_1 .* Up .*0\.0\.0\.0:18291->80\/tcp/);
    assert.match(ps, /shop_client_1 .* Up/);
    assert.equal(await waitFor('the published port', () => get('http://127.0.0.1:18291/')), 'stored in a volume\n');
    await waitFor('the client to reach web by name', async () =>
      (await compose('shop', dir, ['logs', 'client'])).stdout.includes('stored in a volume') ? true : undefined,
    );
    assert.equal(
      ok(await compose('shop', dir, ['exec', '-T', 'client', 'wget', '-q', '-O', '-', 'http://web/']), 'exec').stdout,
      'stored in a volume\n',
    );
    const ids = ok(await docker('ps', '-q', '--no-trunc', '--filter', 'label=com.docker.compose.project=shop'), 'ids')
      .stdout.split('\n')
      .filter(Boolean);
    assert.equal(ids.length, 2);
    const net = JSON.parse(ok(await docker('network', 'inspect', 'shop_default'), 'network inspect').stdout)[0];
    ok(await compose('shop', dir, ['down', '-v']), 'down -v');
    assert.equal(ok(await docker('ps', '-aq', '--filter', 'label=com.docker.compose.project=shop'), 'ps').stdout, '');
    assert.doesNotMatch(ok(await docker('network', 'ls'), 'networks').stdout, /shop_default/);
    assert.doesNotMatch(ok(await docker('volume', 'ls'), 'volumes').stdout, /shop_pages/);
    for (const id of ids) assert.deepEqual(hostTraces(id), [], id);
    const bridge = readdirSync('/sys/class/net').filter((n) => n.startsWith('berth-') && net.Id.startsWith(n.slice('berth-'.length)));
    assert.deepEqual(bridge, []);
    assert.doesNotMatch(execFileSync('iptables', ['-w', '-S']).toString(), new RegExp(`berth-${net.Id.slice(0, 9)}`));
    await assert.rejects(get('http://127.0.0.1:18291/'));
  });

  test('the daemon killed: containers keep serving; restarted, it removes them cleanly', async () => {
    ok(await docker('network', 'create', 'kept'), 'network');
    ok(
      await docker(
        'run',
        '-d',
        '--name',
        'survivor',
        '--network',
        'kept',
        '-p',
        '18292:80',
        fx.image,
        'sh',
        '-c',
        'mkdir /www; echo up > /www/index.html; httpd -f -p 80 -h /www',
      ),
      'run',
    );
    assert.equal(await waitFor('the port', () => get('http://127.0.0.1:18292/')), 'up\n');
    const id = ok(await docker('inspect', '-f', '{{.Id}}', 'survivor'), 'id').stdout.trim();
    assert.equal(await fx.daemon.stop('SIGKILL'), null);
    assert.equal(await get('http://127.0.0.1:18292/'), 'up\n');
    fx.daemon = await startBerthDaemon(fx.root, join(fx.work, 'run'));
    assert.match(ok(await docker('ps'), 'ps').stdout, /survivor/);
    ok(await docker('rm', '-f', 'survivor'), 'rm');
    assert.deepEqual(hostTraces(id), []);
    ok(await docker('network', 'rm', 'kept'), 'network rm');
  });

  test('a simulated reboot: the network comes back and a restart-policy container rejoins it', async () => {
    ok(await docker('network', 'create', 'boot'), 'network');
    const serve = ['sh', '-c', 'mkdir -p /www; echo again > /www/index.html; httpd -f -p 80 -h /www'];
    ok(
      await docker(
        'run',
        '-d',
        '--name',
        'phoenix',
        '--restart',
        'always',
        '--network',
        'boot',
        '--network-alias',
        'bird',
        '-p',
        '18293:80',
        fx.image,
        ...serve,
      ),
      'run',
    );
    ok(await docker('run', '-d', '--name', 'peer', '--restart', 'always', '--network', 'boot', fx.image, 'sleep', '3600'), 'peer');
    const net = JSON.parse(ok(await docker('network', 'inspect', 'boot'), 'inspect').stdout)[0];
    const bridge = `berth-${(net.Id as string).slice(0, 9)}`;
    const ids = [] as string[];
    for (const n of ['phoenix', 'peer']) ids.push(ok(await docker('inspect', '-f', '{{.Id}}', n), 'id').stdout.trim());
    await fx.daemon.stop('SIGKILL');
    // What a reboot takes: every process, the namespaces, the bridge, the iptables rules, /run.
    const b = await Berth.open({ root: fx.root });
    const runDir = b.runDir;
    b.close();
    for (const id of ids) {
      const pid = Number(readFileSync(join(fx.root, 'containers', 'default', id, 'conmon.pid'), 'utf8'));
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
      try {
        execFileSync('runc', ['--root', join(runDir, 'runc'), 'kill', id, 'KILL']);
      } catch {}
      execFileSync('ip', ['netns', 'delete', `berth-${id}`]);
    }
    execFileSync('ip', ['link', 'delete', bridge]);
    for (const [table, chain] of [
      ['filter', 'BERTH-FORWARD'],
      ['nat', 'BERTH-POSTROUTING'],
    ] as const) {
      for (const rule of execFileSync('iptables', ['-w', '-t', table, '-S', chain]).toString().split('\n')) {
        if (rule.includes(bridge)) execFileSync('sh', ['-c', `iptables -w -t ${table} ${rule.replace(/^-A/, '-D')}`]);
      }
    }
    execFileSync('rm', ['-rf', runDir]);
    const db = new Database(join(fx.root, 'metadata.db'));
    db.prepare("UPDATE containers SET state = json_set(state, '$.bootId', 'another-boot')").run();
    db.close();
    fx.daemon = await startBerthDaemon(fx.root, join(fx.work, 'run'));
    assert.equal(await waitFor('the published port after the reboot', () => get('http://127.0.0.1:18293/')), 'again\n');
    await waitFor('peer to run again', async () =>
      (await docker('inspect', '-f', '{{.State.Running}}', 'peer')).stdout.trim() === 'true' ? true : undefined,
    );
    assert.equal(ok(await docker('exec', 'peer', 'wget', '-q', '-O', '-', 'http://bird/'), 'by alias').stdout, 'again\n');
    assert.match(ok(await docker('inspect', '-f', '{{.RestartCount}} {{.State.Running}}', 'phoenix'), 'inspect').stdout, /^[1-9]\d* true/);
    // the addresses held before the reboot were released, so the first restart got one
    assert.doesNotMatch(fx.daemon.log(), /duplicate allocation|restart [0-9a-f]+:/);
    ok(await docker('rm', '-f', 'phoenix', 'peer'), 'rm');
    for (const id of ids) assert.deepEqual(hostTraces(id), []);
    ok(await docker('network', 'rm', 'boot'), 'network rm');
    assert.equal(ok(await berth(fx.root, ['fsck']), 'fsck').code, 0);
  });
});
