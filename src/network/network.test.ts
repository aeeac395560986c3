import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hostsFile, parseExtraHost, resolvConf } from './etc-files.js';
import { mergePorts, parsePublish, portBindings } from './ports.js';
import { NetworkStore } from './store.js';
import { formatSubnet, overlaps, parseSubnet } from './subnet.js';

test('-p forms: container port alone, host port, address, ranges, udp; bad ones refused', () => {
  assert.deepEqual(parsePublish('80'), { '80/tcp': [{ HostIp: '', HostPort: '' }] });
  assert.deepEqual(parsePublish('8080:80'), { '80/tcp': [{ HostIp: '', HostPort: '8080' }] });
  assert.deepEqual(parsePublish('127.0.0.1::53/udp'), { '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
  assert.deepEqual(parsePublish('9000-9001:90-91'), {
    '90/tcp': [{ HostIp: '', HostPort: '9000' }],
    '91/tcp': [{ HostIp: '', HostPort: '9001' }],
  });
  assert.deepEqual(mergePorts(parsePublish('80'), parsePublish('8080:80')), {
    '80/tcp': [
      { HostIp: '', HostPort: '' },
      { HostIp: '', HostPort: '8080' },
    ],
  });
  assert.deepEqual(portBindings(parsePublish('127.0.0.1:8080:80')), [
    { hostIP: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' },
  ]);
  for (const bad of ['0', '70000', '80/sctp', 'a:b', '1:2:3:4', '9000-9002:90-91', '90-89']) {
    assert.throws(() => parsePublish(bad), { code: 'INVALID_ARGUMENT' }, bad);
  }
});

test('subnets: parsed to their network address, overlaps found, bad ones refused', () => {
  assert.equal(formatSubnet(parseSubnet('10.89.3.7/24')), '10.89.3.0/24');
  assert.ok(overlaps(parseSubnet('10.88.0.0/16'), parseSubnet('10.88.5.0/24')));
  assert.ok(!overlaps(parseSubnet('10.88.0.0/16'), parseSubnet('10.89.0.0/24')));
  for (const bad of ['10.0.0.0', '10.0.0.0/33', '300.1.1.1/24', '10.0.0.0/4'])
    assert.throws(() => parseSubnet(bad), { code: 'INVALID_ARGUMENT' });
});

test('resolv.conf: loopback servers dropped (Google fallback when none is left), flags replace the host values', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-resolv-'));
  try {
    const host = join(dir, 'resolv.conf');
    await writeFile(host, 'nameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch corp.example\noptions edns0\n');
    assert.equal(resolvConf({ hostNetwork: false, hostFile: host }), 'nameserver 10.1.1.1\nsearch corp.example\noptions edns0\n');
    assert.equal(
      resolvConf({ hostNetwork: true, hostFile: host }),
      'nameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch corp.example\noptions edns0\n',
    );
    await writeFile(host, 'nameserver 127.0.0.53\n');
    assert.equal(resolvConf({ hostNetwork: false, hostFile: host }), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
    assert.equal(
      resolvConf({ hostNetwork: false, hostFile: host, servers: ['10.9.9.9'], search: ['a.test'], options: ['ndots:2'] }),
      'nameserver 10.9.9.9\nsearch a.test\noptions ndots:2\n',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('hosts: localhost, --add-host, itself, then its peers by name and alias', () => {
  const text = hostsFile(
    [{ ip: '10.89.0.2', names: ['abc'] }],
    [{ ip: '10.89.0.3', names: ['db', 'postgres', 'db'] }],
    [parseExtraHost('gw:10.0.0.1')],
  );
  const lines = text.trim().split('\n');
  assert.equal(lines[0], '127.0.0.1\tlocalhost');
  assert.deepEqual(lines.slice(-3), ['10.0.0.1\tgw', '10.89.0.2\tabc', '10.89.0.3\tdb postgres']);
  assert.throws(() => parseExtraHost('nohost'), { code: 'INVALID_ARGUMENT' });
});

test('network store: names unique, free subnets from the pool, built-ins listed and not removable', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-nets-'));
  try {
    // a network made first on a fresh root (the default bridge, written on the way, takes the same lock)
    assert.equal(new NetworkStore(join(dir, 'fresh')).create('first').Name, 'first');
    const store = new NetworkStore(dir);
    assert.deepEqual(
      store.list().map((n) => [n.Name, n.Driver]),
      [
        ['bridge', 'bridge'],
        ['host', 'host'],
        ['none', 'null'],
      ],
    );
    const a = store.create('net-a');
    const b = store.create('net-b', { internal: true, labels: { x: '1' } });
    assert.ok(!overlaps(parseSubnet(a.Subnet as string), parseSubnet(b.Subnet as string)));
    assert.match(a.Subnet as string, /^10\.89\.\d+\.0\/24$/);
    assert.equal(a.Gateway, (a.Subnet as string).replace('.0/24', '.1'));
    assert.throws(() => store.create('net-a'), { code: 'ALREADY_EXISTS' });
    assert.throws(() => store.create('c', { subnet: a.Subnet as string }), /overlaps/);
    assert.throws(() => store.create('c', { subnet: '10.99.0.0/24', gateway: '10.98.0.1' }), /not in subnet/);
    assert.throws(() => store.create('bad name'), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => store.create('m', { driver: 'macvlan' }), { code: 'INVALID_ARGUMENT' });
    assert.equal(store.find(a.Id.slice(0, 8)).Name, 'net-a');
    assert.equal(new NetworkStore(dir).find('net-b').Internal, true);
    assert.throws(() => store.remove(store.find('bridge')), { code: 'FAILED_PRECONDITION' });
    store.remove(a);
    // names are not hex here: a lookup also matches a unique ID prefix, as docker's does
    assert.throws(() => store.find('net-a'), { code: 'NOT_FOUND' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
