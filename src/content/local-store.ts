import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, linkSync, statSync, unlinkSync } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  AlreadyExistsError,
  DataLossError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  NotImplementedError,
  throwIfAborted,
} from '../errdefs/index.js';
import {
  type Descriptor,
  type Digest,
  Digester,
  digestAlgorithm,
  digestAlgorithms,
  digestHex,
  isDigest,
  parseDigest,
} from '../oci/index.js';
import { readFileUpTo } from '../sys/index.js';
import {
  IngestLockedError,
  LocalWriter,
  lockIngest,
  publishLink,
  readChunk,
  readStatus,
  removeIngestDir,
  trashPrefix,
  validateRef,
} from './ingest.js';
import type { BlobReader, Info, IngestStatus, Labels, Opts, Store, WriterOpts } from './store.js';

/**
 * The blob store on local disk, containerd's layout:
 * `blobs/<alg>/<hex>` (immutable, read-only files) and `ingest/<sha256(ref)>/` (data, ref, total,
 * expected, startedat, lock). Writers of one ref exclude each other across processes with flock(2),
 * which the kernel releases when a writer dies, so a killed ingest can be resumed at once.
 * Labels are not kept here: the metadata database keeps them per namespace.
 */
export class LocalStore implements Store {
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }

  /** Creates the directories of the store, and clears what a crash left in the middle of a removal. */
  async init(): Promise<void> {
    await mkdir(join(this.root, 'ingest'), { recursive: true });
    for (const name of await readdir(join(this.root, 'ingest'))) {
      if (name.startsWith(trashPrefix)) await rm(join(this.root, 'ingest', name), { recursive: true, force: true });
    }
    for (const alg of Object.keys(digestAlgorithms)) await mkdir(join(this.root, 'blobs', alg), { recursive: true });
  }

  blobPath(digest: Digest): string {
    return join(this.root, 'blobs', digestAlgorithm(digest), digestHex(digest));
  }

  ingestPath(ref: string): string {
    return join(this.root, 'ingest', createHash('sha256').update(ref).digest('hex'));
  }

  /** Whether the blob is committed (synchronous, for use inside a transaction). */
  existsSync(digest: Digest): { size: number } | undefined {
    try {
      return { size: statSync(this.blobPath(digest)).size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Publishes the file at `src` as a blob by a hard link, when it is on this store's filesystem
   * and holds exactly `expected`: the link is made first and its bytes hashed, so what is checked
   * is what is kept. The file is shared, not copied: its owner must not change it in place (blob
   * stores never do). Returns 'cross-device' (nothing done) when a link cannot be made.
   * @throws DataLossError when the file does not hold `expected`
   */
  async linkVerified(src: string, expected: Pick<Descriptor, 'digest' | 'size'>): Promise<'linked' | 'exists' | 'cross-device'> {
    const digest = parseDigest(expected.digest);
    if (this.existsSync(digest)) return 'exists';
    const tmp = join(this.root, 'ingest', `${trashPrefix}link-${randomBytes(8).toString('hex')}`);
    await mkdir(dirname(tmp), { recursive: true });
    try {
      linkSync(src, tmp);
    } catch (err) {
      if (['EXDEV', 'EPERM', 'EMLINK'].includes((err as NodeJS.ErrnoException).code ?? '')) return 'cross-device';
      throw err;
    }
    try {
      const d = new Digester(digestAlgorithm(digest));
      for await (const chunk of createReadStream(tmp)) d.update(chunk as Buffer);
      if (d.digest() !== digest || d.size !== expected.size) {
        throw new DataLossError(`${src}: holds ${d.digest()} (${d.size} bytes), not ${digest} (${expected.size} bytes)`);
      }
      const target = this.blobPath(digest);
      await mkdir(dirname(target), { recursive: true });
      return publishLink(tmp, target) === 'created' ? 'linked' : 'exists';
    } finally {
      unlinkSync(tmp);
    }
  }

  /** Removes a committed blob (synchronous, for use inside a transaction); false when it was not there. */
  removeSync(digest: Digest): boolean {
    try {
      unlinkSync(this.blobPath(digest));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async reader(desc: Pick<Descriptor, 'digest'>, opts?: Opts): Promise<BlobReader> {
    throwIfAborted(opts?.signal);
    const digest = parseDigest(desc.digest);
    // Manifests and configs are small and read often (a listing reads three per image): read them
    // at once, without the four trips through the thread pool that a file handle costs.
    let small: Buffer | undefined;
    try {
      small = readFileUpTo(this.blobPath(digest), smallBlob);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`content "${digest}": not found`);
      throw err;
    }
    if (small) return new BufferBlobReader(small);
    let fh: FileHandle;
    try {
      fh = await open(this.blobPath(digest), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`content "${digest}": not found`);
      throw err;
    }
    const { size } = await fh.stat();
    return new FileBlobReader(fh, size);
  }

  async info(digest: Digest, opts?: Opts): Promise<Info> {
    throwIfAborted(opts?.signal);
    parseDigest(digest);
    try {
      const st = await stat(this.blobPath(digest));
      return { digest, size: st.size, createdAt: st.birthtime.getTime() ? st.birthtime : st.ctime, updatedAt: st.mtime, labels: {} };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`content "${digest}": not found`);
      throw err;
    }
  }

  async update(_digest: Digest, _labels: Labels): Promise<Info> {
    throw new NotImplementedError('labels are kept by the metadata store, not the local blob store');
  }

  async *list(opts?: Opts): AsyncIterable<Info> {
    for (const alg of Object.keys(digestAlgorithms)) {
      let names: string[];
      try {
        names = await readdir(join(this.root, 'blobs', alg));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      for (const hex of names.sort()) {
        throwIfAborted(opts?.signal);
        const digest = `${alg}:${hex}`;
        if (!isDigest(digest)) continue;
        try {
          yield await this.info(digest);
        } catch (err) {
          if (!(err instanceof NotFoundError)) throw err;
        }
      }
    }
  }

  async delete(digest: Digest, opts?: Opts): Promise<void> {
    throwIfAborted(opts?.signal);
    if (!this.removeSync(parseDigest(digest))) throw new NotFoundError(`content "${digest}": not found`);
  }

  async writer(ref: string, opts?: WriterOpts): Promise<LocalWriter> {
    throwIfAborted(opts?.signal);
    validateRef(ref);
    const expected = opts?.expected;
    if (expected) {
      parseDigest(expected.digest);
      if (this.existsSync(expected.digest)) {
        await this.discardStale(ref);
        throw new AlreadyExistsError(`content "${expected.digest}": already exists`);
      }
    }
    const dir = this.ingestPath(ref);
    const lockFd = await lockIngest(dir, ref);
    try {
      return await LocalWriter.open(this, dir, ref, lockFd, expected, opts?.signal);
    } catch (err) {
      closeSync(lockFd);
      throw err;
    }
  }

  /**
   * Removes what is left of ingest `ref` unless a writer holds it: called when its blob turns out to
   * be committed already (a process that died between publishing and cleaning up leaves this).
   */
  async discardStale(ref: string): Promise<void> {
    const dir = this.ingestPath(ref);
    if (!(await readStatus(dir))) return;
    let lockFd: number;
    try {
      lockFd = await lockIngest(dir, ref);
    } catch (err) {
      if (err instanceof IngestLockedError) return;
      throw err;
    }
    try {
      await removeIngestDir(dir);
    } finally {
      closeSync(lockFd);
    }
  }

  async status(ref: string): Promise<IngestStatus> {
    validateRef(ref);
    const st = await readStatus(this.ingestPath(ref));
    if (!st) throw new NotFoundError(`ingest "${ref}": not found`);
    return st;
  }

  async *listStatuses(opts?: Opts): AsyncIterable<IngestStatus> {
    const base = join(this.root, 'ingest');
    let names: string[];
    try {
      names = await readdir(base);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names.sort()) {
      throwIfAborted(opts?.signal);
      if (name.startsWith(trashPrefix)) continue;
      const st = await readStatus(join(base, name));
      if (st) yield st;
    }
  }

  async abort(ref: string, opts?: Opts): Promise<void> {
    throwIfAborted(opts?.signal);
    validateRef(ref);
    const dir = this.ingestPath(ref);
    if (!(await readStatus(dir))) throw new NotFoundError(`ingest "${ref}": not found`);
    const lockFd = await lockIngest(dir, ref);
    try {
      await removeIngestDir(dir);
    } finally {
      closeSync(lockFd);
    }
  }
}

const smallBlob = 64 << 10;

/** A read's [start, end) within `size` bytes. @throws InvalidArgumentError */
function byteRange(range: { start?: number; end?: number } | undefined, size: number): [number, number] {
  const start = range?.start ?? 0;
  const end = Math.min(range?.end ?? size, size);
  if (!Number.isSafeInteger(start) || start < 0 || start > end) {
    throw new InvalidArgumentError(`read: bad range [${start}, ${end}) of ${size} bytes`);
  }
  return [start, end];
}

class BufferBlobReader implements BlobReader {
  readonly size: number;
  #buf: Buffer | undefined;
  constructor(buf: Buffer) {
    this.#buf = buf;
    this.size = buf.length;
  }

  async *read(range?: { start?: number; end?: number }, opts?: Opts): AsyncIterable<Uint8Array> {
    const buf = this.#buf;
    if (!buf) throw new FailedPreconditionError('reader is closed');
    const [start, end] = byteRange(range, this.size);
    throwIfAborted(opts?.signal);
    if (end > start) yield buf.subarray(start, end);
  }

  async close(): Promise<void> {
    this.#buf = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

class FileBlobReader implements BlobReader {
  readonly size: number;
  #fh: FileHandle | undefined;
  constructor(fh: FileHandle, size: number) {
    this.#fh = fh;
    this.size = size;
  }

  async *read(range?: { start?: number; end?: number }, opts?: Opts): AsyncIterable<Uint8Array> {
    const fh = this.#fh;
    if (!fh) throw new FailedPreconditionError('reader is closed');
    const [start, end] = byteRange(range, this.size);
    let pos = start;
    while (pos < end) {
      throwIfAborted(opts?.signal);
      const buf = Buffer.allocUnsafe(Math.min(readChunk, end - pos));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  }

  async close(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
