import { type BigIntStats, lstatSync, mkdirSync, readlinkSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { applyLayer, isWhiteout, lstatOrUndefined, pathTar, readTar } from '../archive/index.js';
import { InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { resolveInRoot } from '../runtime/index.js';
import { isMountPoint, mountAll, unmount } from '../snapshots/index.js';
import type { ContainerContext } from './context.js';
import { getContainer } from './lifecycle.js';

// Files in and out of a container's root (docker cp, docker export): a running container's root
// where it is mounted, a stopped one's writable layer mounted aside meanwhile.

/**
 * Runs `fn` on the container's root filesystem: where it is mounted while it runs; for a stopped
 * one, its writable layer mounted aside, under the container's lock so that it is not started
 * meanwhile.
 */
export async function withRootfs<T>(ctx: ContainerContext, ref: string, fn: (rootfs: string) => Promise<T>): Promise<T> {
  const rec = await getContainer(ctx, ref);
  const { rootfs, dir } = ctx.paths(rec.id);
  if (isMountPoint(rootfs)) return fn(rootfs);
  return ctx.locked(rec.id, async () => {
    const target = join(dir, `aside-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(target, { recursive: true });
    await mountAll(await ctx.snapshots(rec).mounts(rec.snapshotKey), target);
    try {
      return await fn(target);
    } finally {
      await unmount(target);
      rmSync(target, { recursive: true, force: true });
    }
  });
}

/** What docker's `X-Docker-Container-Path-Stat` says of a path: Go's FileMode bits in `mode`. */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** Go's os.FileMode type bits. */
const goModeDir = 2 ** 31;
const goModeSymlink = 2 ** 27;

/**
 * The host path of `path` in `rootfs`: its directory resolved as the container sees it (links
 * followed, clamped at the root); the last component itself, unless the path ends in `/` or `/.`.
 */
function locate(rootfs: string, path: string): string {
  if (!path.startsWith('/')) throw new InvalidArgumentError(`path "${path}": must be absolute`);
  if (path.includes('\0')) throw new InvalidArgumentError('path: contains a NUL byte');
  if (/\/\.?$/.test(path) || basename(path) === '..') return resolveInRoot(rootfs, path);
  return join(resolveInRoot(rootfs, dirname(path)), basename(path));
}

function lstatOf(host: string, path: string): BigIntStats {
  try {
    return lstatSync(host, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`Could not find the file ${path} in container`);
    throw err;
  }
}

function statOf(host: string, path: string, st: BigIntStats): PathStat {
  const kind = st.isDirectory() ? goModeDir : st.isSymbolicLink() ? goModeSymlink : 0;
  return {
    name: basename(path) || '/',
    size: Number(st.size),
    mode: kind + (Number(st.mode) & 0o777),
    mtime: new Date(Number(st.mtimeMs)).toISOString(),
    linkTarget: st.isSymbolicLink() ? readlinkSync(host) : '',
  };
}

/** docker cp's stat of a path in the container. @throws NotFoundError */
export async function statPath(ctx: ContainerContext, ref: string, path: string): Promise<PathStat> {
  return withRootfs(ctx, ref, async (rootfs) => {
    const host = locate(rootfs, path);
    return statOf(host, path, lstatOf(host, path));
  });
}

/** A path of the container as a tar named by its last component, handed to `sink` with its stat. @throws NotFoundError */
export async function readPath(
  ctx: ContainerContext,
  ref: string,
  path: string,
  sink: (stat: PathStat, tar: AsyncIterable<Uint8Array>) => Promise<void>,
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  await withRootfs(ctx, ref, async (rootfs) => {
    const host = locate(rootfs, path);
    const stat = statOf(host, path, lstatOf(host, path));
    await sink(stat, pathTar(host, stat.name === '/' ? '.' : stat.name, opts));
  });
}

/**
 * Extracts a tar into the directory `path` of the container, confined to it: no entry lands
 * outside it, whatever its name or the links it meets. @throws NotFoundError, InvalidArgumentError
 */
export async function writePath(
  ctx: ContainerContext,
  ref: string,
  path: string,
  tar: AsyncIterable<Uint8Array>,
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  await withRootfs(ctx, ref, async (rootfs) => {
    const host = resolveInRoot(rootfs, path);
    const st = lstatOf(host, path);
    if (!st.isDirectory()) throw new InvalidArgumentError(`extraction point "${path}" is not a directory`);
    await applyLayer(host, tar, { whiteouts: 'remove', ...(opts.signal ? { signal: opts.signal } : {}) });
  });
}

/** One change of docker's `changes`: 0 modified, 1 added, 2 deleted. */
export interface Change {
  Path: string;
  Kind: 0 | 1 | 2;
}

const whiteoutPrefix = '.wh.';
const opaqueMarker = '.wh..wh..opq';

/**
 * What the container changed over its image (docker diff): the entries of its writable layer's
 * diff, each an addition or a change by whether the image's layers hold the path, and its whiteouts
 * as deletions.
 */
export async function containerChanges(ctx: ContainerContext, ref: string, opts: { signal?: AbortSignal } = {}): Promise<Change[]> {
  const rec = await getContainer(ctx, ref);
  const sn = ctx.snapshots(rec);
  const parent = (await sn.stat(rec.snapshotKey)).parent;
  const lowers = parent === undefined ? [] : sn.stackDirs(parent);
  // The nearest layer that has the path, or hides it, decides (overlay layers; native: one whole tree).
  const inImage = (rel: string): boolean => {
    for (const dir of lowers) {
      const st = lstatOrUndefined(join(dir, rel));
      if (st) return !isWhiteout(st);
      const slash = rel.lastIndexOf('/');
      if (lstatOrUndefined(join(dir, rel.slice(0, slash + 1), `${whiteoutPrefix}${rel.slice(slash + 1)}`))) return false;
    }
    return false;
  };
  const out: Change[] = [];
  for await (const entry of readTar(sn.diff(rec.snapshotKey, opts), opts)) {
    const rel = entry.header.name.replace(/^\.\//, '').replace(/\/$/, '');
    const name = basename(rel);
    if (name === opaqueMarker) continue;
    if (name.startsWith(whiteoutPrefix)) {
      out.push({ Path: `/${join(dirname(rel), name.slice(whiteoutPrefix.length))}`.replace(/^\/\.\//, '/'), Kind: 2 });
    } else {
      out.push({ Path: `/${rel}`, Kind: inImage(rel) ? 0 : 1 });
    }
  }
  return out;
}
