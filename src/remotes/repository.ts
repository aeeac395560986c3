import {
  FailedPreconditionError,
  hasCode,
  InvalidArgumentError,
  NotFoundError,
  throwIfAborted,
  UnavailableError,
} from '../errdefs/index.js';
import {
  type Descriptor,
  type Digest,
  digestAlgorithm,
  digestOf,
  isIndex,
  isManifest,
  MediaType,
  maxManifestSize,
  parseDigest,
  parseManifestOrIndex,
  type Reference,
} from '../oci/index.js';
import { repositoryScope } from './auth.js';
import { type Response, readCapped, type Session } from './client.js';
import type { RegistryHost } from './hosts.js';
import { discard } from './http.js';

/** What berth asks for when it resolves a reference: indexes first, then manifests, OCI and Docker. */
export const manifestAccept = [MediaType.ociIndex, MediaType.dockerManifestList, MediaType.ociManifest, MediaType.dockerManifest].join(
  ', ',
);

export interface Opts {
  signal?: AbortSignal | undefined;
}

function mediaTypeOf(res: Response): string | undefined {
  const ct = res.headers['content-type']?.split(';')[0]?.trim();
  return ct && (isIndex(ct) || isManifest(ct)) ? ct : undefined;
}

/** Upload sizes above this go up in chunks (PATCH); smaller ones in one PUT. */
export const defaultChunkSize = 64 << 20;

/**
 * One repository of one registry (`domain/path`), spoken to through the OCI distribution API:
 * resolve, fetch, exists, mount, push. Every byte that arrives is checked by the caller's content
 * store; what is read into memory here (manifests) is size-capped and verified here.
 */
export class Repository {
  readonly domain: string;
  readonly path: string;
  readonly #session: Session;

  constructor(session: Session, ref: Pick<Reference, 'domain' | 'path'>) {
    this.#session = session;
    this.domain = ref.domain;
    this.path = ref.path;
  }

  get name(): string {
    return `${this.domain}/${this.path}`;
  }

  #pull = () => [repositoryScope(this.path, ['pull'])];
  #push = () => [repositoryScope(this.path, ['pull', 'push'])];

  /**
   * Resolves a reference (tag or digest) to the descriptor of its manifest or index.
   * @throws NotFoundError, UnauthenticatedError, FailedPreconditionError when the registry's digest is wrong
   */
  async resolve(ref: Reference, opts: Opts = {}): Promise<Descriptor> {
    const tagOrDigest = ref.digest ?? ref.tag ?? 'latest';
    const suffix = `manifests/${tagOrDigest}`;
    const head = await this.#session
      .request(this.domain, this.path, suffix, {
        method: 'HEAD',
        headers: { accept: manifestAccept },
        scopes: this.#pull(),
        capability: 'resolve',
        signal: opts.signal,
      })
      .catch((err: unknown) => {
        if (!hasCode(err, 'NOT_FOUND')) throw err;
        const shown = `${this.name}${ref.digest ? `@${ref.digest}` : `:${tagOrDigest}`}`;
        throw new NotFoundError(`manifest for "${shown}" not found: manifest unknown`, { cause: err });
      });
    await discard(head.body);
    const headDigest = head.headers['docker-content-digest'];
    const size = Number(head.headers['content-length']);
    const mediaType = mediaTypeOf(head);
    const digest = ref.digest ?? (headDigest ? parseDigest(headDigest) : undefined);
    if (ref.digest && headDigest && headDigest !== ref.digest) {
      throw new FailedPreconditionError(`resolve "${this.name}@${ref.digest}": the registry answered digest ${headDigest}`);
    }
    if (digest && mediaType && Number.isSafeInteger(size) && size > 0) return { mediaType, digest, size };
    // The HEAD answer lacked something: fetch the document and describe it from its bytes.
    const { raw, mediaType: mt } = await this.#getManifest(suffix, opts);
    const got = digestOf(raw, ref.digest ? digestAlgorithm(ref.digest) : 'sha256');
    if (digest && got !== digest)
      throw new FailedPreconditionError(`resolve "${this.name}:${tagOrDigest}": content hashes to ${got}, expected ${digest}`);
    return { mediaType: mt, digest: got, size: raw.byteLength };
  }

  async #getManifest(suffix: string, opts: Opts): Promise<{ raw: Uint8Array; mediaType: string }> {
    const res = await this.#session.request(this.domain, this.path, suffix, {
      headers: { accept: manifestAccept },
      scopes: this.#pull(),
      capability: 'pull',
      signal: opts.signal,
    });
    const raw = await readCapped(res.body, res.headers, maxManifestSize, `GET ${res.url}`);
    const declared = mediaTypeOf(res);
    const doc = parseManifestOrIndex(raw, declared);
    return { raw, mediaType: doc.doc.value.mediaType };
  }

  /**
   * Fetches a manifest or index by its descriptor and checks size and digest.
   * @throws FailedPreconditionError when the bytes do not match
   */
  async fetchManifest(desc: Descriptor, opts: Opts = {}): Promise<Uint8Array> {
    if (desc.size > maxManifestSize) throw new InvalidArgumentError(`manifest ${desc.digest}: ${desc.size} bytes, larger than allowed`);
    const res = await this.#session.request(this.domain, this.path, `manifests/${desc.digest}`, {
      headers: { accept: desc.mediaType ? `${desc.mediaType}, ${manifestAccept}` : manifestAccept },
      scopes: this.#pull(),
      capability: 'pull',
      signal: opts.signal,
    });
    const raw = await readCapped(res.body, res.headers, desc.size, `GET ${res.url}`);
    const got = digestOf(raw, digestAlgorithm(desc.digest));
    if (raw.byteLength !== desc.size || got !== desc.digest) {
      throw new FailedPreconditionError(`manifest ${desc.digest}: got ${raw.byteLength} bytes hashing to ${got}`);
    }
    return raw;
  }

  /**
   * Streams a blob (or a manifest, by media type) from `offset`, using an HTTP Range request to
   * resume. The caller checks the bytes (the content store does, as they are written).
   */
  async *fetch(desc: Descriptor, opts: Opts & { offset?: number } = {}): AsyncIterable<Uint8Array> {
    const offset = opts.offset ?? 0;
    const kind = isManifest(desc.mediaType) || isIndex(desc.mediaType) ? 'manifests' : 'blobs';
    const headers: Record<string, string> = kind === 'manifests' ? { accept: `${desc.mediaType}, ${manifestAccept}` } : {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const res = await this.#session.request(this.domain, this.path, `${kind}/${desc.digest}`, {
      headers,
      scopes: this.#pull(),
      capability: 'pull',
      signal: opts.signal,
    });
    // A registry that ignores Range sends everything: skip what the caller already has.
    let skip = offset > 0 && res.status === 200 ? offset : 0;
    let received = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      throwIfAborted(opts.signal);
      let c: Uint8Array = chunk;
      if (skip > 0) {
        const n = Math.min(skip, c.byteLength);
        skip -= n;
        c = c.subarray(n);
        if (c.byteLength === 0) continue;
      }
      received += c.byteLength;
      if (offset + received > desc.size)
        throw new FailedPreconditionError(`blob ${desc.digest}: more than the ${desc.size} bytes expected`);
      yield c;
    }
  }

  /** Whether the registry has the blob (HEAD). */
  async blobExists(desc: Pick<Descriptor, 'digest'>, opts: Opts = {}): Promise<boolean> {
    const res = await this.#session.request(this.domain, this.path, `blobs/${desc.digest}`, {
      method: 'HEAD',
      scopes: this.#push(),
      capability: 'push',
      signal: opts.signal,
      accept: [404],
    });
    await discard(res.body);
    return res.status === 200;
  }

  /**
   * Asks the registry to link a blob from another repository of the same registry (no transfer).
   * @returns false when the registry declined (the blob must be uploaded)
   */
  async mountBlob(desc: Pick<Descriptor, 'digest'>, from: string, opts: Opts = {}): Promise<boolean> {
    const res = await this.#session.request(
      this.domain,
      this.path,
      `blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`,
      {
        method: 'POST',
        scopes: [...this.#push(), repositoryScope(from, ['pull'])],
        capability: 'push',
        signal: opts.signal,
        idempotent: true,
      },
    );
    await discard(res.body);
    if (res.status === 201) return true;
    // 202: the registry opened an upload instead; cancel it, the caller uploads.
    if (res.status === 202 && res.headers.location) await this.#cancel(res, opts);
    return false;
  }

  async #cancel(res: Response, opts: Opts): Promise<void> {
    try {
      const del = await this.#session.requestURL(this.domain, res.host, new URL(res.headers.location as string, res.url).toString(), {
        method: 'DELETE',
        scopes: this.#push(),
        capability: 'push',
        signal: opts.signal,
        accept: [404, 405],
      });
      await discard(del.body);
    } catch {
      // an abandoned upload expires on the registry
    }
  }

  /**
   * Uploads a blob: one PUT when it is small, else PATCH chunks then PUT. `open(offset)` gives the
   * bytes from an offset, so a chunk can be sent again after a failure.
   */
  async pushBlob(
    desc: Descriptor,
    open: (start: number, end: number) => AsyncIterable<Uint8Array>,
    opts: Opts & { chunkSize?: number; onProgress?: (offset: number) => void } = {},
  ): Promise<void> {
    const chunkSize = opts.chunkSize ?? defaultChunkSize;
    const start = await this.#session.request(this.domain, this.path, 'blobs/uploads/', {
      method: 'POST',
      headers: { 'content-length': '0' },
      scopes: this.#push(),
      capability: 'push',
      signal: opts.signal,
      idempotent: true,
    });
    await discard(start.body);
    if (start.status !== 202 || !start.headers.location) {
      throw new UnavailableError(`push ${desc.digest} to ${this.name}: upload not started (${start.status})`);
    }
    let location = new URL(start.headers.location, start.url).toString();
    const host: RegistryHost = start.host;
    const withDigest = (loc: string) => {
      const u = new URL(loc);
      u.searchParams.set('digest', desc.digest);
      return u.toString();
    };
    if (desc.size <= chunkSize) {
      await this.#upload(
        host,
        withDigest(location),
        'PUT',
        201,
        { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        () => open(0, desc.size),
        opts,
      );
      opts.onProgress?.(desc.size);
      return;
    }
    for (let offset = 0; offset < desc.size; ) {
      const end = Math.min(offset + chunkSize, desc.size);
      const headers = {
        'content-type': 'application/octet-stream',
        'content-length': String(end - offset),
        'content-range': `${offset}-${end - 1}`,
      };
      const patch = await this.#upload(host, location, 'PATCH', 202, headers, () => open(offset, end), opts);
      if (!patch.headers.location) throw new UnavailableError(`push ${desc.digest} chunk at ${offset}: no upload location`);
      location = new URL(patch.headers.location, patch.url).toString();
      offset = end;
      opts.onProgress?.(offset);
    }
    await this.#upload(host, withDigest(location), 'PUT', 201, { 'content-length': '0' }, undefined, opts);
  }

  /** One request of an upload session, to the location the registry gave; `want` is the status that means success. */
  async #upload(
    host: RegistryHost,
    url: string,
    method: 'PUT' | 'PATCH',
    want: number,
    headers: Record<string, string>,
    body: (() => AsyncIterable<Uint8Array>) | undefined,
    opts: Opts,
  ): Promise<Response> {
    const res = await this.#session.requestURL(this.domain, host, url, {
      method,
      headers,
      ...(body ? { body } : {}),
      scopes: this.#push(),
      capability: 'push',
      signal: opts.signal,
      // A PATCH appends: sent twice it would corrupt the upload.
      idempotent: method === 'PUT',
    });
    await discard(res.body);
    if (res.status !== want) throw new UnavailableError(`push to ${this.name}: ${method} ${res.status}`);
    return res;
  }

  /** Uploads a manifest or index under a tag or its digest, with its media type as the content type. */
  async pushManifest(desc: Descriptor, raw: Uint8Array, tagOrDigest: string, opts: Opts = {}): Promise<Digest> {
    const res = await this.#session.request(this.domain, this.path, `manifests/${tagOrDigest}`, {
      method: 'PUT',
      headers: { 'content-type': desc.mediaType },
      body: raw,
      scopes: this.#push(),
      capability: 'push',
      signal: opts.signal,
      idempotent: true,
    });
    await discard(res.body);
    if (res.status !== 201) throw new UnavailableError(`push manifest ${desc.digest} to ${this.name}:${tagOrDigest}: ${res.status}`);
    const answered = res.headers['docker-content-digest'];
    if (answered && answered !== desc.digest) {
      throw new FailedPreconditionError(`push manifest to ${this.name}: the registry stored ${answered}, expected ${desc.digest}`);
    }
    return desc.digest;
  }
}
