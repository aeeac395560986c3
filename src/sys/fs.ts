import { closeSync, constants, fstatSync, fsyncSync, openSync, readSync } from 'node:fs';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** fsyncs a directory so that a rename or link inside it survives a crash. */
export function syncDirSync(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` to `path` atomically: a temporary file, fsync, rename, fsync of the directory. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await writeFile(tmp, data, { mode: opts.mode ?? 0o644 });
    const fh = await open(tmp, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  syncDirSync(dirname(path));
}

/**
 * Reads a file from `start` in chunks through two reused buffers, reading the next chunk while the
 * caller works on the current one. A chunk is valid only until the next one is requested: for
 * consumers that hash or write each chunk before asking for more (`writeBlob` does).
 */
export async function* readFileChunks(
  path: string,
  opts: { start?: number; chunkSize?: number; signal?: AbortSignal } = {},
): AsyncIterable<Uint8Array> {
  const size = opts.chunkSize ?? 1 << 20;
  const fh = await open(path, 'r');
  try {
    const bufs = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)] as const;
    let pos = opts.start ?? 0;
    let i = 0;
    let pending = fh.read(bufs[0], 0, size, pos);
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) break;
      opts.signal?.throwIfAborted();
      const current = bufs[i % 2]!.subarray(0, bytesRead);
      pos += bytesRead;
      i++;
      pending = fh.read(bufs[i % 2]!, 0, size, pos);
      yield current;
    }
  } finally {
    await fh.close();
  }
}

/** The whole file, read synchronously, when it is at most `max` bytes; undefined when larger. @throws the open error (ENOENT…) */
export function readFileUpTo(path: string, max: number): Buffer | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    return size > max ? undefined : readSyncFully(fd, size);
  } finally {
    closeSync(fd);
  }
}

/** The file's first `limit` bytes (all of it without a limit), read synchronously. @throws the open error (ENOENT…) */
export function readFileHead(path: string, limit = Number.POSITIVE_INFINITY): Buffer {
  const fd = openSync(path, 'r');
  try {
    return readSyncFully(fd, Math.min(fstatSync(fd).size, limit));
  } finally {
    closeSync(fd);
  }
}

/** Up to `size` bytes from the start of `fd`; fewer when the file was cut meanwhile. */
function readSyncFully(fd: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}
