import { type BigIntStats, chmodSync, lchownSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { canChown, copyEntry, lstatOrUndefined, timesOf } from '../archive/index.js';
import { InvalidArgumentError } from '../errdefs/index.js';
import { resolveInRoot } from '../runtime/index.js';
import { lutimes } from '../sys/index.js';
import type { Source, SourceTree } from './sources.js';

export interface CopyOpts {
  /** Owner of everything copied; without it, 0:0 for the context (`keepOwner` false) or the source's own. */
  owner?: { uid: number; gid: number };
  keepOwner?: boolean;
  /** `--chmod`: the mode of everything copied. */
  mode?: number;
}

/**
 * COPY's placement rules (docker's): a directory source gives its contents, not itself; a file
 * goes to `dest` itself unless `dest` ends in `/` or is a directory already, then into it. Several
 * sources (or a wildcard) need a directory destination. Everything is written under `rootfs` with
 * `dest`'s symlinks resolved inside it; an existing link at a copied name is replaced, never followed.
 * @throws InvalidArgumentError
 */
export function copySources(tree: SourceTree, sources: Source[], rootfs: string, dest: string, opts: CopyOpts, many: boolean): void {
  const destIsDir = dest.endsWith('/') || dest.endsWith('/.') || dest === '/';
  if (many && !destIsDir)
    throw new InvalidArgumentError(`when using COPY with more than one source file, the destination must be a directory and end with a /`);
  for (const src of sources) {
    if (src.st.isDirectory()) {
      copyChildren(tree, src, rootfs, dest, opts);
      continue;
    }
    const existing = lstatOrUndefined(resolveInRoot(rootfs, dest));
    const target = destIsDir || existing?.isDirectory() ? `${dest.replace(/\/+\.?$/, '')}/${basename(src.rel || src.host)}` : dest;
    const slash = target.lastIndexOf('/');
    const parentHost = destDirectory(rootfs, target.slice(0, slash) || '/', opts);
    place(src.host, src.st, parentHost, target.slice(slash + 1), opts);
  }
}

function copyChildren(tree: SourceTree, src: Source, rootfs: string, dest: string, opts: CopyOpts): void {
  const destHost = destDirectory(rootfs, dest, opts);
  const dirs: { host: string; st: BigIntStats }[] = [];
  const hostOf = new Map([['', destHost]]);
  let first = true;
  for (const e of tree.walk(src)) {
    if (first) {
      first = false; // the source directory itself: its contents go into dest
      continue;
    }
    const slash = e.sub.lastIndexOf('/');
    const parentSub = slash < 0 ? '' : e.sub.slice(0, slash);
    const parent = hostOf.get(parentSub) ?? resolveInRoot(rootfs, `${dest}/${parentSub}`, { mkdir: true });
    const at = place(e.host, e.st, parent, e.sub.slice(slash + 1), opts);
    if (e.st.isDirectory()) {
      dirs.push({ host: at, st: e.st });
      hostOf.set(e.sub, at);
    }
  }
  // Directory times last: their children changed them.
  for (const d of dirs.reverse()) {
    const t = timesOf(d.st);
    lutimes(d.host, t.atime, t.mtime);
  }
}

/**
 * The destination directory, made where missing; the directories made take `--chown`'s owner (as
 * docker's classic builder and BuildKit do), else root's.
 */
function destDirectory(rootfs: string, dest: string, opts: CopyOpts): string {
  const parts = dest.split('/').filter((p) => p !== '' && p !== '.');
  let host = rootfs;
  for (let i = 1; i <= parts.length; i++) {
    const path = `/${parts.slice(0, i).join('/')}`;
    const existed = lstatOrUndefined(resolveInRoot(rootfs, path)) !== undefined;
    host = resolveInRoot(rootfs, path, { mkdir: true });
    if (!existed && opts.owner && canChown) lchownSync(host, opts.owner.uid, opts.owner.gid);
  }
  return host;
}

/** Copies one entry to `parent/name` with the owner and mode rules; returns where it is. */
function place(src: string, st: BigIntStats, parent: string, name: string, opts: CopyOpts): string {
  const dst = join(parent, name);
  const there = lstatOrUndefined(dst);
  if (there) {
    if (there.isDirectory() && st.isDirectory()) {
      applyOwnerMode(dst, st, opts);
      return dst;
    }
    if (there.isDirectory()) throw new InvalidArgumentError(`cannot replace directory "${name}" with a non-directory`);
    rmSync(dst, { force: true });
  }
  const owner = opts.owner ?? (opts.keepOwner ? undefined : { uid: 0, gid: 0 });
  copyEntry(src, dst, st, { ...owner, ...(opts.mode !== undefined && !st.isSymbolicLink() ? { mode: opts.mode } : {}) });
  return dst;
}

function applyOwnerMode(dst: string, st: BigIntStats, opts: CopyOpts): void {
  if (canChown) {
    const owner = opts.owner ?? (opts.keepOwner ? undefined : { uid: 0, gid: 0 });
    if (owner) lchownSync(dst, owner.uid, owner.gid);
  }
  if (opts.mode !== undefined && !st.isSymbolicLink()) chmodSync(dst, opts.mode);
  else if (!st.isSymbolicLink()) chmodSync(dst, Number(st.mode) & 0o7777); // chown clears set-id bits
}
