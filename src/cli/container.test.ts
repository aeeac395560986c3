import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Berth } from '../services/index.js';
import { pushBusyboxImage } from '../testutil/busybox.js';
import { berth, berthMain, fails, ok, type Result } from '../testutil/cli.js';
import { startRegistry, type TestRegistry } from '../testutil/registry.js';

// Real containers: runc through conmon, from an image made of Debian's busybox-static, pulled from
// the reference registry. CI runs as root; these tests need it (mounts, namespaces, cgroups).

let registry: TestRegistry;
let work: string;
let root: string;
let img: string;
const tag = Math.random().toString(36).slice(2, 8);

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-ctr-'));
  registry = await startRegistry();
  img = await pushBusyboxImage(work, registry.host, 'busybox', {
    config: ['--config.env', 'FROM_IMAGE=yes', '--config.workingdir', '/srv/app', '--config.stopsignal', 'SIGUSR1'],
  });
  root = join(work, 'root');
  ok(await berth(root, ['pull', '-q', img]), 'pull');
});
after(async () => {
  const ids = (await berth(root, ['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await berth(root, ['rm', '-f', ...ids]);
  await registry.stop();
  // The root's runtime directory under /run (runc state, exit files) goes with it.
  const berthRoot = await Berth.open({ root });
  await rm(berthRoot.runDir, { recursive: true, force: true });
  berthRoot.close();
  await rm(work, { recursive: true, force: true });
});

const run = (...args: string[]) => berth(root, ['run', '--rm', img, ...args]);
/** `run -d --name NAME IMG sh -c SCRIPT`, which must succeed. */
const runDetached = async (name: string, script: string) =>
  ok(await berth(root, ['run', '-d', '--name', name, img, 'sh', '-c', script]), `run -d ${name}`);
interface Inspected {
  Id: string;
  RestartCount: number;
  State: { Status: string; Running: boolean; Pid: number; ExitCode: number; OOMKilled: boolean; Error: string };
  GraphDriver: { Data: Record<string, string> };
}
const inspect = async (ctr: string) =>
  (JSON.parse(ok(await berth(root, ['inspect', ctr]), 'inspect').stdout) as Inspected[])[0] as Inspected;

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('containers (runc, conmon)', () => {
  test('run prints and exits with the process code; stdout and stderr apart', async () => {
    const hi = ok(await run('echo', 'hi'), 'echo');
    assert.equal(hi.stdout, 'hi\n');
    const seven = await run('sh', '-c', 'echo out; echo err >&2; exit 7');
    assert.equal(seven.code, 7);
    assert.equal(seven.stdout, 'out\n');
    assert.equal(seven.stderr, 'err\n');
    // --rm left nothing behind
    assert.equal(ok(await berth(root, ['ps', '-aq']), 'ps').stdout, '');
  });

  test('run: env, workdir and user as the image and the flags say', async () => {
    const env = ok(await run('sh', '-c', 'echo $FROM_IMAGE $A $PATH $HOME; pwd'), 'env').stdout;
    assert.equal(env, 'yes /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /root\n/srv/app\n');
    const flags = ok(
      await berth(root, [
        'run',
        '--rm',
        '-e',
        'A=1',
        '-e',
        'FROM_IMAGE=no',
        '-w',
        '/made/here',
        img,
        'sh',
        '-c',
        'echo $FROM_IMAGE $A; pwd',
      ]),
      'flags',
    );
    assert.equal(flags.stdout, 'no 1\n/made/here\n');
    const envFile = join(work, 'env');
    await writeFile(envFile, '# comment\nFILE_VAR=from file\n');
    assert.equal(
      ok(await berth(root, ['run', '--rm', '--env-file', envFile, img, 'sh', '-c', 'echo $FILE_VAR']), 'env-file').stdout,
      'from file\n',
    );
    assert.equal(
      ok(await berth(root, ['run', '--rm', '-u', 'app', img, 'id']), 'user name').stdout,
      'uid=1000(app) gid=1000(app) groups=10(wheel),50(staff)\n',
    );
    assert.equal(ok(await berth(root, ['run', '--rm', '-u', '1000:50', img, 'id']), 'uid:gid').stdout, 'uid=1000(app) gid=50(staff)\n');
    assert.equal(ok(await berth(root, ['run', '--rm', '-u', '4242', img, 'id', '-u']), 'numeric').stdout, '4242\n');
    assert.match(ok(await berth(root, ['run', '--rm', '-u', 'app', img, 'sh', '-c', 'echo $HOME']), 'home').stdout, /^\/home\/app\n$/);
    fails(await berth(root, ['run', '--rm', '-u', 'nosuchuser', img, 'id']), 125, /unable to find user nosuchuser/);
    fails(await berth(root, ['run', '--rm', img, 'nosuchcommand']), 127, /executable file not found/);
    assert.equal(
      ok(
        await berth(root, [
          'run',
          '--rm',
          '--hostname',
          'box',
          '--ulimit',
          'nofile=512:1024',
          img,
          'sh',
          '-c',
          'hostname; ulimit -n; ulimit -Hn',
        ]),
        'hostname, ulimit',
      ).stdout,
      'box\n512\n1024\n',
    );
    // options after the image belong to the command
    assert.equal(ok(await berth(root, ['run', '--rm', img, 'echo', '-v', '--rm']), 'passthrough').stdout, '-v --rm\n');
  });

  test('a file written in a container is in its writable layer only, and goes with rm', async () => {
    const a = ok(
      await berth(root, ['run', '-d', '--name', `writer-${tag}`, img, 'sh', '-c', 'echo data > /tmp/written; sleep 60']),
      'run a',
    ).stdout.trim();
    const b = ok(await berth(root, ['run', '-d', '--name', `other-${tag}`, img, 'sleep', '60']), 'run b').stdout.trim();
    const data = (await inspect(a)).GraphDriver.Data;
    const upper = (data.UpperDir ?? data.Dir) as string;
    await waitFor('the write', async () => (existsSync(join(upper, 'tmp/written')) ? true : undefined));
    assert.equal(await readFile(join(upper, 'tmp/written'), 'utf8'), 'data\n');
    assert.equal(ok(await berth(root, ['exec', a, 'cat', '/tmp/written']), 'exec a').stdout, 'data\n');
    fails(await berth(root, ['exec', b, 'cat', '/tmp/written']), 1, /No such file/);
    const mnt = join(work, `img-${tag}`);
    await mkdir(mnt);
    ok(await berth(root, ['image', 'mount', img, mnt]), 'image mount');
    assert.equal(existsSync(join(mnt, 'tmp/written')), false);
    ok(await berth(root, ['image', 'unmount', mnt]), 'image unmount');
    fails(await berth(root, ['rm', a]), 5, /container is running/);
    ok(await berth(root, ['rm', '-f', a, b]), 'rm -f');
    assert.equal(existsSync(upper), false);
    fails(await berth(root, ['inspect', a]), 3, /No such container/);
  });

  test('network none, read-only rootfs, bind mounts, tmpfs', async () => {
    const links = ok(await berth(root, ['run', '--rm', '--network', 'none', img, 'cat', '/proc/net/dev']), 'net').stdout;
    assert.deepEqual(
      links
        .split('\n')
        .slice(2)
        .filter(Boolean)
        .map((l) => l.trim().split(':')[0]),
      ['lo'],
    );
    const ro = await berth(root, ['run', '--rm', '--read-only', img, 'sh', '-c', 'echo x > /etc/f']);
    assert.equal(ro.code, 1);
    assert.match(ro.stderr, /Read-only file system/);
    assert.equal(
      ok(
        await berth(root, ['run', '--rm', '--read-only', '--tmpfs', '/scratch', img, 'sh', '-c', 'echo ok > /scratch/f; cat /scratch/f']),
        'tmpfs',
      ).stdout,
      'ok\n',
    );
    const host = join(work, 'vol');
    await mkdir(host);
    await writeFile(join(host, 'from-host'), 'host\n');
    assert.equal(
      ok(
        await berth(root, ['run', '--rm', '-v', `${host}:/data`, img, 'sh', '-c', 'cat /data/from-host; echo ctr > /data/from-ctr']),
        'rw bind',
      ).stdout,
      'host\n',
    );
    assert.equal(await readFile(join(host, 'from-ctr'), 'utf8'), 'ctr\n');
    const roBind = await berth(root, ['run', '--rm', '-v', `${host}:/data:ro`, img, 'sh', '-c', 'echo y > /data/nope']);
    assert.equal(roBind.code, 1);
    assert.equal(existsSync(join(host, 'nope')), false);
    fails(await berth(root, ['run', '--rm', '-v', './relative:/data', img, 'true']), 125, /host path must be absolute/);
  });

  test('cgroups: --memory OOM is 137 and OOMKilled; --pids-limit holds; --cpus applies', async () => {
    const name = `oom-${tag}`;
    const r = await berth(root, [
      'run',
      '--name',
      name,
      '-m',
      '16m',
      img,
      'sh',
      '-c',
      'x=$(head -c 64000000 /dev/zero | tr "\\0" a); echo survived',
    ]);
    assert.equal(r.code, 137, r.stderr);
    const st = (await inspect(name)).State;
    assert.equal(st.OOMKilled, true);
    assert.equal(st.ExitCode, 137);
    ok(await berth(root, ['rm', name]), 'rm');
    const pids = await berth(root, [
      'run',
      '--rm',
      '--pids-limit',
      '5',
      img,
      'sh',
      '-c',
      'for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait',
    ]);
    assert.match(pids.stderr, /can't fork/);
    const cpu = ok(
      await berth(root, [
        'run',
        '--rm',
        '--cpus',
        '0.5',
        img,
        'sh',
        '-c',
        'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d" " -f1 /sys/fs/cgroup/cpu.max',
      ]),
      'cpus',
    );
    assert.equal(cpu.stdout.trim(), '50000');
  });

  test('security defaults: capabilities, seccomp, masked paths; privileged and cap flags', async () => {
    const capEff = (r: Result) => BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(r.stdout)?.[1]}`);
    assert.equal(capEff(ok(await run('cat', '/proc/self/status'), 'caps')), 0xa80425fbn); // docker's 14
    assert.equal(
      capEff(
        ok(await berth(root, ['run', '--rm', '--cap-drop', 'ALL', '--cap-add', 'NET_ADMIN', img, 'cat', '/proc/self/status']), 'cap flags'),
      ),
      1n << 12n,
    );
    assert.match(ok(await run('cat', '/proc/self/status'), 'seccomp').stdout, /Seccomp:\s+2/);
    assert.match(
      ok(await berth(root, ['run', '--rm', '--security-opt', 'seccomp=unconfined', img, 'cat', '/proc/self/status']), 'unconfined').stdout,
      /Seccomp:\s+0/,
    );
    assert.match(
      ok(await berth(root, ['run', '--rm', '--security-opt', 'no-new-privileges', img, 'cat', '/proc/self/status']), 'nnp').stdout,
      /NoNewPrivs:\s+1/,
    );
    assert.equal(
      ok(await run('sh', '-c', 'wc -c < /proc/interrupts; echo x > /proc/sysrq-trigger || echo denied'), 'masked').stdout,
      '0\ndenied\n',
    );
    assert.notEqual(
      ok(
        await berth(root, ['run', '--rm', '--privileged', img, 'sh', '-c', 'mkdir /m && mount -t tmpfs t /m && echo mounted']),
        'privileged',
      ).stdout,
      '',
    );
    const profile = join(work, 'no-mkdir.json');
    await writeFile(
      profile,
      JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] }),
    );
    const denied = await berth(root, [
      'run',
      '--rm',
      '--security-opt',
      `seccomp=${profile}`,
      img,
      'sh',
      '-c',
      'mkdir /x || echo refused; touch /y && echo touched',
    ]);
    assert.equal(denied.stdout, 'refused\ntouched\n');
    const unshare = await run('unshare', '-n', 'true');
    assert.notEqual(unshare.code, 0, 'seccomp refuses new namespaces without CAP_SYS_ADMIN');
    assert.equal(
      ok(await berth(root, ['run', '--rm', '--init', img, 'ps', '-o', 'pid,comm']), 'init')
        .stdout.split('\n')[1]
        ?.trim(),
      '1 docker-init',
    );
  });

  test('detached: logs while running, exec, tty, stop within its timeout, wait, start again', async () => {
    const name = `web-${tag}`;
    await runDetached(name, 'trap "echo bye; exit 3" USR1; echo up; echo warn >&2; while true; do sleep 0.1; done');
    await waitFor('the first line', async () => ((await berth(root, ['logs', name])).stdout === 'up\n' ? true : undefined));
    const logs = ok(await berth(root, ['logs', '-t', name]), 'logs -t');
    assert.match(logs.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z up\n$/);
    assert.match(logs.stderr, /Z warn\n$/);
    assert.equal(
      ok(await berth(root, ['exec', '-e', 'X=1', name, 'sh', '-c', 'echo $X $FROM_IMAGE; pwd']), 'exec').stdout,
      '1 yes\n/srv/app\n',
    );
    assert.equal((await berth(root, ['exec', name, 'sh', '-c', 'exit 4'])).code, 4);
    assert.equal(ok(await berth(root, ['exec', '-t', name, 'sh', '-c', 'test -t 0 && echo tty']), 'exec -t').stdout, 'tty\r\n');
    assert.match(ok(await berth(root, ['top', name]), 'top').stdout, /PID.*\n.*sh -c trap/s);
    const ps = ok(await berth(root, ['--format', 'json', 'ps']), 'ps json');
    const listed = (JSON.parse(ps.stdout) as { Names: string; State: string }[]).find((c) => c.Names === name);
    assert.equal(listed?.State, 'running');
    // The image's StopSignal (USR1) ends it with its trap: code 3, long before the timeout.
    const t0 = Date.now();
    ok(await berth(root, ['stop', '-t', '20', name]), 'stop');
    assert.ok(Date.now() - t0 < 10_000);
    const waited = await berth(root, ['wait', name]);
    assert.deepEqual([waited.code, waited.stdout], [3, '3\n'], 'wait prints the code and exits with it');
    assert.match(ok(await berth(root, ['ps', '-a', '--filter', `name=${name}`]), 'ps -a').stdout, /Exited \(3\)/);
    assert.equal(ok(await berth(root, ['logs', '--tail', '1', name]), 'tail').stdout, 'bye\n');
    ok(await berth(root, ['start', name]), 'start again');
    assert.equal((await inspect(name)).State.Running, true);
    assert.equal((await inspect(name)).RestartCount, 1);
    const killed = Date.now();
    ok(await berth(root, ['kill', name]), 'kill');
    assert.equal((await berth(root, ['wait', name])).stdout, '137\n');
    assert.ok(Date.now() - killed < 5000);
    ok(await berth(root, ['rename', name, `${name}-old`]), 'rename');
    ok(await berth(root, ['rm', `${name}-old`]), 'rm');
  });

  test("a detached container's monitor cleans up at exit: unmounted, and removed with --rm", async () => {
    const kept = ok(await berth(root, ['run', '-d', img, 'true']), 'run -d').stdout.trim();
    const gone = ok(await berth(root, ['run', '-d', '--rm', img, 'true']), 'run -d --rm').stdout.trim();
    // No berth command runs meanwhile: only the monitor's exit command can do this.
    const dir = (id: string) => join(root, 'containers', 'default', id);
    await waitFor('the --rm container to go', async () => (existsSync(dir(gone)) ? undefined : true));
    await waitFor('the rootfs to be unmounted', async () =>
      (await readFile('/proc/self/mountinfo', 'utf8')).includes(`${dir(kept)}/rootfs`) ? undefined : true,
    );
    assert.equal((await inspect(kept)).State.ExitCode, 0);
    ok(await berth(root, ['rm', kept]), 'rm');
  });

  test('logs -f follows until the container exits; stop kills after the timeout; create then start -a', async () => {
    const name = `follow-${tag}`;
    await runDetached(name, 'for i in 1 2 3; do echo line $i; sleep 0.3; done; echo oops >&2; exit 2');
    const followed = ok(await berth(root, ['logs', '-f', name]), 'logs -f');
    assert.equal(followed.stdout, 'line 1\nline 2\nline 3\n');
    assert.equal(followed.stderr, 'oops\n');
    assert.equal((await inspect(name)).State.ExitCode, 2);
    ok(await berth(root, ['rm', name]), 'rm');
    // A process that ignores the stop signal (sh as PID 1 ignores SIGTERM) is killed after the timeout.
    const stubborn = `stubborn-${tag}`;
    await runDetached(stubborn, 'while true; do sleep 0.1; done');
    const t0 = Date.now();
    ok(await berth(root, ['stop', '-t', '1', stubborn]), 'stop -t 1');
    const took = Date.now() - t0;
    assert.ok(took >= 1000 && took < 6000, `stop took ${took} ms`);
    assert.equal((await inspect(stubborn)).State.ExitCode, 137);
    ok(await berth(root, ['rm', stubborn]), 'rm stubborn');
    const created = `created-${tag}`;
    ok(await berth(root, ['create', '--name', created, img, 'sh', '-c', 'echo started; exit 6']), 'create');
    assert.match(ok(await berth(root, ['ps', '-a', '--filter', `name=${created}`]), 'ps').stdout, /Created/);
    const started = await berth(root, ['start', '-a', created]);
    assert.deepEqual([started.code, started.stdout], [6, 'started\n']);
    ok(await berth(root, ['rm', created]), 'rm created');
  });

  test('run -t gives a pseudo-terminal; -i forwards stdin', async () => {
    const t = ok(await berth(root, ['run', '--rm', '-t', img, 'sh', '-c', 'test -t 0 && test -t 1 && tty']), 'run -t');
    assert.equal(t.stdout, '/dev/pts/0\r\n');
    assert.equal(
      ok(await berth(root, ['run', '--rm', '-i', img, 'sh', '-c', 'cat; echo done'], { input: 'from stdin\n' }), 'run -i').stdout,
      'from stdin\ndone\n',
    );
    assert.equal(ok(await berth(root, ['run', '--rm', img, 'sh', '-c', 'test -t 0 || echo notty']), 'no -t').stdout, 'notty\n');
    // From a terminal (script(1) lends one), the container's terminal takes its size.
    const sized = execFileSync(
      'script',
      ['-qec', `stty rows 40 cols 100; ${process.execPath} ${berthMain} run --rm -t ${img} stty size`, '/dev/null'],
      {
        env: { ...process.env, BERTH_ROOT: root, BERTH_NAMESPACE: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    assert.equal(sized.toString().replace(/\r/g, ''), '40 100\n');
  });

  test('a lost monitor: ps -a tells the truth and start works again', async () => {
    const name = `lost-${tag}`;
    ok(await berth(root, ['run', '-d', '--name', name, img, 'sleep', '300']), 'run -d');
    const pid = (await inspect(name)).State.Pid;
    const monitor = Number(await readFile(join(root, 'containers', 'default', (await inspect(name)).Id, 'conmon.pid'), 'utf8'));
    process.kill(monitor, 'SIGKILL');
    process.kill(pid, 'SIGKILL');
    await waitFor('the monitor to go', async () => (existsSync(`/proc/${monitor}`) ? undefined : true));
    const st = (await inspect(name)).State;
    assert.equal(st.Status, 'exited');
    assert.match(st.Error, /monitor/);
    assert.match(ok(await berth(root, ['ps', '-a', '--filter', `name=${name}`]), 'ps').stdout, /Exited \(unknown\)/);
    ok(await berth(root, ['start', name]), 'start');
    assert.equal((await inspect(name)).State.Running, true);
    // A machine restart: the record says running, but under another boot ID (and the processes are gone).
    const id = (await inspect(name)).Id;
    const db = new Database(join(root, 'metadata.db'));
    db.prepare("UPDATE containers SET state = json_set(state, '$.bootId', 'another-boot') WHERE id = ?").run(id);
    db.close();
    const rebooted = (await inspect(name)).State;
    assert.equal(rebooted.Status, 'exited');
    assert.match(rebooted.Error, /machine restarted/);
    ok(await berth(root, ['start', name]), 'start after the restart');
    assert.equal((await inspect(name)).State.Running, true);
    ok(await berth(root, ['rm', '-f', name]), 'rm');
  });

  test('20 containers started at once from separate processes all run and are listed', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `many-${tag}-${i}`);
    const results = await Promise.all(names.map((n) => berth(root, ['run', '-d', '--name', n, img, 'sleep', '300'])));
    for (const r of results) ok(r, 'run -d');
    const ps = JSON.parse(ok(await berth(root, ['--format', 'json', 'ps', '--filter', `name=many-${tag}`]), 'ps').stdout) as {
      Names: string;
      State: string;
    }[];
    assert.deepEqual(ps.map((c) => c.Names).sort(), [...names].sort());
    assert.ok(ps.every((c) => c.State === 'running'));
    ok(await berth(root, ['rm', '-f', ...names]), 'rm -f');
    assert.equal(ok(await berth(root, ['ps', '-aq', '--filter', `name=many-${tag}`]), 'ps after').stdout, '');
  });

  test('containers are per namespace', async () => {
    ok(await berth(root, ['-n', 'other', 'pull', '-q', img]), 'pull other');
    const id = ok(await berth(root, ['-n', 'other', 'create', '--name', `ns-${tag}`, img, 'true']), 'create').stdout.trim();
    fails(await berth(root, ['inspect', id]), 3, /No such container/);
    ok(await berth(root, ['-n', 'other', 'rm', id]), 'rm');
  });

  test('commit: the new image runs and sees the committed file', async () => {
    const name = `tocommit-${tag}`;
    ok(await berth(root, ['run', '--name', name, img, 'sh', '-c', 'echo committed > /srv/file; rm /bin/vi']), 'run');
    const repo = `${registry.host}/committed:${tag}`;
    const id = ok(
      await berth(root, ['commit', '-m', 'a message', '-c', 'CMD ["cat", "/srv/file"]', '-c', 'ENV NEW=1', name, repo]),
      'commit',
    ).stdout.trim();
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    assert.equal(ok(await berth(root, ['run', '--rm', repo]), 'run committed').stdout, 'committed\n');
    assert.equal(
      ok(await berth(root, ['run', '--rm', repo, 'sh', '-c', 'echo $NEW; test -e /bin/vi || echo gone']), 'env').stdout,
      '1\ngone\n',
    );
    const history = ok(await berth(root, ['image', 'history', repo]), 'history').stdout;
    assert.match(history, /a message/);
    ok(await berth(root, ['push', repo]), 'push the committed image');
    ok(await berth(root, ['rm', name]), 'rm');
  });
});

describe('hostile image configs', () => {
  test('WORKDIR, volumes and mount targets through a symlink to / stay in the container', async () => {
    const marker = `berth-hostile-${tag}`;
    const ref = await pushBusyboxImage(work, registry.host, 'hostile', {
      files: { escape: { symlink: '/' }, up: { symlink: '../../../../..' } },
      config: ['--config.workingdir', `/escape/tmp/${marker}-wd`, '--config.volume', `/up/tmp/${marker}-vol`],
    });
    const out = ok(
      await berth(root, ['run', '--rm', '-v', `${work}:/escape/tmp/${marker}-bind`, ref, 'sh', '-c', 'pwd; ls -d /tmp/*']),
      'run hostile',
    );
    // The working directory, the image's volume and the bind target all landed in the container's /tmp.
    assert.equal(out.stdout, `/tmp/${marker}-wd\n/tmp/${marker}-bind\n/tmp/${marker}-vol\n/tmp/${marker}-wd\n`);
    for (const suffix of ['wd', 'vol', 'bind'])
      assert.equal(existsSync(`/tmp/${marker}-${suffix}`), false, `host /tmp/${marker}-${suffix}`);
  });

  test('a huge /etc/group is refused with a clear error', async () => {
    const big = `${'g:x:1:u\n'.repeat(700_000)}`;
    const ref = await pushBusyboxImage(work, registry.host, 'biggroup', { files: { 'etc/group': big } });
    ok(await berth(root, ['pull', '-q', ref]), 'pull');
    fails(await berth(root, ['run', '--rm', ref, 'true']), 125, /\/etc\/group: \d+ bytes, larger than the 4194304 read/);
    assert.equal(
      ok(await berth(root, ['ps', '-aq', '--filter', `ancestor=${ref}`]), 'ps').stdout,
      '',
      '--rm removed the container that could not start',
    );
  });

  test('a bad WORKDIR or a file in the way is refused', async () => {
    const ref = await pushBusyboxImage(work, registry.host, 'filewd', {
      files: { 'srv/file': 'x' },
      config: ['--config.workingdir', '/srv/file/sub'],
    });
    ok(await berth(root, ['pull', '-q', ref]), 'pull');
    fails(await berth(root, ['run', '--rm', ref, 'true']), 125, /working directory "\/srv\/file\/sub".*not a directory/);
  });
});

describe('container process tree', () => {
  test('a foreground run forwards SIGTERM to the container', async () => {
    const p = spawn(
      process.execPath,
      [berthMain, 'run', '--rm', img, 'sh', '-c', 'trap "echo got term; exit 9" TERM; echo ready; while true; do sleep 0.1; done'],
      {
        env: { ...process.env, BERTH_ROOT: root, BERTH_NAMESPACE: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    await waitFor('ready', async () => (out.includes('ready') ? true : undefined));
    p.kill('SIGTERM');
    const code = await new Promise((r) => p.on('close', r));
    assert.equal(code, 9);
    assert.equal(out, 'ready\ngot term\n');
  });
});
