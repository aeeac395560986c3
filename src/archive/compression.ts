import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { InvalidArgumentError } from '../errdefs/index.js';
import { type Compression, layerCompressionOf, MediaType } from '../oci/index.js';

const MAGIC: Record<Exclude<Compression, 'none'>, number[]> = {
  gzip: [0x1f, 0x8b],
  zstd: [0x28, 0xb5, 0x2f, 0xfd],
};

/** The compression its bytes show: gzip, zstd, or none (a tar). */
export function detectCompression(head: Uint8Array): Compression {
  for (const [kind, magic] of Object.entries(MAGIC)) {
    if (magic.every((b, i) => head[i] === b)) return kind as Compression;
  }
  return 'none';
}

const CHUNK = 256 * 1024;

/**
 * Decompresses a layer blob as its media type says, after checking the first bytes agree.
 * gzip runs in zlib (off the main thread); zstd through the `zstd` program, since Node 20 has no zstd.
 * @throws InvalidArgumentError when the media type and the magic bytes disagree
 */
export async function* decompress(
  source: AsyncIterable<Uint8Array>,
  mediaType: string,
  opts: { signal?: AbortSignal } = {},
): AsyncGenerator<Uint8Array> {
  const declared = layerCompressionOf(mediaType);
  if (declared === undefined) throw new InvalidArgumentError(`"${mediaType}" is not a layer media type`);
  const it = source[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.length < 4) {
    const more = await it.next();
    if (more.done) break;
    first = { done: false, value: Buffer.concat([first.value, more.value]) };
  }
  const head = first.done ? new Uint8Array(0) : first.value;
  const actual = detectCompression(head);
  if (actual !== declared && !(declared === 'none' && head.length === 0)) {
    throw new InvalidArgumentError(
      `layer is ${actual === 'none' ? 'not compressed' : actual} but its media type "${mediaType}" says ${declared}`,
    );
  }
  async function* rest() {
    if (!first.done) yield first.value;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  if (actual === 'none') {
    yield* rest();
    return;
  }
  if (actual === 'gzip') {
    const gunzip = createGunzip({ chunkSize: CHUNK });
    let feedErr: Error | undefined;
    const feeding = pipeline(Readable.from(rest(), { objectMode: false }), gunzip, { signal: opts.signal }).catch((err) => {
      feedErr = err;
    });
    try {
      for await (const chunk of gunzip) yield chunk as Buffer;
    } catch (err) {
      await feeding;
      // The source's own failure (a digest mismatch, a dropped connection) wins over what zlib saw.
      if (feedErr && (feedErr as NodeJS.ErrnoException).code?.startsWith('Z_') !== true) throw feedErr;
      throw new InvalidArgumentError(`gzip: ${(err as Error).message}`, { cause: err });
    } finally {
      gunzip.destroy();
      await feeding;
    }
    return;
  }
  yield* zstd(['-d'], rest(), opts);
}

/**
 * Compresses a stream as a layer of that compression is stored: gzip in zlib (off the main thread),
 * zstd through the `zstd` program (level 3, its default), none as it is.
 */
export async function* compress(
  source: AsyncIterable<Uint8Array>,
  kind: Compression,
  opts: { signal?: AbortSignal } = {},
): AsyncGenerator<Uint8Array> {
  if (kind === 'none') {
    yield* source;
    return;
  }
  if (kind === 'zstd') {
    yield* zstd(['-3'], source, opts);
    return;
  }
  const gz = createGzip({ chunkSize: CHUNK });
  const feeding = pipeline(Readable.from(coalesce(source), { objectMode: false }), gz, { signal: opts.signal }).catch(
    (err: unknown) => err,
  );
  try {
    for await (const chunk of gz) yield chunk as Buffer;
    const err = await feeding;
    if (err) throw err;
  } finally {
    gz.destroy();
    await feeding;
  }
}

/**
 * The stream in chunks of at least CHUNK bytes: each write to zlib is a job on the thread pool, and
 * a tar of small files comes as many small pieces (headers, bodies, padding).
 */
async function* coalesce(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of source) {
    if (chunk.length >= CHUNK && size === 0) {
      yield chunk;
      continue;
    }
    pending.push(chunk);
    size += chunk.length;
    if (size >= CHUNK) {
      yield Buffer.concat(pending, size);
      pending = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(pending, size);
}

const anyLayer: Record<Compression, string> = {
  none: MediaType.ociLayer,
  gzip: MediaType.ociLayerGzip,
  zstd: MediaType.ociLayerZstd,
};

/** Runs the `zstd` program over a stream (`-d` to decompress, a level to compress). */
function zstd(args: string[], source: AsyncIterable<Uint8Array>, opts: { signal?: AbortSignal }): AsyncGenerator<Uint8Array> {
  return filter('zstd', [...args, '-c', '-q', '--no-progress'], source, opts);
}

const programs: Record<string, string> = { zstd: 'zstd', bzip2: 'bzip2', xz: 'xz-utils' };

/** Runs a compression program as a filter over a stream, stdin to stdout. */
async function* filter(
  program: string,
  args: string[],
  source: AsyncIterable<Uint8Array>,
  opts: { signal?: AbortSignal },
): AsyncGenerator<Uint8Array> {
  const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], signal: opts.signal });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    if (stderr.length < 4096) stderr += s;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  exited.catch(() => {});
  const feeding = pipeline(Readable.from(source), child.stdin).catch((err) => err as Error);
  let done = false;
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const feedErr = await feeding;
    const code = await exited;
    if (feedErr instanceof Error && feedErr.message !== 'write EPIPE') throw feedErr;
    if (code !== 0) throw new InvalidArgumentError(`${program}: ${stderr.trim() || `exit code ${code}`}`);
    done = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new InvalidArgumentError(`${program} data needs the "${program}" program (Debian package ${programs[program]})`, {
        cause: err,
      });
    throw err;
  } finally {
    if (!done) child.kill();
  }
}

/** What an archive (a build context, an ADD source) may be compressed with. */
export type ArchiveCompression = Compression | 'bzip2' | 'xz';

const archiveMagic: Record<'bzip2' | 'xz', number[]> = {
  bzip2: [0x42, 0x5a, 0x68],
  xz: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
};

/** The compression an archive's first bytes show: gzip, zstd, bzip2, xz or none. */
export function detectArchiveCompression(head: Uint8Array): ArchiveCompression {
  for (const [kind, magic] of Object.entries(archiveMagic)) if (magic.every((b, i) => head[i] === b)) return kind as ArchiveCompression;
  return detectCompression(head);
}

/**
 * Decompresses what an archive's first bytes show (as docker reads a build context, an ADD
 * source, an image archive to load or a tarball to import): gzip in zlib, zstd, bzip2 and xz through their programs, anything else as it is.
 * `onKind` hears which it was before the first chunk.
 */
export async function* decompressArchive(
  source: AsyncIterable<Uint8Array>,
  opts: { signal?: AbortSignal; onKind?: (kind: ArchiveCompression) => void } = {},
): AsyncGenerator<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let seen = 0;
  while (seen < 6) {
    const r = await it.next();
    if (r.done) break;
    head.push(r.value);
    seen += r.value.length;
  }
  const replay = async function* () {
    yield* head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  };
  const kind = detectArchiveCompression(Buffer.concat(head));
  opts.onKind?.(kind);
  if (kind === 'bzip2' || kind === 'xz') yield* filter(kind, ['-d', '-c', '-q'], replay(), opts);
  else yield* decompress(replay(), anyLayer[kind], opts);
}

/** Whether a file is a tar archive, compressed or not: its first block, decompressed, has a valid header checksum. */
export async function isTarArchive(path: string): Promise<boolean> {
  const head: Buffer[] = [];
  let n = 0;
  const ac = new AbortController();
  try {
    for await (const chunk of decompressArchive(createReadStream(path, { signal: ac.signal }), { signal: ac.signal })) {
      head.push(chunk as Buffer);
      n += chunk.length;
      if (n >= 512) break;
    }
  } catch {
    return false;
  } finally {
    ac.abort();
  }
  const block = Buffer.concat(head).subarray(0, 512);
  if (block.length < 512) return false;
  const stored = Number.parseInt(block.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
  if (Number.isNaN(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (block[i] as number);
  return sum === stored;
}
