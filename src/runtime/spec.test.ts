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
});
