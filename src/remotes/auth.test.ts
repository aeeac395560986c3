import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { parseReference } from '../oci/index.js';
import { startRegistry, type TestRegistry } from '../testutil/registry.js';
import { CredentialStore, parseWWWAuthenticate, Repository, Session } from './index.js';

test('parseWWWAuthenticate reads docker and RFC 7235 challenges', () => {
  assert.deepEqual(
    parseWWWAuthenticate(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
    ),
    [
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' },
      },
    ],
  );
  assert.deepEqual(parseWWWAuthenticate('Basic realm="registry"'), [{ scheme: 'basic', params: { realm: 'registry' } }]);
  assert.deepEqual(parseWWWAuthenticate('Bearer realm="a,b", scope="x:y:pull,push", Basic realm=r'), [
    { scheme: 'bearer', params: { realm: 'a,b', scope: 'x:y:pull,push' } },
    { scheme: 'basic', params: { realm: 'r' } },
  ]);
  assert.deepEqual(parseWWWAuthenticate('Bearer realm="q\\"uote"'), [{ scheme: 'bearer', params: { realm: 'q"uote' } }]);
});

test('parseWWWAuthenticate property: any header parses or throws InvalidArgument', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (s) => {
      try {
        for (const c of parseWWWAuthenticate(s)) assert.equal(typeof c.scheme, 'string');
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'INVALID_ARGUMENT');
      }
    }),
  );
});

describe('registry authentication', () => {
  let work: string;
  const user = 'alice';
  const password = 's3cret';
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-auth-'));
  });
  after(() => rm(work, { recursive: true, force: true }));

  async function withCorpus(reg: TestRegistry): Promise<string> {
    // The corpus goes in with skopeo using the credentials.
    const { skopeoCopy, umociImage } = await import('../testutil/peers.js');
    const layout = join(work, `layout-${Math.random().toString(36).slice(2)}`);
    await umociImage(layout, 'x', [{ 'a.txt': 'a\n' }], { work });
    await skopeoCopy(`oci:${layout}:x`, `docker://${reg.host}/private/app:1`, ['--dest-creds', `${user}:${password}`]);
    return `${reg.host}/private/app:1`;
  }

  test('token auth: anonymous is refused, credentials get a token for the scope, tokens are reused', async (t) => {
    const reg = await startRegistry({ auth: { kind: 'token', user, password } });
    t.after(() => reg.stop());
    const ref = parseReference(await withCorpus(reg));
    const anonymous = new Session({ credentialsFile: null, retries: 1 });
    t.after(() => anonymous.close());
    await assert.rejects(new Repository(anonymous, ref).resolve(ref), { code: 'UNAUTHENTICATED' });
    const wrong = new Session({ credentialsFile: null, auth: { [ref.domain]: { username: user, secret: 'nope' } } });
    t.after(() => wrong.close());
    await assert.rejects(new Repository(wrong, ref).resolve(ref), { code: 'UNAUTHENTICATED', message: /credentials rejected/ });
    const session = new Session({ credentialsFile: null, auth: { [ref.domain]: { username: user, secret: password } } });
    t.after(() => session.close());
    const before = reg.tokenRequests.length;
    const repo = new Repository(session, ref);
    const desc = await repo.resolve(ref);
    await repo.fetchManifest(desc);
    await repo.resolve(ref);
    const asked = reg.tokenRequests.slice(before);
    assert.equal(asked.length, 1, 'one token serves several requests of the same scope');
    assert.deepEqual(asked[0], { scope: ['repository:private/app:pull'], user });
  });

  test('token auth: credentials come from docker config.json (mode 0600 after login)', async (t) => {
    const reg = await startRegistry({ auth: { kind: 'token', user, password } });
    t.after(() => reg.stop());
    const ref = parseReference(await withCorpus(reg));
    const store = new CredentialStore(join(work, `docker-${Date.now()}`, 'config.json'));
    await store.store(ref.domain, { username: user, secret: password });
    assert.equal((await stat(store.path)).mode & 0o777, 0o600);
    const config = JSON.parse(await readFile(store.path, 'utf8'));
    assert.equal(config.auths[ref.domain].auth, Buffer.from(`${user}:${password}`).toString('base64'));
    const session = new Session({ credentialsFile: store.path });
    t.after(() => session.close());
    assert.equal((await new Repository(session, ref).resolve(ref)).size > 0, true);
    await store.erase(ref.domain);
    await assert.rejects(store.erase(ref.domain), { code: 'NOT_FOUND' });
    assert.equal(await store.get(ref.domain), undefined);
  });

  test('htpasswd Basic auth: refused without credentials, accepted with them, ping checks a login', async (t) => {
    const reg = await startRegistry({ auth: { kind: 'htpasswd', user, password } });
    t.after(() => reg.stop());
    const ref = parseReference(await withCorpus(reg));
    const anonymous = new Session({ credentialsFile: null });
    t.after(() => anonymous.close());
    await assert.rejects(new Repository(anonymous, ref).resolve(ref), { code: 'UNAUTHENTICATED', message: /berth login/ });
    const good = new Session({ credentialsFile: null, auth: { [ref.domain]: { username: user, secret: password } } });
    t.after(() => good.close());
    await good.ping(ref.domain);
    assert.ok((await new Repository(good, ref).resolve(ref)).digest.startsWith('sha256:'));
    const bad = new Session({ credentialsFile: null, auth: { [ref.domain]: { username: user, secret: 'wrong' } } });
    t.after(() => bad.close());
    await assert.rejects(bad.ping(ref.domain), { code: 'UNAUTHENTICATED' });
  });

  test('credential helpers: docker-credential-NAME get, store and erase', async (t) => {
    const bin = join(work, 'bin');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(bin, { recursive: true });
    const db = join(work, 'helper-db.json');
    // A real helper program speaking docker's protocol, backed by a JSON file.
    await writeFile(
      join(bin, 'docker-credential-berthtest'),
      `#!/usr/bin/env node
const fs = require('fs'); const db = ${JSON.stringify(db)};
const all = fs.existsSync(db) ? JSON.parse(fs.readFileSync(db, 'utf8')) : {};
let input = ''; process.stdin.on('data', (d) => (input += d)).on('end', () => {
  const action = process.argv[2];
  if (action === 'store') { const c = JSON.parse(input); all[c.ServerURL] = c; fs.writeFileSync(db, JSON.stringify(all)); }
  else if (action === 'get') { const c = all[input.trim()]; if (!c) { console.log('credentials not found in native keychain'); process.exit(1); } console.log(JSON.stringify(c)); }
  else if (action === 'erase') { if (!all[input.trim()]) { console.log('credentials not found in native keychain'); process.exit(1); } delete all[input.trim()]; fs.writeFileSync(db, JSON.stringify(all)); }
});
`,
    );
    await chmod(join(bin, 'docker-credential-berthtest'), 0o755);
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}:${oldPath}`;
    t.after(() => {
      process.env.PATH = oldPath;
    });
    const path = join(work, 'helper-config', 'config.json');
    const { mkdir: mk } = await import('node:fs/promises');
    await mk(join(work, 'helper-config'), { recursive: true });
    await writeFile(path, JSON.stringify({ credsStore: 'berthtest' }));
    const store = new CredentialStore(path);
    assert.equal(await store.get('localhost:5000'), undefined);
    await store.store('localhost:5000', { username: 'bob', secret: 'pw' });
    assert.deepEqual(await store.get('localhost:5000'), { username: 'bob', secret: 'pw' });
    const file = JSON.parse(await readFile(path, 'utf8'));
    assert.deepEqual(file.auths['localhost:5000'], {}, 'the secret stays in the helper');
    await store.erase('localhost:5000');
    assert.equal(await store.get('localhost:5000'), undefined);
    // credHelpers name a helper per registry; others keep using auths in the file.
    await writeFile(path, JSON.stringify({ credHelpers: { 'reg.example:5000': 'berthtest' }, auths: {} }));
    const perHost = new CredentialStore(path);
    await perHost.store('reg.example:5000', { username: 'dan', secret: 'x' });
    await perHost.store('other.example', { username: 'eve', secret: 'y' });
    const after = JSON.parse(await readFile(path, 'utf8'));
    assert.deepEqual(after.auths['reg.example:5000'], {});
    assert.equal(after.auths['other.example'].auth, Buffer.from('eve:y').toString('base64'));
    assert.deepEqual(await perHost.get('reg.example:5000'), { username: 'dan', secret: 'x' });
    assert.deepEqual(JSON.parse(await readFile(db, 'utf8'))['reg.example:5000'], {
      ServerURL: 'reg.example:5000',
      Username: 'dan',
      Secret: 'x',
    });
  });
});

test('Docker Hub credentials use the legacy key', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-hub-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new CredentialStore(join(dir, 'config.json'));
  await store.store('docker.io', { username: 'u', secret: 'p' });
  const file = JSON.parse(await readFile(store.path, 'utf8'));
  assert.ok(file.auths['https://index.docker.io/v1/']);
  assert.deepEqual(await store.get('docker.io'), { username: 'u', secret: 'p' });
});
