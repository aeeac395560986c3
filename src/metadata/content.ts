import type { BlobReader, Info, IngestStatus, Labels, LocalStore, LocalWriter, Opts, Store, Writer, WriterOpts } from '../content/index.js';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError, throwIfAborted } from '../errdefs/index.js';
import { type Descriptor, type Digest, parseDigest } from '../oci/index.js';
import { type MetadataDB, parseLabels } from './db.js';
import { mergeLabels, validateLabels } from './identifiers.js';
import type { NamespaceStore } from './namespaces.js';
import { ScopedStore } from './scoped.js';

interface Row {
  digest: string;
  size: number;
  labels: string;
  created_at: number;
  updated_at: number;
}

const toInfo = (r: Row): Info => ({
  digest: r.digest as Digest,
  size: r.size,
  labels: parseLabels(r.labels),
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
});

/**
 * The content store as one namespace sees it. Blobs are stored once on disk (the local store);
 * a namespace sees a blob only while it holds a reference to it. Making a blob visible (link into
 * place + reference) and removing the last reference (+ unlink) each run inside one database write
 * transaction, which serialises them across processes.
 *
 * Content is shared: a writer expecting a digest already on disk for another namespace adds the
 * reference and reports AlreadyExists, so nothing is transferred twice.
 */
export class NamespacedContentStore extends ScopedStore implements Store {
  readonly #local: LocalStore;

  constructor(db: MetadataDB, local: LocalStore, namespaces: NamespaceStore, namespace: string) {
    super(db, namespaces, namespace);
    this.#local = local;
  }

  #row(digest: Digest): Row | undefined {
    return this.db.stmt('SELECT * FROM blobs WHERE namespace = ? AND digest = ?').get(this.namespace, digest) as Row | undefined;
  }

  #notFound(digest: Digest): never {
    this.namespaces.get(this.namespace);
    throw new NotFoundError(`content "${digest}": not found`);
  }

  /** Adds this namespace's reference; call inside a write transaction. */
  #reference(digest: Digest, size: number, labels: Labels): void {
    this.namespaces.ensureSync(this.namespace);
    const now = Date.now();
    this.db.sqlite
      .prepare(
        `INSERT INTO blobs (namespace, digest, size, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (namespace, digest) DO NOTHING`,
      )
      .run(this.namespace, digest, size, JSON.stringify(labels), now, now);
  }

  async reader(desc: Pick<Descriptor, 'digest'>, opts?: Opts): Promise<BlobReader> {
    const digest = parseDigest(desc.digest);
    if (!this.#row(digest)) this.#notFound(digest);
    return this.#local.reader({ digest }, opts);
  }

  async info(digest: Digest, opts?: Opts): Promise<Info> {
    throwIfAborted(opts?.signal);
    parseDigest(digest);
    const r = this.#row(digest);
    if (!r) this.#notFound(digest);
    return toInfo(r);
  }

  async update(digest: Digest, labels: Labels, opts?: Opts): Promise<Info> {
    throwIfAborted(opts?.signal);
    parseDigest(digest);
    return this.db.immediate(() => {
      const r = this.#row(digest);
      if (!r) this.#notFound(digest);
      const merged = mergeLabels(parseLabels(r.labels), labels);
      const now = Date.now();
      this.db.sqlite
        .prepare('UPDATE blobs SET labels = ?, updated_at = ? WHERE namespace = ? AND digest = ?')
        .run(JSON.stringify(merged), now, this.namespace, digest);
      return toInfo({ ...r, labels: JSON.stringify(merged), updated_at: now });
    });
  }

  async *list(opts?: Opts): AsyncIterable<Info> {
    const rows = this.db.read(() => {
      this.namespaces.get(this.namespace);
      return this.db.stmt('SELECT * FROM blobs WHERE namespace = ? ORDER BY digest').all(this.namespace) as Row[];
    });
    for (const r of rows) {
      throwIfAborted(opts?.signal);
      yield toInfo(r);
    }
  }

  /** Drops this namespace's reference; the bytes go when no namespace references them. */
  async delete(digest: Digest, opts?: Opts): Promise<void> {
    throwIfAborted(opts?.signal);
    parseDigest(digest);
    const last = this.db.immediate(() => {
      const r = this.db.stmt('DELETE FROM blobs WHERE namespace = ? AND digest = ?').run(this.namespace, digest);
      if (r.changes === 0) this.#notFound(digest);
      return this.#references(digest) === 0;
    });
    // Unlinked in a second transaction: a crash in between leaves an orphan blob (swept later), never a dangling reference.
    if (last) {
      this.db.immediate(() => {
        if (this.#references(digest) === 0) this.#local.removeSync(digest);
      });
    }
  }

  #references(digest: Digest): number {
    return (this.db.stmt('SELECT count(*) AS n FROM blobs WHERE digest = ?').get(digest) as { n: number }).n;
  }

  async writer(ref: string, opts?: WriterOpts): Promise<Writer> {
    throwIfAborted(opts?.signal);
    validateRef(ref);
    const expected = opts?.expected;
    if (expected) {
      const digest = parseDigest(expected.digest);
      if (this.#row(digest)) {
        await this.#local.discardStale(this.#key(ref));
        throw new AlreadyExistsError(`content "${digest}": already exists`);
      }
      const shared = this.db.immediate(() => {
        const onDisk = this.#local.existsSync(digest);
        if (!onDisk) return false;
        if (expected.size > 0 && onDisk.size !== expected.size) {
          throw new FailedPreconditionError(`content "${digest}": size ${onDisk.size} on disk, expected ${expected.size}`);
        }
        this.#reference(digest, onDisk.size, {});
        return true;
      });
      if (shared) {
        await this.#local.discardStale(this.#key(ref));
        throw new AlreadyExistsError(`content "${digest}": already exists`);
      }
    }
    // Starting an ingest is a write into the namespace: it exists from now on, as in containerd.
    if (!this.namespaces.exists(this.namespace)) this.db.immediate(() => this.namespaces.ensureSync(this.namespace));
    const local = await this.#local.writer(this.#key(ref), opts);
    return new NamespacedWriter(this, local, ref);
  }

  /** Commits a local writer and references the blob in this namespace, in one transaction. */
  commitWriter(local: LocalWriter, size: number, expected: Digest | undefined, opts: Opts & { labels?: Labels } = {}): Promise<Digest> {
    const labels = validateLabels(opts.labels ?? {});
    return local.commit(size, expected, {
      ...opts,
      guard: (publish) =>
        this.db.immediate(() => {
          publish();
          const digest = local.digest();
          const existed = this.#row(digest) !== undefined;
          this.#reference(digest, local.offset, labels);
          return existed ? 'exists' : 'created';
        }),
    });
  }

  async *listStatuses(opts?: Opts): AsyncIterable<IngestStatus> {
    const prefix = `${this.namespace}/`;
    for await (const st of this.#local.listStatuses(opts)) {
      if (st.ref.startsWith(prefix)) yield { ...st, ref: st.ref.slice(prefix.length) };
    }
  }

  async status(ref: string): Promise<IngestStatus> {
    validateRef(ref);
    const st = await this.#local.status(this.#key(ref));
    return { ...st, ref };
  }

  async abort(ref: string, opts?: Opts): Promise<void> {
    validateRef(ref);
    await this.#local.abort(this.#key(ref), opts);
  }

  #key(ref: string): string {
    return `${this.namespace}/${ref}`;
  }
}

function validateRef(ref: string): void {
  if (typeof ref !== 'string' || ref.length === 0) throw new InvalidArgumentError('invalid ingest ref: empty');
}

class NamespacedWriter implements Writer {
  readonly ref: string;
  readonly #store: NamespacedContentStore;
  readonly #local: LocalWriter;
  constructor(store: NamespacedContentStore, local: LocalWriter, ref: string) {
    this.#store = store;
    this.#local = local;
    this.ref = ref;
  }
  write(chunk: Uint8Array, opts?: Opts): Promise<void> {
    return this.#local.write(chunk, opts);
  }
  async status(): Promise<IngestStatus> {
    return { ...(await this.#local.status()), ref: this.ref };
  }
  digest(): Digest {
    return this.#local.digest();
  }
  commit(size: number, expected?: Digest, opts?: Opts & { labels?: Labels }): Promise<Digest> {
    return this.#store.commitWriter(this.#local, size, expected, opts);
  }
  close(): Promise<void> {
    return this.#local.close();
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.#local.close();
  }
}
