import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pushBusyboxImage } from '../testutil/busybox.js';
import { berth, fails, ok, TestRoots } from '../testutil/cli.js';
import { hostTraces } from '../testutil/network.js';
import { startRegistry, type TestRegistry } from '../testutil/registry.js';

// Networks through the real CNI plugins (bridge, host-local, portmap, loopback) and named volumes,
// with containers under runc: addresses, names that resolve, published ports, isolation, and what
// is left on the host (namespaces, leases, iptables rules) once containers go.

let registry: TestRegistry;
let work: string;
let root: string;
let img: string;
const roots = new TestRoots();

/** The host's own IPv4 address (not loopback, not a berth bridge): published ports answer there too. */
function hostAddress(): string {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (name.startsWith('berth')) continue;
    const a = addrs?.find((x) => x.family === 'IPv4' && !x.internal);
    if (a) return a.address;
  }
  throw new Error('no non-loopback IPv4 address on this host');
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-net-'));
  registry = await startRegistry();
  img = await pushBusyboxImage(work, registry.host, 'netbox', {
    config: ['--config.exposedports', '80/tcp', '--config.volume', '/seed'],
    files: { 'seed/hello.txt': 'from the image\n', 'www/index.html': 'hello from web\n' },
  });
  root = await roots.make(work);
  ok(await berth(root, ['pull', '-q', img]), 'pull');
});
after(async () => {
  await roots.cleanup();
  await registry.stop();
  await rm(work, { recursive: true, force: true });
});

const b = (...args: string[]) => berth(root, args);
interface Inspected {
  Id: string;
  State: { Pid: number };
  Mounts: { Name: string; Destination: string }[];
  NetworkSettings: {
    IPAddress: string;
    Ports: Record<string, { HostPort: string }[] | null>;
    Networks: Record<string, { IPAddress: string; Gateway: string }>;
  };
}
const inspectIn = async (r: string, ref: string) =>
  (JSON.parse(ok(await berth(r, ['inspect', ref]), 'inspect').stdout) as Inspected[])[0] as Inspected;
const inspect = (ref: string) => inspectIn(root, ref);
const httpd = (name: string, ...flags: string[]) => b('run', '-d', '--name', name, ...flags, img, 'httpd', '-f', '-p', '80', '-h', '/www');

async function get(url: string): Promise<string> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return r.text();
}

/** Runs `wget` in a throwaway container on a network; its output, or 'FAILED'. */
async function wgetFrom(network: string, url: string): Promise<string> {
  const r = await b('run', '--rm', '--network', network, img, 'sh', '-c', `timeout 3 wget -q -O - ${url} || echo FAILED`);
  return r.stdout.trim();
}

describe('networks and volumes', () => {
  test('the default bridge: an address from 10.88.0.0/16, a route out, docker /etc files; none and host as asked', async () => {
    const addr = ok(
      await b('run', '--rm', img, 'sh', '-c', 'ip -4 -o addr show eth0; ip route; cat /etc/resolv.conf /etc/hosts'),
      'run',
    ).stdout;
    assert.match(addr, /inet 10\.88\.\d+\.\d+\/16/);
    assert.match(addr, /default via 10\.88\.0\.1/);
    assert.doesNotMatch(addr, /nameserver 127\./);
    assert.match(addr, /127\.0\.0\.1\tlocalhost/);
    const none = ok(await b('run', '--rm', '--network', 'none', img, 'ls', '/sys/class/net'), 'none')
      .stdout.split(/\s+/)
      .filter(Boolean);
    assert.deepEqual(none, ['lo']);
    const host = ok(await b('run', '--rm', '--network', 'host', img, 'ls', '/sys/class/net'), 'host').stdout;
    // veth ends come and go with other containers: the rest must be the host's
    const stable = (names: string[]) => names.filter((n) => n && !n.startsWith('veth')).sort();
    assert.deepEqual(stable(host.split(/\s+/)), stable(readdirSync('/sys/class/net')));
    const files = ok(
      await b(
        'run',
        '--rm',
        '--hostname',
        'box',
        '--add-host',
        'gw.test:10.1.2.3',
        '--dns',
        '10.9.9.9',
        '--dns-search',
        'a.test',
        '--dns-option',
        'ndots:2',
        img,
        'sh',
        '-c',
        'hostname; cat /etc/resolv.conf; grep -E "gw.test|box" /etc/hosts',
      ),
      'flags',
    ).stdout;
    assert.match(files, /^box\nnameserver 10\.9\.9\.9\nsearch a\.test\noptions ndots:2\n10\.1\.2\.3\tgw\.test\n10\.88\.\d+\.\d+\tbox\n$/);
  });

  test('published ports answer on 127.0.0.1 and the host address; -P takes EXPOSE; removal frees the port and every trace', async () => {
    ok(await httpd('web', '-p', '18181:80', '-p', '127.0.0.1::80'), 'run web');
    const id = (await inspect('web')).Id;
    const ports = ok(await b('port', 'web'), 'port').stdout;
    const random = /80\/tcp -> 127\.0\.0\.1:(\d+)/.exec(ports)?.[1];
    assert.match(ports, /80\/tcp -> 0\.0\.0\.0:18181/);
    assert.ok(random && Number(random) >= 32768, ports);
    assert.equal(await get('http://127.0.0.1:18181/'), 'hello from web\n');
    assert.equal(await get(`http://${hostAddress()}:18181/`), 'hello from web\n');
    assert.equal(await get(`http://127.0.0.1:${random}/`), 'hello from web\n');
    assert.match(ok(await b('ps'), 'ps').stdout, /0\.0\.0\.0:18181->80\/tcp, 127\.0\.0\.1:\d+->80\/tcp/);
    assert.deepEqual(
      hostTraces(id).sort(),
      ['lease berth0/' + (await inspect('web')).NetworkSettings.IPAddress, 'nat rules', 'netns'].sort(),
    );
    ok(await httpd('all', '-P'), 'run -P');
    const published = (await inspect('all')).NetworkSettings.Ports['80/tcp'] ?? [];
    assert.equal(await get(`http://127.0.0.1:${published[0]?.HostPort}/`), 'hello from web\n');
    fails(await b('port', 'all', '81'), 3, /no public port '81'/);
    ok(await b('rm', '-f', 'web', 'all'), 'rm');
    assert.deepEqual(hostTraces(id), []);
    await assert.rejects(get('http://127.0.0.1:18181/'));
  });

  test('a user network: names and aliases resolve, for containers started later too, and stop resolving when one goes', async () => {
    ok(await b('network', 'create', 'app'), 'network create');
    ok(await httpd('web1', '--network', 'app', '--network-alias', 'www'), 'web1');
    assert.equal(await wgetFrom('app', 'http://web1/'), 'hello from web');
    assert.equal(await wgetFrom('app', 'http://www/'), 'hello from web');
    ok(await b('run', '-d', '--name', 'watcher', '--network', 'app', img, 'sleep', '300'), 'watcher');
    ok(await httpd('later', '--network', 'app'), 'later');
    assert.equal(ok(await b('exec', 'watcher', 'wget', '-q', '-O', '-', 'http://later/'), 'later by name').stdout, 'hello from web\n');
    assert.match(ok(await b('exec', 'later', 'cat', '/etc/hosts'), 'hosts').stdout, /\tweb1 www\n/);
    ok(await b('rm', '-f', 'later'), 'rm later');
    assert.doesNotMatch(ok(await b('exec', 'watcher', 'cat', '/etc/hosts'), 'hosts').stdout, /later/);
    // networks are the root's: a container of another namespace on it resolves and is resolved
    ok(await berth(root, ['-n', 'other', 'pull', '-q', img]), 'pull in other');
    ok(
      await berth(root, ['-n', 'other', 'run', '-d', '--name', 'remote', '--network', 'app', img, 'httpd', '-f', '-p', '80', '-h', '/www']),
      'remote',
    );
    assert.equal(await wgetFrom('app', 'http://remote/'), 'hello from web');
    assert.equal(
      ok(await berth(root, ['-n', 'other', 'exec', 'remote', 'wget', '-q', '-O', '-', 'http://www/']), 'from other').stdout,
      'hello from web\n',
    );
    ok(await berth(root, ['-n', 'other', 'rm', '-f', 'remote']), 'rm remote');
    // the default bridge resolves no names, as docker's
    ok(await httpd('plain'), 'plain');
    assert.equal(await wgetFrom('bridge', 'http://plain/'), 'FAILED');
    // a fixed address
    const subnet = (JSON.parse(ok(await b('network', 'inspect', 'app'), 'inspect').stdout)[0].IPAM.Config[0].Subnet as string).replace(
      '.0/24',
      '',
    );
    ok(await b('run', '-d', '--name', 'fixed', '--network', 'app', '--ip', `${subnet}.200`, img, 'sleep', '300'), '--ip');
    assert.equal((await inspect('fixed')).NetworkSettings.Networks.app?.IPAddress, `${subnet}.200`);
    const net = JSON.parse(ok(await b('network', 'inspect', 'app'), 'inspect').stdout)[0];
    assert.deepEqual(
      Object.values(net.Containers as Record<string, { Name: string }>)
        .map((c) => c.Name)
        .sort(),
      ['fixed', 'watcher', 'web1'],
    );
    fails(await b('network', 'rm', 'app'), 5, /has active endpoints/);
    ok(await b('rm', '-f', 'web1', 'watcher', 'fixed', 'plain'), 'rm');
    ok(await b('network', 'rm', 'app'), 'network rm');
  });

  test('isolation: user networks cannot reach each other; --internal has no route out; the host loopback is not theirs', async () => {
    ok(await b('network', 'create', 'red'), 'red');
    ok(await b('network', 'create', 'blue'), 'blue');
    ok(await b('network', 'create', '--internal', 'vault'), 'vault');
    ok(await httpd('redweb', '--network', 'red'), 'redweb');
    ok(await httpd('vaultweb', '--network', 'vault'), 'vaultweb');
    const redIp = (await inspect('redweb')).NetworkSettings.Networks.red?.IPAddress;
    assert.equal(await wgetFrom('red', `http://${redIp}/`), 'hello from web');
    assert.equal(await wgetFrom('blue', `http://${redIp}/`), 'FAILED');
    assert.equal(await wgetFrom('vault', 'http://vaultweb/'), 'hello from web');
    // A server on the host: reachable from a routed network at the host's address, not from the
    // internal one; one on the host's loopback is reachable from neither.
    const servers: Server[] = [];
    const listen = (host: string) =>
      new Promise<number>((resolve) => {
        const s = createServer((_q, r) => r.end('host\n'));
        servers.push(s);
        s.listen(0, host, () => resolve((s.address() as { port: number }).port));
      });
    const open = await listen('0.0.0.0');
    const loop = await listen('127.0.0.1');
    try {
      assert.equal(await wgetFrom('red', `http://${hostAddress()}:${open}/`), 'host');
      assert.equal(await wgetFrom('vault', `http://${hostAddress()}:${open}/`), 'FAILED');
      assert.doesNotMatch(ok(await b('run', '--rm', '--network', 'vault', img, 'ip', 'route'), 'route').stdout, /default/);
      assert.equal(await wgetFrom('red', `http://127.0.0.1:${loop}/`), 'FAILED');
      const gw = (await inspect('redweb')).NetworkSettings.Networks.red?.Gateway;
      assert.equal(await wgetFrom('red', `http://${gw}:${loop}/`), 'FAILED');
    } finally {
      for (const s of servers) s.close();
    }
    ok(await b('rm', '-f', 'redweb', 'vaultweb'), 'rm');
    ok(await b('network', 'rm', 'red', 'blue', 'vault'), 'network rm');
  });

  test('connect and disconnect a running container; container: shares a namespace; ls, filters, prune', async () => {
    ok(await b('network', 'create', '--label', 'team=a', 'one'), 'one');
    ok(await b('network', 'create', 'two'), 'two');
    ok(await b('run', '-d', '--name', 'multi', '--network', 'one', img, 'sleep', '300'), 'multi');
    ok(await b('network', 'connect', '--alias', 'm2', 'two', 'multi'), 'connect');
    assert.match(ok(await b('exec', 'multi', 'ls', '/sys/class/net'), 'links').stdout, /eth0\s+eth1/);
    assert.match(ok(await b('run', '--rm', '--network', 'two', img, 'cat', '/etc/hosts'), 'hosts').stdout, /\tmulti m2\n/);
    ok(await b('network', 'disconnect', 'one', 'multi'), 'disconnect');
    assert.doesNotMatch(ok(await b('exec', 'multi', 'ls', '/sys/class/net'), 'links').stdout, /eth0/);
    const ip = (await inspect('multi')).NetworkSettings.Networks.two?.IPAddress as string;
    ok(await b('run', '-d', '--name', 'side', '--network', 'container:multi', img, 'sleep', '300'), 'container:');
    assert.match(
      ok(await b('exec', 'side', 'ip', '-4', '-o', 'addr'), 'side addr').stdout,
      new RegExp(`inet ${ip.replace(/\./g, '\\.')}/`),
    );
    const ls = JSON.parse(ok(await b('--format', 'json', 'network', 'ls', '--filter', 'label=team=a'), 'ls').stdout) as { Name: string }[];
    assert.deepEqual(
      ls.map((n) => n.Name),
      ['one'],
    );
    const custom = JSON.parse(ok(await b('--format', 'json', 'network', 'ls', '--filter', 'type=custom'), 'ls').stdout) as {
      Name: string;
    }[];
    assert.deepEqual(custom.map((n) => n.Name).sort(), ['one', 'two']);
    const pruned = JSON.parse(ok(await b('--format', 'json', 'network', 'prune', '-f'), 'prune').stdout) as { NetworksDeleted: string[] };
    assert.deepEqual(pruned.NetworksDeleted, ['one']); // two has a running container
    ok(await b('rm', '-f', 'side', 'multi'), 'rm');
    ok(await b('network', 'rm', 'two'), 'rm two');
    fails(await b('network', 'rm', 'bridge'), 5, /pre-defined network/);
    fails(await b('run', '--rm', '--network', 'nosuch', img, 'true'), 125, /network nosuch not found/);
  });

  test('crashes: a killed monitor, CLIs killed during run; gc and fsck --repair leave no namespace, lease or rule', async () => {
    // A monitor killed with its container: the next look releases the network.
    ok(await httpd('lost', '-p', '18183:80'), 'lost');
    const lost = await inspect('lost');
    const conmon = Number(await readFile(join(root, 'containers', 'default', lost.Id, 'conmon.pid'), 'utf8'));
    process.kill(conmon, 'SIGKILL');
    process.kill(lost.State.Pid, 'SIGKILL');
    while (existsSync(`/proc/${conmon}`) && !readFileSync(`/proc/${conmon}/stat`, 'utf8').includes(') Z')) await sleep(20);
    assert.notDeepEqual(hostTraces(lost.Id), []);
    ok(await b('gc'), 'gc');
    assert.deepEqual(hostTraces(lost.Id), []);
    // A start killed between the namespace and the record: fsck finds it, --repair releases it.
    const made = ok(await b('create', '--name', 'halfway', img, 'true'), 'create').stdout.trim();
    execFileSync('ip', ['netns', 'add', `berth-${made}`]);
    const found = JSON.parse(ok(await b('fsck', '--format', 'json'), 'fsck').stdout) as { kind: string; subject: string }[];
    assert.ok(
      found.some((f) => f.kind === 'network-leftover' && f.subject === made),
      JSON.stringify(found),
    );
    ok(await b('fsck', '--repair'), 'fsck --repair');
    assert.deepEqual(hostTraces(made), []);
    // CLIs killed at points through a run: whatever they left, gc releases.
    const start = performance.now();
    ok(await b('run', '-d', '--name', 'timed', '-p', '18184:80', img, 'sleep', '300'), 'timed run');
    const whole = performance.now() - start;
    let killed = 0;
    for (const [i, f] of [0.4, 0.55, 0.7, 0.85, 0.95].entries()) {
      const r = await berth(root, ['run', '-d', '--name', `killed${i}`, '-p', `${18185 + i}:80`, img, 'sleep', '300'], {
        killAfter: Math.round(whole * f),
      });
      if (r.code === null) killed++;
    }
    assert.ok(killed >= 2, `${killed} runs killed`);
    ok(await b('gc'), 'gc');
    const all = JSON.parse(ok(await b('--format', 'json', 'ps', '-a'), 'ps').stdout) as { ID: string; State: string }[];
    for (const c of all) if (c.State !== 'running') assert.deepEqual(hostTraces(c.ID), [], c.ID);
    // (a CLI killed inside create may leave a record without its snapshot: fsck's business, not the network's)
    const after = await b('fsck', '--format', 'json');
    const findings = JSON.parse(after.stdout) as { kind: string }[];
    assert.deepEqual(
      findings.filter((f) => f.kind.startsWith('network')),
      [],
      `fsck after gc: ${after.stdout}`,
    );
    ok(await b('rm', '-f', '-v', ...all.map((c) => c.ID)), 'rm');
    // CNI CHECK: an interface taken from under a running container is reported
    const checked = ok(await b('run', '-d', '--name', 'checked', img, 'sleep', '300'), 'checked').stdout.trim();
    const broken = () =>
      b('fsck', '--format', 'json').then((r) =>
        (JSON.parse(r.stdout) as { kind: string; subject: string }[]).filter((f) => f.kind === 'network-broken'),
      );
    assert.deepEqual(await broken(), []);
    execFileSync('ip', ['-n', `berth-${checked}`, 'link', 'delete', 'eth0']);
    assert.deepEqual(
      (await broken()).map((f) => f.subject),
      ['checked/bridge'],
    );
    fails(await b('fsck'), 11, /fsck: 1 error found/);
    ok(await b('rm', '-f', 'checked'), 'rm checked');
    assert.deepEqual(hostTraces(checked), []);
  });

  test('volumes: named, read-only, --mount, --volumes-from, filled from the image; in use refused; rm -v and prune; system df', async () => {
    // a root of its own: the other tests' containers hold anonymous volumes of the image's VOLUME
    const vroot = await roots.make(work);
    const v = (...args: string[]) => berth(vroot, args);
    ok(await v('pull', '-q', img), 'pull');
    ok(await v('volume', 'create', '--label', 'app=x', 'data'), 'create');
    ok(await v('run', '--rm', '-v', 'data:/d', img, 'sh', '-c', 'echo kept > /d/f'), 'write');
    assert.equal(
      ok(await v('run', '--rm', '-v', 'data:/d:ro', img, 'sh', '-c', 'cat /d/f; touch /d/g 2>&1 || true'), 'ro').stdout.split('\n')[0],
      'kept',
    );
    assert.match(ok(await v('run', '--rm', '-v', 'data:/d:ro', img, 'sh', '-c', 'touch /d/g 2>&1; true'), 'ro').stdout, /Read-only/);
    assert.equal(
      ok(await v('run', '--rm', '--mount', 'type=volume,source=data,target=/m,readonly', img, 'cat', '/m/f'), '--mount').stdout,
      'kept\n',
    );
    assert.match(
      ok(await v('run', '--rm', '--mount', 'type=tmpfs,target=/t,tmpfs-size=1048576', img, 'grep', ' /t ', '/proc/mounts'), 'tmpfs').stdout,
      /^tmpfs \/t tmpfs .*size=1024k/,
    );
    assert.equal(ok(await v('run', '--rm', '--mount', `type=bind,source=${work},target=/w`, img, 'ls', '-d', '/w'), 'bind').stdout, '/w\n');
    fails(
      await v('run', '--rm', '--mount', `type=bind,source=${work}/nosuch,target=/w`, img, 'true'),
      125,
      /bind source path does not exist/,
    );
    // the image's VOLUME /seed: an anonymous volume, filled from the image's files
    ok(await v('run', '--name', 'seeded', img, 'sh', '-c', 'cat /seed/hello.txt > /seed/copy.txt'), 'seeded');
    const anon = (await inspectIn(vroot, 'seeded')).Mounts.find((m) => m.Destination === '/seed')?.Name as string;
    assert.match(anon, /^[0-9a-f]{64}$/);
    assert.equal(await readFile(join(vroot, 'volumes', anon, '_data', 'copy.txt'), 'utf8'), 'from the image\n');
    assert.equal(
      ok(await v('run', '--rm', '--volumes-from', 'seeded:ro', img, 'cat', '/seed/copy.txt'), 'volumes-from').stdout,
      'from the image\n',
    );
    ok(await v('run', '-d', '--name', 'user', '-v', 'data:/d', img, 'sleep', '300'), 'user');
    fails(await v('volume', 'rm', 'data'), 5, /volume is in use/);
    const df = ok(await v('system', 'df'), 'df').stdout;
    const volumes = ok(await v('volume', 'ls', '-q'), 'ls')
      .stdout.split('\n')
      .filter(Boolean).length;
    const dangling = ok(await v('volume', 'ls', '-q', '--filter', 'dangling=true'), 'ls')
      .stdout.split('\n')
      .filter(Boolean).length;
    assert.match(df, new RegExp(`Local Volumes\\s+${volumes}\\s+${volumes - dangling}\\s`));
    const inspected = JSON.parse(ok(await v('volume', 'inspect', 'data'), 'inspect').stdout)[0];
    assert.deepEqual(
      [inspected.Name, inspected.Driver, inspected.Labels, inspected.Mountpoint],
      ['data', 'local', { app: 'x' }, join(vroot, 'volumes', 'data', '_data')],
    );
    ok(await v('rm', '-f', '-v', 'user', 'seeded'), 'rm -v');
    assert.equal(existsSync(join(vroot, 'volumes', anon)), false);
    // run --rm takes its anonymous volumes; a named one stays until removed
    ok(await v('run', '--rm', img, 'true'), 'run --rm');
    assert.deepEqual(ok(await v('volume', 'ls', '-q'), 'ls').stdout, 'data\n');
    ok(await v('volume', 'create', 'spare'), 'spare');
    ok(await v('volume', 'prune', '-f'), 'prune (anonymous only)');
    assert.deepEqual(
      ok(await v('volume', 'ls', '-q'), 'ls')
        .stdout.split('\n')
        .filter(Boolean)
        .sort(),
      ['data', 'spare'],
    );
    ok(await v('volume', 'prune', '-a', '-f'), 'prune -a');
    assert.deepEqual(ok(await v('volume', 'ls', '-q'), 'ls').stdout, '');
    fails(await v('volume', 'create', 'x'), 2, /invalid volume name/);
    // driver options: a mount made when a container first uses the volume, undone by rm
    ok(await v('volume', 'create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=1m', 'scratch'), 'create -o');
    assert.match(
      ok(await v('run', '--rm', '-v', 'scratch:/s', img, 'grep', ' /s ', '/proc/mounts'), 'tmpfs volume').stdout,
      /^tmpfs \/s tmpfs .*size=1024k/,
    );
    assert.match(readFileSync('/proc/mounts', 'utf8'), new RegExp(`${join(vroot, 'volumes', 'scratch', '_data')} tmpfs`));
    ok(await v('volume', 'rm', 'scratch'), 'rm');
    assert.doesNotMatch(readFileSync('/proc/mounts', 'utf8'), new RegExp(join(vroot, 'volumes', 'scratch')));
    fails(await v('volume', 'create', '-o', 'type=tmpfs', 'nodevice'), 2, /needs device=/);
    // a volume directory without its record (a crash in create or remove): an orphan fsck reports and --repair removes
    await mkdir(join(vroot, 'volumes', 'halfmade', '_data'), { recursive: true });
    const orphans = JSON.parse(ok(await v('fsck', '--format', 'json'), 'fsck').stdout) as { kind: string; subject: string }[];
    assert.deepEqual(
      orphans.filter((f) => f.kind === 'orphan-volume').map((f) => f.subject),
      ['halfmade'],
    );
    ok(await v('fsck', '--repair'), 'repair');
    assert.equal(existsSync(join(vroot, 'volumes', 'halfmade')), false);
  });
});
