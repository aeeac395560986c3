import type { IncomingMessage } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { rootCertificates } from 'node:tls';

import {
  BerthError,
  FailedPreconditionError,
  hasCode,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  throwIfAborted,
  UnauthenticatedError,
  UnavailableError,
} from '../errdefs/index.js';
import { parseWWWAuthenticate, type Token } from './auth.js';
import { CredentialStore, type Credentials } from './credentials.js';
import { type Capability, type HostsOpts, type RegistryHost, registryHosts } from './hosts.js';
import { Connections, discard, type HttpResponse, type RequestBody, type TlsOpts } from './http.js';

/** Plain data (structured-cloneable), so that a worker thread can make an equal session. */
export interface SessionOpts {
  hosts?: HostsOpts;
  /** docker's config.json to read credentials from (default: {@link dockerConfigPath}); `null` for anonymous only. */
  credentialsFile?: string | null;
  /** Explicit credentials per domain, ahead of the store (e.g. `berth login` testing them). */
  auth?: Record<string, Credentials>;
  userAgent?: string;
  /** Attempts for a retryable failure (connection reset, 429, 5xx), with exponential backoff. */
  retries?: number;
  /** First backoff delay, ms. */
  backoff?: number;
}

export interface RequestOpts {
  method?: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  /** A body, or a function that makes it again for a retry. */
  body?: RequestBody | (() => RequestBody);
  /** Scopes to ask a token for, e.g. `repository:a/b:pull`. */
  scopes: string[];
  capability: Capability;
  signal?: AbortSignal | undefined;
  /** Statuses returned to the caller instead of thrown (404 for an existence check, say). */
  accept?: number[];
  /** Whether the request may be sent again after a failure; GET and HEAD always may. */
  idempotent?: boolean;
}

export interface Response {
  status: number;
  headers: Record<string, string>;
  body: IncomingMessage;
  url: string;
  host: RegistryHost;
}

/** Token answers are small JSON documents; anything larger is refused. */
const maxTokenResponse = 1 << 20;

/** Waits `ms`; an abort rejects with an AbortError (code ABORTED). */
const sleep = (ms: number, signal?: AbortSignal) => delay(ms, undefined, { signal });

function flatHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/**
 * Reads a response body into memory, refusing more than `max` bytes (declared or received): every
 * answer comes from a stranger.
 * @throws FailedPreconditionError when the body is larger
 */
export async function readCapped(
  body: IncomingMessage,
  headers: Record<string, string | string[] | undefined>,
  max: number,
  what: string,
): Promise<Buffer> {
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    body.destroy();
    throw new FailedPreconditionError(`${what}: ${declared} bytes, more than the ${max} expected`);
  }
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    n += chunk.byteLength;
    if (n > max) {
      body.destroy();
      throw new FailedPreconditionError(`${what}: more than the ${max} bytes expected`);
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

/** The first `max` bytes of a body, as text; the rest is dropped (for error details). */
async function readStart(body: IncomingMessage, max: number): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    parts.push(chunk);
    n += chunk.byteLength;
    if (n >= max) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(parts).subarray(0, max).toString('utf8');
}

/** Whether a failure may pass if the request is sent again: resets, timeouts, 429 and 5xx. */
export function isRetryable(err: unknown): boolean {
  if (hasCode(err, 'UNAVAILABLE')) return true;
  const code = (err as { code?: string }).code ?? '';
  return /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|ENETUNREACH|EAI_AGAIN)$/.test(code);
}

/** Turns a registry's error answer into a berth error naming what was asked. */
async function registryError(res: Response, what: string): Promise<BerthError> {
  let detail = '';
  try {
    const text = await readStart(res.body, 4096);
    const j = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    detail = (j.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
  } catch {
    // not JSON: the status says enough
  }
  const msg = `${what}: ${res.status}${detail ? ` ${detail}` : ''}`;
  if (res.status === 400) return new InvalidArgumentError(msg);
  if (res.status === 401) return new UnauthenticatedError(msg);
  if (res.status === 403) return new PermissionDeniedError(msg);
  if (res.status === 404) return new NotFoundError(msg);
  if (res.status === 409 || res.status === 412 || res.status === 416) return new FailedPreconditionError(msg);
  if (res.status === 429 || res.status >= 500) return new UnavailableError(msg);
  return new InternalError(msg);
}

/**
 * What one process keeps across registry requests: host endpoints, TLS agents, credentials and
 * tokens (cached until they expire). Requests go through {@link Session.request}.
 */
export class Session {
  readonly opts: SessionOpts;
  readonly #credentials: CredentialStore | null;
  readonly #byHost = new Map<string, Connections>();
  readonly #tokens = new Map<string, Token>();
  /** The scheme a host asked for last time, so that later requests authorize up front. */
  readonly #schemes = new Map<string, { scheme: string; params: Record<string, string> }>();
  readonly #hosts = new Map<string, Promise<RegistryHost[]>>();

  constructor(opts: SessionOpts = {}) {
    this.opts = opts;
    this.#credentials = opts.credentialsFile === null ? null : new CredentialStore(opts.credentialsFile);
  }

  hosts(domain: string): Promise<RegistryHost[]> {
    let h = this.#hosts.get(domain);
    if (!h) {
      h = registryHosts(domain, this.opts.hosts);
      this.#hosts.set(domain, h);
    }
    return h;
  }

  async credentials(domain: string): Promise<Credentials | undefined> {
    return this.opts.auth?.[domain] ?? (await this.#credentials?.get(domain));
  }

  /** The connections to host `h` with its TLS settings; without a host, to others (token realms, redirects). */
  #connections(h?: RegistryHost): Connections {
    const key = h ? `${h.scheme}://${h.host}` : '';
    let c = this.#byHost.get(key);
    if (!c) {
      const tls: TlsOpts = {};
      if (h?.ca?.length) tls.ca = [...rootCertificates, ...h.ca];
      if (h?.clientCerts?.[0]) {
        tls.cert = h.clientCerts[0].cert;
        tls.key = h.clientCerts[0].key;
      }
      if (h?.skipVerify) tls.rejectUnauthorized = false;
      c = new Connections(tls);
      this.#byHost.set(key, c);
    }
    return c;
  }

  /** Closes the kept-alive connections; call it when the session's requests are done. */
  async close(): Promise<void> {
    for (const c of this.#byHost.values()) c.destroy();
    this.#byHost.clear();
  }

  /**
   * Sends a request for `<domain>/<repository>` to the first host with the capability that
   * answers, authorizing as the registry asks (Bearer token or Basic, once per challenge), retrying
   * resets, 429 and 5xx with backoff, following redirects (without credentials to other hosts).
   * @throws NotFoundError, UnauthenticatedError, PermissionDeniedError, UnavailableError, …
   */
  async request(domain: string, repository: string, suffix: string, opts: RequestOpts): Promise<Response> {
    const hosts = (await this.hosts(domain)).filter((h) => h.capabilities.has(opts.capability));
    if (hosts.length === 0) throw new FailedPreconditionError(`registry "${domain}": no host configured for ${opts.capability}`);
    let lastErr: unknown;
    for (const [i, h] of hosts.entries()) {
      const url = `${h.scheme}://${h.host}${h.path}/${repository}/${suffix}`;
      try {
        const res = await this.#withRetries(domain, h, url, opts);
        // A mirror that lacks the content hands over to the next host.
        if (res.status === 404 && i < hosts.length - 1 && !(opts.accept ?? []).includes(404)) {
          await discard(res.body);
          continue;
        }
        return res;
      } catch (err) {
        lastErr = err;
        if (i === hosts.length - 1 || !(isRetryable(err) || hasCode(err, 'NOT_FOUND'))) throw err;
      }
    }
    throw lastErr;
  }

  /**
   * Checks that the registry answers and accepts this session's credentials (`GET /v2/`, as
   * `docker login` does): a token is fetched with them when the registry asks for one.
   * @throws UnauthenticatedError when the credentials are refused
   */
  async ping(domain: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const [h] = await this.hosts(domain);
    if (!h) throw new FailedPreconditionError(`registry "${domain}": no host configured`);
    const res = await this.#withRetries(domain, h, `${h.scheme}://${h.host}${h.path}/`, {
      scopes: [],
      capability: 'pull',
      signal: opts.signal,
    });
    await discard(res.body);
  }

  /** Sends to an absolute URL a registry gave (an upload location). */
  async requestURL(domain: string, host: RegistryHost, url: string, opts: RequestOpts): Promise<Response> {
    return this.#withRetries(domain, host, url, opts);
  }

  async #withRetries(domain: string, h: RegistryHost, url: string, opts: RequestOpts): Promise<Response> {
    const attempts = Math.max(1, this.opts.retries ?? 5);
    const idempotent = opts.idempotent ?? (opts.method === undefined || opts.method === 'GET' || opts.method === 'HEAD');
    const what = `${opts.method ?? 'GET'} ${url}`;
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(opts.signal);
      let res: Response | undefined;
      try {
        res = await this.#authorized(domain, h, url, opts);
        if (res.status === 429 || res.status >= 500) {
          const retryAfter = Number(res.headers['retry-after']);
          const err = await registryError(res, what);
          if (!idempotent || attempt >= attempts) throw err;
          await sleep(
            Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, 30_000) : this.#delay(attempt),
            opts.signal,
          );
          continue;
        }
        if (res.status >= 400 && !(opts.accept ?? []).includes(res.status)) throw await registryError(res, what);
        return res;
      } catch (err) {
        if (!idempotent || attempt >= attempts || !isRetryable(err) || hasCode(err, 'ABORTED')) {
          if (err instanceof BerthError) throw err;
          const code = (err as { code?: string }).code ?? '';
          if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(code)) {
            throw new UnavailableError(
              `${what}: TLS: ${(err as Error).message} (trust the registry's CA in certs.d/<host>/hosts.toml or ca.crt)`,
              {
                cause: err,
              },
            );
          }
          // Network failures (DNS, refused, reset) are one clear line, not a stack.
          if (isRetryable(err) || /^E[A-Z]+$/.test(code)) {
            throw new UnavailableError(`${what}: ${(err as Error).message}`, { cause: err });
          }
          throw err;
        }
        await sleep(this.#delay(attempt), opts.signal);
      }
    }
  }

  #delay(attempt: number): number {
    const base = this.opts.backoff ?? 250;
    return Math.min(base * 2 ** (attempt - 1), 10_000) * (0.5 + Math.random() / 2);
  }

  /** One request with authorization: up front when the host's scheme is known, else after its 401. */
  async #authorized(domain: string, h: RegistryHost, url: string, opts: RequestOpts): Promise<Response> {
    let auth = await this.#authorization(domain, h, opts.scopes, opts.signal, false);
    for (let round = 0; ; round++) {
      const res = await this.#send(h, url, opts, auth);
      if (res.status !== 401 || round > 0) return res;
      const header = res.headers['www-authenticate'];
      await discard(res.body);
      if (!header) return this.#send(h, url, opts, auth);
      const challenge = parseWWWAuthenticate(header).find((c) => c.scheme === 'bearer' || c.scheme === 'basic');
      if (!challenge)
        throw new UnauthenticatedError(`${opts.method ?? 'GET'} ${url}: unsupported authentication "${header.slice(0, 100)}"`);
      this.#schemes.set(h.host, challenge);
      const challengeScope = challenge.params.scope;
      const scopes = challengeScope && !opts.scopes.includes(challengeScope) ? [...opts.scopes, challengeScope] : opts.scopes;
      auth = await this.#authorization(domain, h, scopes, opts.signal, true);
      if (auth === undefined) {
        throw new UnauthenticatedError(`${opts.method ?? 'GET'} ${url}: authentication required (run "berth login ${domain}")`);
      }
    }
  }

  async #authorization(
    domain: string,
    h: RegistryHost,
    scopes: string[],
    signal: AbortSignal | undefined,
    fresh: boolean,
  ): Promise<string | undefined> {
    const challenge = this.#schemes.get(h.host);
    if (!challenge) return undefined;
    const creds = await this.credentials(domain);
    if (challenge.scheme === 'basic') {
      return creds ? `Basic ${Buffer.from(`${creds.username}:${creds.secret}`).toString('base64')}` : undefined;
    }
    const key = `${h.host}|${[...scopes].sort().join(' ')}`;
    const cached = this.#tokens.get(key);
    if (cached && !fresh && cached.expiresAt > Date.now() + 5_000) return `Bearer ${cached.token}`;
    const token = await this.#fetchToken(challenge.params, scopes, creds, signal);
    this.#tokens.set(key, token);
    return `Bearer ${token.token}`;
  }

  /** Asks the token service for a token (docker's token protocol; OAuth2 refresh for identity tokens). */
  async #fetchToken(
    params: Record<string, string>,
    scopes: string[],
    creds: Credentials | undefined,
    signal?: AbortSignal,
  ): Promise<Token> {
    const realm = params.realm;
    if (!realm) throw new UnauthenticatedError('registry token challenge has no realm');
    let realmURL: URL;
    try {
      realmURL = new URL(realm);
    } catch {
      throw new UnauthenticatedError(`registry token realm "${realm.slice(0, 100)}" is not a URL`);
    }
    const headers: Record<string, string> = { 'user-agent': this.#userAgent() };
    let res: HttpResponse;
    if (creds?.username === '<token>') {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.secret,
        client_id: 'berth',
        service: params.service ?? '',
      });
      for (const s of scopes) form.append('scope', s);
      res = await this.#connections().request(realmURL, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
        signal,
      });
    } else {
      if (params.service) realmURL.searchParams.set('service', params.service);
      for (const s of scopes) realmURL.searchParams.append('scope', s);
      if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.secret}`).toString('base64')}`;
      res = await this.#connections().request(realmURL, { method: 'GET', headers, signal });
    }
    const text = (await readCapped(res.body, res.headers, maxTokenResponse, `token from ${realmURL.origin}`)).toString('utf8');
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new UnauthenticatedError(
        `token from ${realmURL.origin}: ${res.statusCode}: ${creds ? 'credentials rejected' : 'anonymous access refused'}`,
      );
    }
    if (res.statusCode >= 400) {
      const Err = res.statusCode === 429 || res.statusCode >= 500 ? UnavailableError : UnauthenticatedError;
      throw new Err(`token from ${realmURL.origin}: ${res.statusCode}`);
    }
    let j: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      j = JSON.parse(text);
    } catch {
      throw new UnauthenticatedError(`token from ${realmURL.origin}: not JSON`);
    }
    const token = j.token ?? j.access_token;
    if (!token) throw new UnauthenticatedError(`token from ${realmURL.origin}: no token in the answer`);
    const issued = j.issued_at ? Date.parse(j.issued_at) : Date.now();
    const lifetime = (j.expires_in && j.expires_in > 0 ? j.expires_in : 60) * 1000;
    return { token, expiresAt: (Number.isFinite(issued) ? Math.min(issued, Date.now()) : Date.now()) + lifetime };
  }

  #userAgent(): string {
    return this.opts.userAgent ?? 'berth';
  }

  async #send(h: RegistryHost, url: string, opts: RequestOpts, authorization: string | undefined): Promise<Response> {
    let current = url;
    for (let hop = 0; hop < 6; hop++) {
      const sameHost = new URL(current).host === h.host;
      const headers: Record<string, string> = { 'user-agent': this.#userAgent(), ...h.headers, ...opts.headers };
      if (authorization && sameHost) headers.authorization = authorization;
      const body = typeof opts.body === 'function' ? opts.body() : opts.body;
      const r = await this.#connections(sameHost ? h : undefined).request(new URL(current), {
        method: opts.method ?? 'GET',
        headers,
        body,
        signal: opts.signal,
      });
      const res: Response = { status: r.statusCode, headers: flatHeaders(r.headers), body: r.body, url: current, host: h };
      const location = res.headers.location;
      if (
        [301, 302, 303, 307, 308].includes(res.status) &&
        location &&
        (opts.method ?? 'GET') !== 'PUT' &&
        (opts.method ?? 'GET') !== 'POST'
      ) {
        await discard(r.body);
        current = new URL(location, current).toString();
        continue;
      }
      return res;
    }
    throw new UnavailableError(`${opts.method ?? 'GET'} ${url}: too many redirects`);
  }
}
