import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { isLoopback, registryHosts } from './index.js';

test('registryHosts: docker.io is registry-1.docker.io over HTTPS; loopback and insecure hosts are plain HTTP', async () => {
  const none = { configDirs: [] };
  assert.deepEqual(
    (await registryHosts('docker.io', none)).map((h) => `${h.scheme}://${h.host}${h.path}`),
    ['https://registry-1.docker.io/v2'],
  );
  assert.equal((await registryHosts('127.0.0.1:5000', none))[0]?.scheme, 'http');
  assert.equal((await registryHosts('localhost:5000', none))[0]?.scheme, 'http');
  assert.equal((await registryHosts('[::1]:5000', none))[0]?.scheme, 'http');
  assert.equal((await registryHosts('reg.example:5000', none))[0]?.scheme, 'https');
  assert.equal((await registryHosts('reg.example:5000', { ...none, insecure: ['reg.example:5000'] }))[0]?.scheme, 'http');
  assert.equal((await registryHosts('reg.example', { ...none, plainHttp: true }))[0]?.scheme, 'http');
  for (const h of ['localhost', '127.0.0.1', '127.1.2.3:80', '[::1]:5000', 'a.localhost']) assert.equal(isLoopback(h), true, h);
  for (const h of ['10.0.0.1', 'example.com', '128.0.0.1:5000', 'localhost.example']) assert.equal(isLoopback(h), false, h);
});

test("registryHosts reads containerd's hosts.toml: mirrors first, then the server, with CA and client certificates", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-hosts-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'docker.io'));
  await writeFile(join(dir, 'docker.io', 'ca.pem'), 'CA-PEM');
  await writeFile(join(dir, 'docker.io', 'client.cert'), 'CERT');
  await writeFile(join(dir, 'docker.io', 'client.key'), 'KEY');
  await writeFile(
    join(dir, 'docker.io', 'hosts.toml'),
    `server = "https://registry-1.docker.io"

[host."https://mirror.internal:5000"]
  capabilities = ["pull", "resolve"]
  ca = "ca.pem"
  client = [["client.cert", "client.key"]]
  [host."https://mirror.internal:5000".header]
    x-team = ["infra"]

[host."http://plain.internal/v2/custom"]
  capabilities = ["pull"]
  override_path = true
  skip_verify = true
`,
  );
  const hosts = await registryHosts('docker.io', { configDirs: [dir] });
  assert.deepEqual(
    hosts.map((h) => [`${h.scheme}://${h.host}${h.path}`, [...h.capabilities].sort().join(',')]),
    [
      ['https://mirror.internal:5000/v2', 'pull,resolve'],
      ['http://plain.internal/v2/custom', 'pull'],
      ['https://registry-1.docker.io/v2', 'pull,push,resolve'],
    ],
  );
  assert.deepEqual(hosts[0]?.ca, ['CA-PEM']);
  assert.deepEqual(hosts[0]?.clientCerts, [{ cert: 'CERT', key: 'KEY' }]);
  assert.deepEqual(hosts[0]?.headers, { 'x-team': 'infra' });
  assert.equal(hosts[1]?.skipVerify, true);
});

test("registryHosts reads docker's certs.d (ca.crt, client.cert/key) and refuses a broken hosts.toml", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-certsd-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'reg.example:5000'));
  await writeFile(join(dir, 'reg.example:5000', 'ca.crt'), 'CA');
  await writeFile(join(dir, 'reg.example:5000', 'client.cert'), 'C');
  await writeFile(join(dir, 'reg.example:5000', 'client.key'), 'K');
  const [h] = await registryHosts('reg.example:5000', { configDirs: [dir] });
  assert.deepEqual(h?.ca, ['CA']);
  assert.deepEqual(h?.clientCerts, [{ cert: 'C', key: 'K' }]);
  await mkdir(join(dir, 'broken.example'));
  await writeFile(join(dir, 'broken.example', 'hosts.toml'), 'server = [');
  await assert.rejects(registryHosts('broken.example', { configDirs: [dir] }), { code: 'INVALID_ARGUMENT', message: /hosts\.toml/ });
});

test('a TLS registry is reached with the CA that hosts.toml names, and refused without it', async (t) => {
  const { startRegistry } = await import('../testutil/registry.js');
  const { Repository, Session } = await import('./index.js');
  const { parseReference } = await import('../oci/index.js');
  const reg = await startRegistry({ tls: true });
  t.after(() => reg.stop());
  const dir = await mkdtemp(join(tmpdir(), 'berth-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, reg.host));
  await writeFile(
    join(dir, reg.host, 'hosts.toml'),
    `server = "https://${reg.host}"\n\n[host."https://${reg.host}"]\n  ca = "${join(reg.dir, 'tls.crt')}"\n`,
  );
  const ref = parseReference(`${reg.host}/none/here:1`);
  const trusting = new Session({ credentialsFile: null, hosts: { configDirs: [dir] } });
  t.after(() => trusting.close());
  // The registry answers over TLS: the image is simply not there.
  await assert.rejects(new Repository(trusting, ref).resolve(ref), { code: 'NOT_FOUND' });
  await writeFile(join(dir, reg.host, 'hosts.toml'), `server = "https://${reg.host}"\n`);
  const untrusting = new Session({ credentialsFile: null, hosts: { configDirs: [dir] }, retries: 1 });
  t.after(() => untrusting.close());
  await assert.rejects(new Repository(untrusting, ref).resolve(ref), {
    code: 'UNAVAILABLE',
    message: /TLS: self[- ]signed certificate.*trust the registry's CA/,
  });
});

test('a registry that requires client certificates is reached with the pair hosts.toml names', async (t) => {
  const { startRegistry } = await import('../testutil/registry.js');
  const { Repository, Session } = await import('./index.js');
  const { parseReference } = await import('../oci/index.js');
  const reg = await startRegistry({ tls: true, clientCerts: true });
  t.after(() => reg.stop());
  const dir = await mkdtemp(join(tmpdir(), 'berth-mtls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, reg.host));
  const ca = `ca = "${join(reg.dir, 'tls.crt')}"`;
  const ref = parseReference(`${reg.host}/none/here:1`);
  await writeFile(join(dir, reg.host, 'hosts.toml'), `server = "https://${reg.host}"\n\n[host."https://${reg.host}"]\n  ${ca}\n`);
  const anonymous = new Session({ credentialsFile: null, hosts: { configDirs: [dir] }, retries: 1 });
  t.after(() => anonymous.close());
  await assert.rejects(new Repository(anonymous, ref).resolve(ref), { code: 'UNAVAILABLE' });
  await writeFile(
    join(dir, reg.host, 'hosts.toml'),
    `server = "https://${reg.host}"\n\n[host."https://${reg.host}"]\n  ${ca}\n  client = [["${join(reg.dir, 'client.cert')}", "${join(reg.dir, 'client.key')}"]]\n`,
  );
  const withCert = new Session({ credentialsFile: null, hosts: { configDirs: [dir] } });
  t.after(() => withCert.close());
  await assert.rejects(new Repository(withCert, ref).resolve(ref), { code: 'NOT_FOUND' });
});
