import { type BigIntStats, lchownSync, mkdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { canChown, copyEntry, lstatOrUndefined } from '../archive/index.js';
import { InvalidArgumentError } from '../errdefs/index.js';

const MAX_SYMLINK_HOPS = 40;

/**
 * The tree a COPY step writes into: its snapshot's own directory (`upper`) over the tree before
 * the step (`below`, a read-only view of the parent; none for a mounted rootfs, where `upper` is
 * the whole tree). Paths resolve as in the merged tree, symlinks followed and clamped at the root;
 * everything is written into `upper`, directories of `below` copied up first as overlayfs would.
 * Writing beside the mount rather than through it is what makes a COPY of many files cheap:
 * creating a file through overlayfs costs half as much again as creating it in the directory.
 */
export class StepRoot {
  constructor(
    readonly upper: string,
    readonly below?: string,
  ) {}

  /** What is at a path (components, already resolved), this step's entry first. */
  lstat(parts: string[]): BigIntStats | undefined {
    return lstatOrUndefined(join(this.upper, ...parts)) ?? (this.below ? lstatOrUndefined(join(this.below, ...parts)) : undefined);
  }

  #readlink(parts: string[]): string {
    const up = join(this.upper, ...parts);
    return lstatOrUndefined(up) ? readlinkSync(up) : readlinkSync(join(this.below as string, ...parts));
  }

  /**
   * `path` as the container sees it: each symlink met is followed inside the root (the last one
   * too unless `keepLast`). Missing components are kept as they are. @throws InvalidArgumentError
   */
  resolve(path: string, opts: { keepLast?: boolean } = {}): string[] {
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
      const last = !queue.some((q) => q !== '' && q !== '.');
      const st = this.lstat([...out, c]);
      if (st?.isSymbolicLink() && !(last && opts.keepLast)) {
        if (++hops > MAX_SYMLINK_HOPS) throw new InvalidArgumentError(`path "${path}": too many levels of symbolic links`);
        const target = this.#readlink([...out, c]);
        if (target.startsWith('/')) out.length = 0;
        queue.unshift(...target.split('/'));
        continue;
      }
      if (st && !st.isDirectory() && !last)
        throw new InvalidArgumentError(`path "${path}": "/${[...out, c].join('/')}" is not a directory`);
      out.push(c);
    }
    return out;
  }

  /**
   * The directory at `path` (resolved) in `upper`, made where missing: copied up from below with
   * its owner, mode and times, or new (0755, `owner`'s or root's). Returns its host path.
   */
  dir(path: string, owner?: { uid: number; gid: number }): string {
    return this.dirAt(this.resolve(path), owner);
  }

  /** {@link dir} of a path already resolved into components. */
  dirAt(parts: string[], owner?: { uid: number; gid: number }): string {
    for (let i = 1; i <= parts.length; i++) {
      const at = parts.slice(0, i);
      const host = join(this.upper, ...at);
      const mine = lstatOrUndefined(host);
      if (mine?.isDirectory()) continue;
      if (mine) throw new InvalidArgumentError(`"/${at.join('/')}" is not a directory`);
      const lower = this.below ? lstatOrUndefined(join(this.below, ...at)) : undefined;
      if (lower && !lower.isDirectory()) throw new InvalidArgumentError(`"/${at.join('/')}" is not a directory`);
      if (lower) copyEntry(join(this.below as string, ...at), host, lower);
      else {
        mkdirSync(host, { mode: 0o755 });
        if (owner && canChown) lchownSync(host, owner.uid, owner.gid);
      }
    }
    return join(this.upper, ...parts);
  }
}
