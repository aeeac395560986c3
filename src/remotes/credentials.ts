import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { InvalidArgumentError, NotFoundError, UnavailableError } from '../errdefs/index.js';
import { writeFileAtomic } from '../sys/index.js';

export interface Credentials {
  username: string;
  /** A password, or an identity (refresh) token when `username` is `<token>`. */
  secret: string;
}

/**
 * Credentials a client sent in docker's auth config shape (the Engine API's X-Registry-Auth, CRI's
 * AuthConfig): an identity token, a user and password, or `auth` (base64 `user:password`); none
 * when it holds none.
 */
export function authConfigCredentials(
  v: { username?: string; password?: string; auth?: string; identitytoken?: string } | undefined,
): Credentials | undefined {
  if (!v) return undefined;
  if (v.identitytoken) return { username: '<token>', secret: v.identitytoken };
  let { username, password } = v;
  if (!username && v.auth) {
    const plain = Buffer.from(v.auth, 'base64').toString('utf8');
    const i = plain.indexOf(':');
    if (i > 0) [username, password] = [plain.slice(0, i), plain.slice(i + 1)];
  }
  return username ? { username, secret: password ?? '' } : undefined;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`: the file docker, podman and skopeo share. */
export function dockerConfigPath(): string {
  return join(process.env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json');
}

/** The key docker uses for a registry in `auths`: Docker Hub keeps its legacy URL. */
export function authKey(domain: string): string {
  return domain === 'docker.io' || domain === 'registry-1.docker.io' || domain === 'index.docker.io'
    ? 'https://index.docker.io/v1/'
    : domain;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

/** Reads and writes registry credentials in docker's config file and its credential helpers. */
export class CredentialStore {
  readonly path: string;
  constructor(path: string | undefined = dockerConfigPath()) {
    this.path = path ?? dockerConfigPath();
  }

  async #load(): Promise<DockerConfig> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
    try {
      const c = JSON.parse(text) as DockerConfig;
      if (typeof c !== 'object' || c === null) throw new Error('not an object');
      return c;
    } catch (err) {
      throw new InvalidArgumentError(`${this.path}: invalid JSON: ${(err as Error).message}`);
    }
  }

  async #save(c: DockerConfig): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path, `${JSON.stringify(c, null, '\t')}\n`, { mode: 0o600 });
  }

  #helper(c: DockerConfig, key: string): string | undefined {
    return c.credHelpers?.[key] ?? c.credHelpers?.[key.replace(/^https:\/\/index\.docker\.io\/v1\/$/, 'docker.io')] ?? c.credsStore;
  }

  /** The credentials stored for a registry domain, if any. */
  async get(domain: string): Promise<Credentials | undefined> {
    const c = await this.#load();
    const key = authKey(domain);
    const helper = this.#helper(c, key);
    if (helper) {
      try {
        const out = JSON.parse(await runHelper(helper, 'get', key)) as { Username: string; Secret: string };
        return { username: out.Username, secret: out.Secret };
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      }
    }
    const entry = c.auths?.[key] ?? c.auths?.[`https://${key}`] ?? c.auths?.[`http://${key}`];
    if (!entry) return undefined;
    if (entry.identitytoken) return { username: '<token>', secret: entry.identitytoken };
    if (entry.auth) {
      const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = plain.indexOf(':');
      if (colon < 0) throw new InvalidArgumentError(`${this.path}: auths["${key}"].auth is not base64 of "user:password"`);
      return { username: plain.slice(0, colon), secret: plain.slice(colon + 1) };
    }
    if (entry.username && entry.password) return { username: entry.username, secret: entry.password };
    return undefined;
  }

  /** Stores credentials (in the helper when one is configured, else base64 in the file, mode 0600). */
  async store(domain: string, creds: Credentials): Promise<void> {
    const c = await this.#load();
    const key = authKey(domain);
    const helper = this.#helper(c, key);
    if (helper) {
      await runHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: creds.username, Secret: creds.secret }));
      c.auths = { ...c.auths, [key]: {} };
    } else {
      c.auths = { ...c.auths, [key]: { auth: Buffer.from(`${creds.username}:${creds.secret}`).toString('base64') } };
    }
    await this.#save(c);
  }

  /** Removes stored credentials. @throws NotFoundError when there were none */
  async erase(domain: string): Promise<void> {
    const c = await this.#load();
    const key = authKey(domain);
    const helper = this.#helper(c, key);
    let found = false;
    if (helper) {
      try {
        await runHelper(helper, 'erase', key);
        found = true;
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    if (c.auths && key in c.auths) {
      delete c.auths[key];
      found = true;
    }
    if (!found) throw new NotFoundError(`not logged in to "${domain}"`);
    await this.#save(c);
  }
}

/** Runs `docker-credential-<name> <action>` with `input` on stdin, per docker's credential helper protocol. */
function runHelper(name: string, action: 'get' | 'store' | 'erase', input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(`docker-credential-${name}`, [action], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    p.stderr.on('data', (d: Buffer) => {
      err += d;
    });
    p.on('error', (e) => reject(new UnavailableError(`credential helper "docker-credential-${name}": ${e.message}`, { cause: e })));
    p.on('close', (code) => {
      if (code === 0) resolve(out);
      else if (/credentials not found/i.test(out + err)) reject(new NotFoundError(`credential helper "${name}": credentials not found`));
      else reject(new UnavailableError(`credential helper "docker-credential-${name}" ${action}: ${(out + err).trim() || `exit ${code}`}`));
    });
    p.stdin.end(input);
  });
}
