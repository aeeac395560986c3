import { readdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { InvalidArgumentError } from '../errdefs/index.js';

export type Capability = 'pull' | 'resolve' | 'push';

/** One endpoint that serves a registry's repositories: the registry itself or a mirror. */
export interface RegistryHost {
  /** `host[:port]` to connect to. */
  host: string;
  scheme: 'http' | 'https';
  /** The API root, `/v2` unless a hosts.toml `override_path` says otherwise. */
  path: string;
  capabilities: ReadonlySet<Capability>;
  /** PEM CA certificates to trust, beside the system's. */
  ca?: string[];
  /** PEM client certificate and key pairs. */
  clientCerts?: { cert: string; key: string }[];
  skipVerify?: boolean;
  headers?: Record<string, string>;
}

export interface HostsOpts {
  /**
   * Directories holding containerd's `certs.d` layout: `<dir>/<host>/hosts.toml`, or docker's
   * `<dir>/<host>/{ca.crt,client.cert,client.key}`. The first that has the host wins.
   */
  configDirs?: string[];
  /** Hosts reached over plain HTTP (loopback always is). */
  insecure?: string[];
  /** Plain HTTP for every host (containerd's `--plain-http`). */
  plainHttp?: boolean;
}

/** `/etc/berth/certs.d`, then containerd's and docker's, unless BERTH_HOSTS_DIR names others (colon-separated). */
export function defaultHostsDirs(): string[] {
  const env = process.env.BERTH_HOSTS_DIR;
  if (env) return env.split(':').filter(Boolean);
  return ['/etc/berth/certs.d', '/etc/containerd/certs.d', '/etc/docker/certs.d'];
}

/** Whether `host[:port]` names this machine: loopback addresses and localhost are reached over HTTP. */
export function isLoopback(host: string): boolean {
  let h = host;
  if (h.startsWith('[')) h = h.slice(1, h.indexOf(']'));
  else if (h.lastIndexOf(':') > 0 && isIP(h) !== 6) h = h.slice(0, h.lastIndexOf(':'));
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1';
  return false;
}

const all: ReadonlySet<Capability> = new Set(['pull', 'resolve', 'push']);

/** The endpoint a registry domain is served from: `docker.io` is `registry-1.docker.io`. */
function defaultHost(domain: string, opts: HostsOpts): RegistryHost {
  const host = domain === 'docker.io' ? 'registry-1.docker.io' : domain;
  const plain = opts.plainHttp || isLoopback(domain) || (opts.insecure ?? []).includes(domain);
  return { host, scheme: plain ? 'http' : 'https', path: '/v2', capabilities: all };
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function asStringList(v: unknown, what: string): string[] {
  if (v === undefined) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw new InvalidArgumentError(`hosts.toml: ${what}: expected a string or a list of strings`);
}

async function hostFromToml(url: string, o: Record<string, unknown>, base: string, fallback: RegistryHost): Promise<RegistryHost> {
  let u: URL;
  try {
    u = new URL(url.includes('://') ? url : `https://${url}`);
  } catch {
    throw new InvalidArgumentError(`hosts.toml: bad host "${url}"`);
  }
  const overridePath = o.override_path === true;
  const path = overridePath ? u.pathname.replace(/\/$/, '') : `${u.pathname.replace(/\/$/, '').replace(/\/v2$/, '')}/v2`;
  const caps = o.capabilities === undefined ? all : new Set(asStringList(o.capabilities, 'capabilities') as Capability[]);
  const h: RegistryHost = { host: u.host, scheme: u.protocol === 'http:' ? 'http' : 'https', path, capabilities: caps };
  if (u.host === fallback.host && !url.includes('://')) h.scheme = fallback.scheme;
  const resolvePath = (p: string) => (p.startsWith('/') ? p : join(base, p));
  const ca = asStringList(o.ca, 'ca');
  if (ca.length) h.ca = await Promise.all(ca.map((p) => readFile(resolvePath(p), 'utf8')));
  if (o.client !== undefined) {
    const pairs = (typeof o.client === 'string' ? [o.client] : (o.client as unknown[])).map((c) =>
      Array.isArray(c) ? (c as string[]) : [c as string, (c as string).replace(/\.cert$|\.crt$/, '.key')],
    );
    h.clientCerts = await Promise.all(
      pairs.map(async ([cert, key]) => ({
        cert: await readFile(resolvePath(cert as string), 'utf8'),
        key: await readFile(resolvePath(key as string), 'utf8'),
      })),
    );
  }
  if (o.skip_verify === true) h.skipVerify = true;
  if (o.header && typeof o.header === 'object') {
    h.headers = Object.fromEntries(
      Object.entries(o.header as Record<string, unknown>).map(([k, v]) => [k, asStringList(v, `header.${k}`).join(', ')]),
    );
  }
  return h;
}

/** Docker's certs.d: `*.crt` are CAs, `*.cert` with the matching `*.key` are client pairs. */
async function dockerCertsDir(dir: string, h: RegistryHost): Promise<RegistryHost | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  const ca = await Promise.all(names.filter((n) => n.endsWith('.crt')).map((n) => readFile(join(dir, n), 'utf8')));
  const clientCerts = await Promise.all(
    names
      .filter((n) => n.endsWith('.cert') && names.includes(n.replace(/\.cert$/, '.key')))
      .map(async (n) => ({
        cert: await readFile(join(dir, n), 'utf8'),
        key: await readFile(join(dir, n.replace(/\.cert$/, '.key')), 'utf8'),
      })),
  );
  if (!ca.length && !clientCerts.length) return undefined;
  return { ...h, scheme: 'https', ...(ca.length ? { ca } : {}), ...(clientCerts.length ? { clientCerts } : {}) };
}

/**
 * The endpoints to try for a registry domain, in order: the mirrors of its hosts.toml, then the
 * registry itself (unless hosts.toml names a `server` of its own).
 * @throws InvalidArgumentError for a malformed hosts.toml
 */
export async function registryHosts(domain: string, opts: HostsOpts = {}): Promise<RegistryHost[]> {
  const fallback = defaultHost(domain, opts);
  for (const base of opts.configDirs ?? defaultHostsDirs()) {
    for (const name of [domain, '_default']) {
      const dir = join(base, name);
      const text = await readOptional(join(dir, 'hosts.toml'));
      if (text === undefined) {
        if (name === domain) {
          const docker = await dockerCertsDir(dir, fallback);
          if (docker) return [docker];
        }
        continue;
      }
      let doc: Record<string, unknown>;
      try {
        doc = parseToml(text) as Record<string, unknown>;
      } catch (err) {
        throw new InvalidArgumentError(`${join(dir, 'hosts.toml')}: ${(err as Error).message}`);
      }
      const hosts: RegistryHost[] = [];
      const table = (doc.host ?? {}) as Record<string, Record<string, unknown>>;
      for (const [url, o] of Object.entries(table)) hosts.push(await hostFromToml(url, o, dir, fallback));
      // The top level describes the registry itself (`server`, or the default endpoint).
      const server = typeof doc.server === 'string' ? doc.server : `${fallback.scheme}://${fallback.host}`;
      hosts.push(await hostFromToml(server, doc, dir, fallback));
      return hosts;
    }
  }
  return [fallback];
}
