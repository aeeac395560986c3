import { lstatSync, mkdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../errdefs/index.js';

const MAX_SYMLINK_HOPS = 40;

/**
 * Resolves `path` inside `root` as the container would see it with `root` as `/`: symlinks met on
 * the way are followed and clamped at the root (`..` and absolute targets never leave it), so the
 * result is a host path under `root`. With `mkdir`, missing directories are created (mode 0755) as
 * they are met, which is how a WORKDIR or a volume target is made without writing outside the root.
 * The final component is followed too: the result names what the container would open.
 * @throws InvalidArgumentError when a component that must be a directory is not one, or on a symlink loop
 */
export function resolveInRoot(root: string, path: string, opts: { mkdir?: boolean } = {}): string {
  const out: string[] = [];
  const queue = path.split('/');
  let hops = 0;
  while (queue.length > 0) {
    const c = queue.shift() as string;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      out.pop();
      continue;
    }
    const host = join(root, ...out, c);
    let st = lstatOrUndefined(host);
    if (!st && opts.mkdir) {
      mkdirSync(host, { mode: 0o755 });
      st = lstatOrUndefined(host);
    }
    if (st?.isSymbolicLink()) {
      if (++hops > MAX_SYMLINK_HOPS) throw new InvalidArgumentError(`path "${path}": too many levels of symbolic links`);
      const target = readlinkSync(host);
      if (target.startsWith('/')) out.length = 0;
      queue.unshift(...target.split('/'));
      continue;
    }
    if (st && !st.isDirectory() && queue.some((q) => q !== '' && q !== '.')) {
      throw new InvalidArgumentError(`path "${path}": "/${[...out, c].join('/')}" is not a directory`);
    }
    out.push(c);
  }
  return join(root, ...out);
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
