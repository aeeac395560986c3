import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildSpec, capabilitySet, defaultCapabilities, defaultPath, mergeEnv, processArgs } from './spec.js';

const user = { uid: 0, gid: 0, additionalGids: [], home: '/root' };

describe('runtime spec', () => {
  test('processArgs merges Entrypoint and Cmd as docker does', () => {
    assert.deepEqual(processArgs({ Entrypoint: ['/ep'], Cmd: ['a'] }, {}), ['/ep', 'a']);
    assert.deepEqual(processArgs({ Entrypoint: ['/ep'], Cmd: ['a'] }, { cmd: ['b'] }), ['/ep', 'b']);
    assert.deepEqual(
      processArgs({ Entrypoint: ['/ep'], Cmd: ['a'] }, { entrypoint: ['/new'] }),
      ['/new'],
      'a new entrypoint drops the image Cmd',
    );
    assert.deepEqual(processArgs({ Cmd: ['sh'] }, { entrypoint: [], cmd: ['ls'] }), ['ls']);
    assert.throws(() => processArgs({}, {}), { code: 'INVALID_ARGUMENT' });
  });

  test('mergeEnv: PATH default, overrides win, HOME and HOSTNAME', () => {
    assert.deepEqual(mergeEnv(['A=1'], ['A=2', 'B=3'], { hostname: 'h', home: '/root' }), [
      `PATH=${defaultPath}`,
      'HOSTNAME=h',
      'A=2',
      'B=3',
      'HOME=/root',
    ]);
    assert.deepEqual(mergeEnv(['PATH=/x', 'HOME=/h'], [], { hostname: 'h', home: '/root', tty: true }), [
      'HOSTNAME=h',
      'PATH=/x',
      'HOME=/h',
      'TERM=xterm',
    ]);
  });

  test('capabilitySet: docker defaults, drop and add, ALL', () => {
    assert.deepEqual(new Set(capabilitySet({})), new Set(defaultCapabilities));
    assert.deepEqual(capabilitySet({ capDrop: ['ALL'], capAdd: ['net_admin'] }), ['CAP_NET_ADMIN']);
    assert.ok(!capabilitySet({ capDrop: ['CHOWN'] }).includes('CAP_CHOWN'));
    assert.ok(capabilitySet({ capAdd: ['ALL'] }).includes('CAP_SYS_ADMIN'));
    assert.throws(() => capabilitySet({ capAdd: ['NOT_A_CAP'] }), { code: 'INVALID_ARGUMENT' });
  });

  test('buildSpec: secure defaults and what privileged lifts', () => {
    const base = { args: ['sh'], env: [], cwd: '/', user, rootfs: '/r', hostname: 'h', cgroupsPath: '/berth/x' };
    const s = buildSpec(base);
    assert.equal(s.linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
    assert.ok(s.linux.maskedPaths?.includes('/proc/kcore'));
    assert.ok(s.linux.readonlyPaths?.includes('/proc/sys'));
    assert.deepEqual(s.linux.resources?.devices, [{ allow: false, access: 'rwm' }]);
    assert.deepEqual(
      s.linux.namespaces.map((n) => n.type),
      ['pid', 'ipc', 'uts', 'mount', 'network'],
    );
    assert.ok(s.mounts.find((m) => m.destination === '/sys')?.options?.includes('ro'));
    const clone = s.linux.seccomp?.syscalls?.find((c) => c.names.includes('clone'));
    assert.equal(clone?.args?.[0]?.op, 'SCMP_CMP_MASKED_EQ', 'clone only without namespace flags');
    const p = buildSpec({ ...base, privileged: true, network: 'host', resources: { memory: 64 << 20, nanoCpus: 1.5e9, pidsLimit: 9 } });
    assert.equal(p.linux.seccomp, undefined);
    assert.equal(p.linux.maskedPaths, undefined);
    assert.deepEqual(p.linux.resources?.devices, [{ allow: true, access: 'rwm' }]);
    assert.ok(!p.linux.namespaces.some((n) => n.type === 'network'));
    assert.deepEqual(p.linux.resources?.memory, { limit: 64 << 20, swap: 128 << 20 });
    assert.deepEqual(p.linux.resources?.cpu, { quota: 150000, period: 100000 });
    assert.deepEqual(p.linux.resources?.pids, { limit: 9 });
    assert.equal(buildSpec({ ...base, seccomp: 'unconfined' }).linux.seccomp, undefined);
  });

  test("buildSpec: another process's namespaces (a pod's), devices, CPU shares and quota, the lists replaced", () => {
    const base = { args: ['sh'], env: [], cwd: '/', user, rootfs: '/r', hostname: 'h', cgroupsPath: '/kubepods/pod1/x' };
    const s = buildSpec({
      ...base,
      network: { path: '/proc/7/ns/net' },
      share: { ipc: { path: '/proc/7/ns/ipc' }, uts: { path: '/proc/7/ns/uts' }, pid: 'host' },
      devices: [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, access: 'rw' }],
      resources: { cpuShares: 512, cpuQuota: 20000, cpuPeriod: 100000 },
      oomScoreAdj: 500,
      maskedPaths: ['/proc/x'],
      readonlyPaths: [],
    });
    assert.deepEqual(s.linux.namespaces, [
      { type: 'ipc', path: '/proc/7/ns/ipc' },
      { type: 'uts', path: '/proc/7/ns/uts' },
      { type: 'mount' },
      { type: 'network', path: '/proc/7/ns/net' },
    ]);
    assert.equal(s.hostname, undefined, 'runc sets no host name in a UTS namespace it joins');
    assert.deepEqual(s.linux.devices, [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666 }]);
    assert.deepEqual(s.linux.resources?.devices?.[1], { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' });
    assert.deepEqual(s.linux.resources?.cpu, { shares: 512, quota: 20000, period: 100000 });
    assert.equal(s.process.oomScoreAdj, 500);
    assert.deepEqual([s.linux.maskedPaths, s.linux.readonlyPaths], [['/proc/x'], []]);
  });
});
