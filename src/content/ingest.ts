// The ingest side of the local content store: an ingest directory's lock and status, and the
// writer that fills it, hashes it and publishes it as a blob.
import { closeSync, createReadStream, fstatSync, linkSync, openSync, statSync, writeSync } from 'node:fs';
import { chmod, type FileHandle, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, throwIfAborted, UnavailableError } from '../errdefs/index.js';
import { type Descriptor, type Digest, type DigestAlgorithm, Digester, digestAlgorithm, isDigest } from '../oci/index.js';
import { flock, syncDirSync } from '../sys/index.js';
import type { IngestStatus, Labels, Opts, Writer } from './store.js';

/** Another writer (in this or another process) holds the ingest; retry, or wait for its blob. */
export class IngestLockedError extends UnavailableError {}

/** How a commit makes a blob visible: `publish` links it into place, synchronously, and says whether it was new. */
export type PublishGuard = (publish: () => 'created' | 'exists') => 'created' | 'exists';

/** Where a writer publishes what it committed: the store's path of a blob. */
export interface BlobPaths {
  blobPath(digest: Digest): string;
}

export interface LocalCommitOpts extends Opts {
  labels?: Labels;
  /** Runs the publishing step inside the caller's critical section (e.g. a database transaction). */
  guard?: PublishGuard;
}

/** Reads and hashes in chunks of this size. */
export const readChunk = 1 << 20;
/** Chunks of this size or more are written on the thread pool; smaller ones at once. */
const largeWrite = 1 << 20;
const maxRefLength = 1024;

export function validateRef(ref: string): void {
  if (typeof ref !== 'string' || ref.length === 0 || ref.length > maxRefLength || ref.includes('\0')) {
    throw new InvalidArgumentError(
      `invalid ingest ref ${JSON.stringify(String(ref).slice(0, 100))}: must be 1 to ${maxRefLength} characters`,
    );
  }
}

export const trashPrefix = '.trash-';

/**
 * Removes an ingest directory whose lock the caller holds. It is renamed away first: a writer of
 * the same ref in another process may be creating its lock file in it at this very moment, and
 * would otherwise make the removal fail (or keep a half-removed directory).
 */
export async function removeIngestDir(dir: string): Promise<void> {
  const trash = join(dirname(dir), `${trashPrefix}${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    await rename(dir, trash);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await rm(trash, { recursive: true, force: true });
}

/** Takes the flock of an ingest directory, creating it; retries when the directory was removed under us. */
export async function lockIngest(dir: string, ref: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    // Not mkdir -p: it stats after EEXIST and fails if the directory is renamed away in between.
    try {
      await mkdir(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') await mkdir(dirname(dir), { recursive: true });
      else if (code !== 'EEXIST') throw err;
      if (code === 'ENOENT') continue;
    }
    let fd: number;
    try {
      fd = openSync(join(dir, 'lock'), 'a');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 100) continue;
      throw err;
    }
    try {
      flock(fd, 'ex', true);
    } catch (err) {
      closeSync(fd);
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN' || (err as NodeJS.ErrnoException).code === 'EWOULDBLOCK') {
        throw new IngestLockedError(`ingest "${ref}": locked by another writer`);
      }
      throw err;
    }
    // The holder before us may have removed the directory after we opened the lock file.
    try {
      if (statSync(join(dir, 'lock')).ino === fstatSync(fd).ino) return fd;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        closeSync(fd);
        throw err;
      }
    }
    closeSync(fd);
    if (attempt >= 100) throw new UnavailableError(`ingest "${ref}": could not lock`);
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** An ingest's status, or undefined while `dir` is not (or not yet, or no longer) an ingest. */
export async function readStatus(dir: string): Promise<IngestStatus | undefined> {
  const ref = await readText(join(dir, 'ref'));
  if (!ref) return undefined;
  let offset = 0;
  let updatedAt: Date;
  try {
    const st = await stat(join(dir, 'data'));
    offset = st.size;
    updatedAt = st.mtime;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // Made a moment ago and its data file not yet opened: as fresh as its ref.
    const st = await stat(join(dir, 'ref')).catch(() => undefined);
    if (!st) return undefined;
    updatedAt = st.mtime;
  }
  const started = await readText(join(dir, 'startedat'));
  const expected = await readText(join(dir, 'expected'));
  const total = Number(await readText(join(dir, 'total'))) || 0;
  const st: IngestStatus = { ref, offset, total, startedAt: new Date(started ?? 0), updatedAt };
  if (expected && isDigest(expected)) st.expected = expected;
  return st;
}

/** A writer holding an ingest's lock; appends to `data`, hashing every byte. */
export class LocalWriter implements Writer {
  readonly ref: string;
  readonly #store: BlobPaths;
  readonly #dir: string;
  #lockFd: number | undefined;
  #fh: FileHandle | undefined;
  #digester: Digester;
  #total: number;
  #expected: Digest | undefined;
  #startedAt: Date;
  #updatedAt: Date;

  private constructor(
    store: BlobPaths,
    dir: string,
    ref: string,
    lockFd: number,
    fh: FileHandle,
    digester: Digester,
    total: number,
    expected: Digest | undefined,
    startedAt: Date,
  ) {
    this.#store = store;
    this.#dir = dir;
    this.ref = ref;
    this.#lockFd = lockFd;
    this.#fh = fh;
    this.#digester = digester;
    this.#total = total;
    this.#expected = expected;
    this.#startedAt = startedAt;
    this.#updatedAt = new Date();
  }

  /** Opens (or resumes) the ingest in `dir`, whose lock the caller holds. */
  static async open(
    store: BlobPaths,
    dir: string,
    ref: string,
    lockFd: number,
    expected: Pick<Descriptor, 'digest' | 'size'> | undefined,
    signal: AbortSignal | undefined,
  ): Promise<LocalWriter> {
    const prior = await readStatus(dir);
    const sameTarget = prior && (!expected || (prior.expected === expected.digest && (!expected.size || prior.total === expected.size)));
    let startedAt: Date;
    if (prior && sameTarget) {
      startedAt = prior.startedAt;
    } else {
      // A new ingest, or a ref reused for other content: start from nothing.
      await rm(join(dir, 'data'), { force: true });
      startedAt = new Date();
      // Not fsynced: an ingest whose files a crash lost or left half is simply started again
      // (a missing expected digest or size resets it). `ref` is what makes a directory an ingest:
      // written last and renamed into place, so a reader in another process (gc listing ingests)
      // sees no ingest or a whole one, never an empty ref.
      await writeFile(join(dir, 'startedat'), startedAt.toISOString());
      await writeFile(join(dir, 'total'), String(expected?.size ?? 0));
      await writeFile(join(dir, 'expected'), expected?.digest ?? '');
      await writeFile(join(dir, 'ref.tmp'), ref);
      await rename(join(dir, 'ref.tmp'), join(dir, 'ref'));
    }
    const want = expected?.digest ?? prior?.expected;
    const total = expected?.size ?? prior?.total ?? 0;
    const algorithm: DigestAlgorithm = want ? digestAlgorithm(want) : 'sha256';
    const digester = new Digester(algorithm);
    const dataPath = join(dir, 'data');
    // Resuming: the hash state is not saved, so the bytes already written are hashed again.
    if (sameTarget && prior.offset > 0) {
      for await (const chunk of createReadStream(dataPath, { highWaterMark: readChunk, signal })) digester.update(chunk as Buffer);
    }
    const fh = await open(dataPath, 'a');
    return new LocalWriter(store, dir, ref, lockFd, fh, digester, total, want, startedAt);
  }

  get offset(): number {
    return this.#digester.size;
  }

  digest(): Digest {
    return this.#digester.digest();
  }

  async write(chunk: Uint8Array, opts?: Opts): Promise<void> {
    throwIfAborted(opts?.signal);
    const fh = this.#open();
    if (this.#total > 0 && this.offset + chunk.byteLength > this.#total) {
      throw new FailedPreconditionError(
        `write "${this.ref}": ${this.offset + chunk.byteLength} bytes exceed the expected size ${this.#total}`,
      );
    }
    try {
      if (chunk.byteLength >= largeWrite) {
        // A large chunk (a file read) is hashed on this thread while the thread pool writes it.
        const written = writeFully(fh, chunk);
        this.#digester.update(chunk);
        await written;
      } else {
        // A small chunk (a network read) is written at once, on this thread: a write into the page
        // cache takes microseconds. Measured against gathering 1 MiB buffers for the thread pool:
        // the same CPU in all (a third less kernel time, as much more user time), no double buffers.
        this.#digester.update(chunk);
        writeFullySync(fh.fd, chunk);
      }
    } catch (err) {
      // The file may now hold less than was hashed: closed, a resume hashes the file again.
      await this.close();
      throw err;
    }
    this.#updatedAt = new Date();
  }

  async status(): Promise<IngestStatus> {
    const st: IngestStatus = {
      ref: this.ref,
      offset: this.offset,
      total: this.#total,
      startedAt: this.#startedAt,
      updatedAt: this.#updatedAt,
    };
    if (this.#expected) st.expected = this.#expected;
    return st;
  }

  async commit(size: number, expected?: Digest, opts?: LocalCommitOpts): Promise<Digest> {
    const fh = this.#open();
    try {
      throwIfAborted(opts?.signal);
      const want = expected ?? this.#expected;
      const got = this.digest();
      if (size > 0 && size !== this.offset) {
        await removeIngestDir(this.#dir);
        throw new FailedPreconditionError(`commit "${this.ref}": size ${this.offset}, expected ${size}`);
      }
      if (want && want !== got) {
        await removeIngestDir(this.#dir);
        throw new FailedPreconditionError(`commit "${this.ref}": digest ${got}, expected ${want}`);
      }
      await fh.sync();
      await fh.close();
      this.#fh = undefined;
      const dataPath = join(this.#dir, 'data');
      await chmod(dataPath, 0o444);
      const target = this.#store.blobPath(got);
      await mkdir(dirname(target), { recursive: true });
      const publish = () => publishLink(dataPath, target);
      const outcome = opts?.guard ? opts.guard(publish) : publish();
      await removeIngestDir(this.#dir);
      if (outcome === 'exists') throw new AlreadyExistsError(`content "${got}": already exists`);
      return got;
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close();
    if (this.#lockFd !== undefined) {
      closeSync(this.#lockFd);
      this.#lockFd = undefined;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #open(): FileHandle {
    if (!this.#fh) throw new FailedPreconditionError(`ingest "${this.ref}": writer is closed`);
    return this.#fh;
  }
}

function writeFullySync(fd: number, chunk: Uint8Array): void {
  for (let done = 0; done < chunk.byteLength; ) done += writeSync(fd, chunk, done, chunk.byteLength - done);
}

async function writeFully(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let done = 0;
  while (done < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.byteLength - done);
    done += bytesWritten;
  }
}

/** Links `src` in as the blob at `target`, durably; 'exists' when the blob is there already. */
export function publishLink(src: string, target: string): 'created' | 'exists' {
  try {
    linkSync(src, target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
    throw err;
  }
  syncDirSync(dirname(target));
  return 'created';
}
