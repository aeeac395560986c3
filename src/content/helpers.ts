import { FailedPreconditionError, hasCode } from '../errdefs/index.js';
import { type Descriptor, type Digest, Digester, digestAlgorithm } from '../oci/index.js';
import type { Labels, Opts, Provider, Store } from './store.js';

/** Progress of one transfer, emitted as bytes move; `total` is 0 when unknown. */
export interface ProgressEvent {
  ref: string;
  offset: number;
  total: number;
}

export interface WriteBlobOpts extends Opts {
  expected?: Pick<Descriptor, 'digest' | 'size'>;
  labels?: Labels;
  onProgress?: (e: ProgressEvent) => void;
  /**
   * Opens the source at a byte offset, to resume an interrupted ingest without reading again what
   * was written. Without it a resumed ingest is started over.
   */
  openAt?: (offset: number) => AsyncIterable<Uint8Array>;
}

export interface WriteBlobResult {
  digest: Digest;
  size: number;
  /** False when the store already had the blob. */
  created: boolean;
}

/**
 * Streams `source` into the store under ingest `ref` and commits it: every byte hashed and counted,
 * visible only when it matches `expected`. Resumes a prior ingest of the same ref via `openAt`.
 * @throws FailedPreconditionError on a size or digest mismatch (nothing becomes visible)
 * @throws UnavailableError when another writer holds the ref
 */
export async function writeBlob(
  store: Pick<Store, 'writer' | 'abort'>,
  ref: string,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | undefined,
  opts: WriteBlobOpts = {},
): Promise<WriteBlobResult> {
  const { expected, signal, onProgress } = opts;
  let writer: Awaited<ReturnType<Store['writer']>>;
  try {
    writer = await store.writer(ref, { expected, signal });
  } catch (err) {
    if (expected && hasCode(err, 'ALREADY_EXISTS')) return { digest: expected.digest, size: expected.size, created: false };
    throw err;
  }
  try {
    let offset = (await writer.status()).offset;
    const total = expected?.size ?? 0;
    let input = source;
    // A process that died after the last byte and before the commit left a whole ingest: there is
    // nothing left to read (a source asked for bytes past its end refuses, as HTTP's 416), and the
    // commit checks what is there.
    const whole = total > 0 && offset === total;
    if (whole) input = [];
    else if (offset > 0) {
      if (opts.openAt && (total === 0 || offset < total)) input = opts.openAt(offset);
      else {
        // No way to skip ahead in this source, or more bytes than expected: start the ingest again.
        await writer.close();
        await abortQuietly(store, ref);
        writer = await store.writer(ref, { expected, signal });
        offset = 0;
      }
    }
    if (!input) input = opts.openAt?.(0);
    if (!input) throw new FailedPreconditionError(`write "${ref}": no source`);
    onProgress?.({ ref, offset, total });
    for await (const chunk of input) {
      await writer.write(chunk, { signal });
      offset += chunk.byteLength;
      onProgress?.({ ref, offset, total });
    }
    try {
      const digest = await writer.commit(expected?.size ?? offset, expected?.digest, { signal, labels: opts.labels });
      return { digest, size: offset, created: true };
    } catch (err) {
      if (hasCode(err, 'ALREADY_EXISTS')) {
        return { digest: expected?.digest ?? writer.digest(), size: offset, created: false };
      }
      throw err;
    }
  } finally {
    await writer.close();
  }
}

async function abortQuietly(store: Pick<Store, 'abort'>, ref: string): Promise<void> {
  try {
    await store.abort(ref);
  } catch (err) {
    if (!hasCode(err, 'NOT_FOUND')) throw err;
  }
}

/**
 * Reads a whole blob into memory, for documents (manifests, configs) only: refuses more than `maxSize`.
 * @throws NotFoundError, or FailedPreconditionError when the blob is larger than allowed
 */
export async function readBlob(
  provider: Provider,
  desc: Pick<Descriptor, 'digest'>,
  opts: Opts & { maxSize: number },
): Promise<Uint8Array> {
  await using r = await provider.reader(desc, opts);
  if (r.size > opts.maxSize) {
    throw new FailedPreconditionError(`read "${desc.digest}": ${r.size} bytes, more than the ${opts.maxSize} allowed in memory`);
  }
  const out = Buffer.allocUnsafe(r.size);
  let pos = 0;
  for await (const chunk of r.read(undefined, opts)) {
    out.set(chunk, pos);
    pos += chunk.byteLength;
  }
  return out.subarray(0, pos);
}

/** The outcome of re-hashing one stored blob. */
export interface VerifyResult {
  digest: Digest;
  ok: boolean;
  /** What is wrong, when not ok: missing, wrong size, wrong digest. */
  problem?: string;
}

/** Re-hashes a stored blob and compares it with its digest and, when given, its recorded size. */
export async function verifyBlob(
  provider: Provider,
  desc: Pick<Descriptor, 'digest'> & { size?: number },
  opts: Opts = {},
): Promise<VerifyResult> {
  let reader: Awaited<ReturnType<Provider['reader']>>;
  try {
    reader = await provider.reader(desc, opts);
  } catch (err) {
    if (hasCode(err, 'NOT_FOUND')) return { digest: desc.digest, ok: false, problem: 'missing on disk' };
    throw err;
  }
  await using r = reader;
  const d = new Digester(digestAlgorithm(desc.digest));
  for await (const chunk of r.read(undefined, opts)) d.update(chunk);
  if (desc.size !== undefined && d.size !== desc.size)
    return { digest: desc.digest, ok: false, problem: `size ${d.size}, expected ${desc.size}` };
  const got = d.digest();
  if (got !== desc.digest) return { digest: desc.digest, ok: false, problem: `content hashes to ${got}` };
  return { digest: desc.digest, ok: true };
}
