import type { Descriptor, Digest } from '../oci/index.js';

export interface Opts {
  signal?: AbortSignal;
}

export type Labels = Record<string, string>;

/** What is known of one committed blob. */
export interface Info {
  digest: Digest;
  size: number;
  createdAt: Date;
  updatedAt: Date;
  labels: Labels;
}

/** The state of one in-flight write. */
export interface IngestStatus {
  ref: string;
  /** Bytes written so far; a resumed writer continues from here. */
  offset: number;
  /** The size expected at commit, when the writer was told (0 when unknown). */
  total: number;
  expected?: Digest;
  startedAt: Date;
  updatedAt: Date;
}

/** Reads committed content; only `desc.digest` is required. */
export interface Provider {
  /** @throws NotFoundError */
  reader(desc: Pick<Descriptor, 'digest'>, opts?: Opts): Promise<BlobReader>;
}

export interface BlobReader extends AsyncDisposable {
  readonly size: number;
  /** Streams the bytes of `[start, end)` (the whole blob by default). */
  read(range?: { start?: number; end?: number }, opts?: Opts): AsyncIterable<Uint8Array>;
  close(): Promise<void>;
}

export interface WriterOpts extends Opts {
  /** What the writer is expected to produce: the size caps the bytes, the digest is checked at commit. */
  expected?: Pick<Descriptor, 'digest' | 'size'>;
}

/** Starts or resumes writes. */
export interface Ingester {
  /**
   * Starts or resumes ingest `ref`.
   * @throws UnavailableError while another writer (in any process) holds the ref
   * @throws AlreadyExistsError when `expected.digest` is already committed
   */
  writer(ref: string, opts?: WriterOpts): Promise<Writer>;
}

/** One in-flight write. Disposing without commit leaves the ingest resumable. */
export interface Writer extends AsyncDisposable {
  readonly ref: string;
  /** @throws FailedPreconditionError when the bytes exceed the expected size */
  write(chunk: Uint8Array, opts?: Opts): Promise<void>;
  status(): Promise<IngestStatus>;
  /** The digest of the bytes written so far. */
  digest(): Digest;
  /**
   * Checks size (when > 0) and digest (when given), makes the blob visible atomically, and
   * always closes the writer. A mismatch discards the ingest.
   * @throws AlreadyExistsError when the blob is already committed (the ingest is removed)
   * @throws FailedPreconditionError on a size or digest mismatch
   */
  commit(size: number, expected?: Digest, opts?: Opts & { labels?: Labels }): Promise<Digest>;
  /** Releases the ref without committing; the bytes stay for a later resume. */
  close(): Promise<void>;
}

/** Lists, labels and deletes committed content and ingests. */
export interface Manager {
  /** @throws NotFoundError */
  info(digest: Digest, opts?: Opts): Promise<Info>;
  /** Replaces the labels of a blob (an empty value removes a label). @throws NotFoundError */
  update(digest: Digest, labels: Labels, opts?: Opts): Promise<Info>;
  list(opts?: Opts): AsyncIterable<Info>;
  /** @throws NotFoundError */
  delete(digest: Digest, opts?: Opts): Promise<void>;
  listStatuses(opts?: Opts): AsyncIterable<IngestStatus>;
  /** @throws NotFoundError */
  abort(ref: string, opts?: Opts): Promise<void>;
}

export interface Store extends Provider, Ingester, Manager {}
