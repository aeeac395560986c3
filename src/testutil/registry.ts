// Test support: the real reference registry (Debian docker-registry) on 127.0.0.1, and a token issuer.
import { type ChildProcess, spawn } from 'node:child_process';
import { createSign, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { selfSignedCert, signedCert } from './certs.js';

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  dir: string;
  /** Requests the token issuer answered (token mode). */
  tokenRequests: { scope: string[]; user?: string }[];
  stop(): Promise<void>;
}

export interface RegistryOpts {
  auth?: { kind: 'htpasswd' | 'token'; user: string; password: string; anonymousPull?: boolean };
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1, written to `<dir>/tls.crt`. */
  tls?: boolean;
  /**
   * With tls: require client certificates signed by a CA of the registry's; one is written to
   * `<dir>/client.cert` and `<dir>/client.key`.
   */
  clientCerts?: boolean;
}

export async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** Starts `docker-registry serve` with a private storage directory; the caller stops it. */
export async function startRegistry(opts: RegistryOpts = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-registry-'));
  const port = await freePort();
  const tokenRequests: TestRegistry['tokenRequests'] = [];
  let issuer: Server | undefined;
  let authYaml = '';
  if (opts.auth?.kind === 'htpasswd') {
    await writeFile(join(dir, 'htpasswd'), `${opts.auth.user}:${bcrypt.hashSync(opts.auth.password, 6).replace(/^\$2b\$/, '$2y$')}\n`);
    authYaml = `auth:\n  htpasswd:\n    realm: berth-test\n    path: ${join(dir, 'htpasswd')}\n`;
  } else if (opts.auth?.kind === 'token') {
    const auth = opts.auth;
    await selfSignedCert(join(dir, 'key.pem'), join(dir, 'cert.pem'), 'berth-test');
    const key = await readFile(join(dir, 'key.pem'), 'utf8');
    const der = new X509Certificate(await readFile(join(dir, 'cert.pem'))).raw;
    issuer = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      const scope = u.searchParams.getAll('scope');
      const header = req.headers.authorization ?? '';
      const [user, password] = header.startsWith('Basic ') ? Buffer.from(header.slice(6), 'base64').toString().split(':', 2) : [];
      tokenRequests.push({ scope, ...(user ? { user } : {}) });
      if (user !== undefined && (user !== auth.user || password !== auth.password)) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        return;
      }
      const authenticated = user === auth.user;
      const access = scope
        .map((s) => s.split(':'))
        .filter((p) => p[0] === 'repository' && p.length >= 3)
        .map((p) => ({ type: 'repository', name: p.slice(1, -1).join(':'), actions: (p.at(-1) ?? '').split(',') }))
        .map((a) => ({ ...a, actions: authenticated ? a.actions : auth.anonymousPull ? a.actions.filter((x) => x === 'pull') : [] }));
      const now = Math.floor(Date.now() / 1000);
      const claims = {
        iss: 'berth-test',
        sub: user ?? '',
        aud: 'berth-registry',
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(8).toString('hex'),
        access,
      };
      const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [der.toString('base64')] }));
      const body = b64url(JSON.stringify(claims));
      const sig = createSign('RSA-SHA256').update(`${head}.${body}`).sign(key);
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ token: `${head}.${body}.${b64url(sig)}`, expires_in: 300 }));
    });
    const ip = await listen(issuer);
    authYaml = `auth:\n  token:\n    realm: http://127.0.0.1:${ip}/token\n    service: berth-registry\n    issuer: berth-test\n    rootcertbundle: ${join(dir, 'cert.pem')}\n`;
  }
  let tlsYaml = '';
  if (opts.tls) {
    await selfSignedCert(join(dir, 'tls.key'), join(dir, 'tls.crt'), '127.0.0.1', ['-addext', 'subjectAltName=IP:127.0.0.1']);
    tlsYaml = `  tls:\n    certificate: ${join(dir, 'tls.crt')}\n    key: ${join(dir, 'tls.key')}\n`;
    if (opts.clientCerts) {
      await selfSignedCert(join(dir, 'client-ca.key'), join(dir, 'client-ca.crt'), 'berth-client-ca');
      await signedCert(dir, { key: join(dir, 'client-ca.key'), cert: join(dir, 'client-ca.crt') }, 'client');
      tlsYaml += `    clientcas:\n      - ${join(dir, 'client-ca.crt')}\n`;
    }
  }
  const config = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${tlsYaml}${authYaml}`;
  await writeFile(join(dir, 'config.yml'), config);
  const proc: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr += d;
  });
  const exited = new Promise<void>((r) => proc.on('close', () => r()));
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if (opts.tls) {
        // Any TLS answer will do: the certificate is checked by the tests, not here.
        const { connect } = await import('node:tls');
        await new Promise<void>((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
            s.end();
            resolve();
          });
          s.on('error', reject);
        });
        break;
      }
      const res = await fetch(`http://${host}/v2/`);
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (proc.exitCode !== null || i > 200) throw new Error(`docker-registry did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    host,
    dir,
    tokenRequests,
    async stop() {
      proc.kill('SIGTERM');
      await exited;
      if (issuer) await new Promise((r) => issuer?.close(r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
