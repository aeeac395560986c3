import { type BigIntStats, chmodSync, lchownSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { canChown, copyEntry, lstatOrUndefined, timesOf } from '../archive/index.js';
import { InvalidArgumentError } from '../errdefs/index.js';
import { lutimes } from '../sys/index.js';
import type { Source, SourceTree } from './sources.js';
import type { StepRoot } from './step-root.js';

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
 * sources need a directory destination. Paths resolve in the step's tree (symlinks followed inside
 * it); an existing link at a copied name is replaced, never followed.
 * @throws InvalidArgumentError
 */
export function copySources(tree: SourceTree, sources: Source[], root: StepRoot, dest: string, opts: CopyOpts, many: boolean): void {
  const destIsDir = dest.endsWith('/') || dest.endsWith('/.') || dest === '/';
  if (many && !destIsDir)
    throw new InvalidArgumentError(`when using COPY with more than one source file, the destination must be a directory and end with a /`);
  for (const src of sources) {
    if (src.st.isDirectory()) {
      copyChildren(tree, src, root, dest, opts);
      continue;
    }
    const existing = root.lstat(root.resolve(dest));
    const target = destIsDir || existing?.isDirectory() ? `${dest.replace(/\/+\.?$/, '')}/${basename(src.rel || src.host)}` : dest;
    const slash = target.lastIndexOf('/');
    place(src.host, src.st, root, root.resolve(target.slice(0, slash) || '/'), target.slice(slash + 1), opts);
  }
}

function copyChildren(tree: SourceTree, src: Source, root: StepRoot, dest: string, opts: CopyOpts): void {
  const top = root.resolve(dest);
  root.dirAt(top, opts.owner);
  // Where each directory of the source went: its path in the tree, and on the host.
  const placed = new Map<string, string[]>([['', top]]);
  const dirs: { host: string; st: BigIntStats }[] = [];
  let first = true;
  for (const e of tree.walk(src)) {
    if (first) {
      first = false; // the source directory itself: its contents go into dest
      continue;
    }
    const slash = e.sub.lastIndexOf('/');
    const parentSub = slash < 0 ? '' : e.sub.slice(0, slash);
    const parent = placed.get(parentSub) ?? root.resolve(`${dest}/${parentSub}`);
    const name = e.sub.slice(slash + 1);
    const at = place(e.host, e.st, root, parent, name, opts);
    if (e.st.isDirectory()) {
      dirs.push({ host: at, st: e.st });
      placed.set(e.sub, [...parent, name]);
    }
  }
  // Directory times last: their children changed them.
  for (const d of dirs.reverse()) {
    const t = timesOf(d.st);
    lutimes(d.host, t.atime, t.mtime);
  }
}

/**
 * Copies one entry to `parent/name` (the parent, resolved, made where missing with `--chown`'s
 * owner, as docker's builders make it) with the owner and mode rules; returns its host path.
 */
function place(src: string, st: BigIntStats, root: StepRoot, parent: string[], name: string, opts: CopyOpts): string {
  const dst = join(root.dirAt(parent, opts.owner), name);
  const there = root.lstat([...parent, name]);
  if (there?.isDirectory()) {
    if (!st.isDirectory()) throw new InvalidArgumentError(`cannot replace directory "${name}" with a non-directory`);
    const merged = root.dirAt([...parent, name]);
    applyOwnerMode(merged, st, opts);
    return merged;
  }
  if (lstatOrUndefined(dst)) rmSync(dst, { force: true }); // this step's own entry; one below is hidden by the copy
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
