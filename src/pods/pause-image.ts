import { createReadStream, statSync } from 'node:fs';
import { encodeHeader, headerOf, TAR_END, tarPadding } from '../archive/index.js';
import { hasCode, NotFoundError } from '../errdefs/index.js';
import { commitImage, type ResolvedImage } from '../images/index.js';
import type { NamespaceScope } from '../metadata/index.js';
import { lookupImage } from '../services/index.js';
import { lookPath } from '../sys/index.js';

/**
 * The image a pod's sandbox runs: Debian's static `catatonit` in pause mode (`-P`), alone in one
 * layer. berth makes it from the host's binary, so a pod needs no registry; its ID changes only
 * with the binary.
 */
export const pauseImageName = 'berth.local/pause:catatonit';

/** The pause image of the namespace, made when missing. @throws NotFoundError when catatonit is not installed */
export async function ensurePauseImage(ns: NamespaceScope): Promise<{ name: string; resolved: ResolvedImage }> {
  try {
    return await lookupImage(ns, pauseImageName);
  } catch (err) {
    if (!hasCode(err, 'NOT_FOUND')) throw err;
  }
  let bin: string;
  try {
    bin = lookPath('catatonit');
  } catch (err) {
    throw new NotFoundError('pods need catatonit (the pause process): install the Debian package catatonit', { cause: err });
  }
  const size = statSync(bin).size;
  async function* layer(): AsyncGenerator<Uint8Array> {
    for (const dir of ['dev/', 'etc/', 'proc/', 'sys/']) yield encodeHeader(headerOf({ name: dir, type: 'dir', mode: 0o755 }));
    yield encodeHeader(headerOf({ name: 'catatonit', type: 'file', mode: 0o755, size }));
    let n = 0;
    for await (const chunk of createReadStream(bin)) {
      n += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    if (n !== size) throw new Error(`${bin} changed while it was read`);
    yield tarPadding(size);
    yield TAR_END;
  }
  await commitImage(ns, undefined, layer(), {
    name: pauseImageName,
    config: { Entrypoint: ['/catatonit', '-P'], User: '65535:65535' },
    createdBy: `catatonit -P (${bin})`,
  });
  return lookupImage(ns, pauseImageName);
}
