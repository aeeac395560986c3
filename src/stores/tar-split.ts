// A classic docker layer's tar, rebuilt byte for byte: docker keeps each layer's tar headers and
// padding in layerdb's tar-split.json.gz (github.com/vbatts/tar-split) and the file bodies in the
// layer's directory. The same bytes give the same diff ID, which keeps the image ID.
import { type FileHandle, open, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { InvalidArgumentError, NotFoundError } from '../errdefs/index.js';

interface Entry {
  type: number;
  name?: string;
  name_raw?: string;
  size?: number;
  payload?: string | null;
}

const fileType = 1;
const segmentType = 2;

/** The path of `name` inside `dir`, refused when it leaves it (by `..` or through a symlink). */
async function confined(dir: Buffer, name: Buffer, realDir: Buffer): Promise<Buffer> {
  const parts = name.toString('latin1').split('/');
  if (name.includes(0) || parts.includes('..')) throw new InvalidArgumentError(`tar-split: "${name.toString()}" leaves the layer`);
  const path = Buffer.concat([dir, Buffer.from('/'), name]);
  let real: Buffer;
  try {
    real = await realpath(path, { encoding: 'buffer' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NotFoundError(`the layer's file "${name.toString()}" is missing from ${dir.toString()}`);
    throw err;
  }
  const prefix = Buffer.concat([realDir, Buffer.from('/')]);
  if (!real.subarray(0, prefix.length).equals(prefix))
    throw new InvalidArgumentError(`tar-split: "${name.toString()}" leads out of the layer`);
  return real;
}

/**
 * The layer's tar, streamed: raw segments from `tarSplit` (tar-split.json.gz) and each file's body
 * from `dir`. A file whose length differs from the recorded one stops it.
 * @throws NotFoundError when tar-split.json.gz or a file is missing; InvalidArgumentError when it is damaged
 */
export async function* tarSplitStream(tarSplit: string, dir: string): AsyncGenerator<Buffer> {
  const dirBuf = Buffer.from(dir);
  const realDir = await realpath(dir, { encoding: 'buffer' });
  let fh: FileHandle;
  try {
    fh = await open(tarSplit, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NotFoundError(`${tarSplit} is missing: docker kept no tar-split for this layer`);
    throw err;
  }
  const input = fh.createReadStream();
  const gunzip = createGunzip();
  input.on('error', (err) => gunzip.destroy(err));
  const lines = createInterface({ input: input.pipe(gunzip), crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const line of lines) {
      if (line === '') continue;
      let e: Entry;
      try {
        e = JSON.parse(line) as Entry;
      } catch {
        throw new InvalidArgumentError(`${tarSplit}: a line is not JSON`);
      }
      if (e.type === segmentType) {
        if (e.payload) yield Buffer.from(e.payload, 'base64');
      } else if (e.type === fileType) {
        const size = e.size ?? 0;
        if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`${tarSplit}: an entry has a bad size`);
        if (size === 0) continue;
        const name = e.name_raw ? Buffer.from(e.name_raw, 'base64') : Buffer.from(e.name ?? '');
        const file = await open(await confined(dirBuf, name, realDir), 'r');
        try {
          let left = size;
          while (left > 0) {
            const buf = Buffer.allocUnsafe(Math.min(left, 1 << 20));
            const { bytesRead } = await file.read(buf, 0, buf.length, size - left);
            if (bytesRead === 0) break;
            left -= bytesRead;
            yield buf.subarray(0, bytesRead);
          }
          if (left > 0 || (await file.stat()).size !== size) {
            throw new InvalidArgumentError(
              `"${name.toString()}" in ${join(dir)} is not the ${size} bytes the layer recorded; the layer was changed`,
            );
          }
        } finally {
          await file.close();
        }
      } else throw new InvalidArgumentError(`${tarSplit}: an entry of unknown type ${e.type}`);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NotFoundError(`${tarSplit} is missing: docker kept no tar-split for this layer`);
    if ((err as NodeJS.ErrnoException).code === 'Z_DATA_ERROR') throw new InvalidArgumentError(`${tarSplit}: not gzip`);
    throw err;
  } finally {
    input.destroy();
    await fh.close().catch(() => {});
  }
}
