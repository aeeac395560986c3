import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { applyLayer, decompressArchive } from '../archive/index.js';
import { InvalidArgumentError } from '../errdefs/index.js';
import { resolveInRoot } from '../runtime/index.js';
import { isMountPoint, unmount } from '../snapshots/index.js';

// A build's own directories, named with the process's pid: one a crashed build left (its process
// gone) is swept by the next build, mounts first.

/** A fresh directory `<parent>/<prefix>-<pid>-<random>`; stale ones of dead processes are removed first. */
export async function freshDir(parent: string, prefix: string): Promise<string> {
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  await sweep(parent, prefix);
  const dir = join(parent, `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

async function sweep(parent: string, prefix: string): Promise<void> {
  for (const name of readdirSync(parent)) {
    const m = new RegExp(`^${prefix}-(\\d+)-`).exec(name);
    if (!m || alive(Number(m[1]))) continue;
    const dir = join(parent, name);
    // Mounts under it (step roots, views), deepest first; a directory still mounted is left alone.
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((p) => p.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length);
    for (const p of mounts) await unmount(p).catch(() => {});
    if (mounts.some((p) => isMountPoint(p))) continue;
    rmSync(dir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * An archive (plain tar, gzip, bzip2, xz or zstd) extracted into `dir` as docker extracts a build
 * context or an ADD source: by the layer applier, so no entry lands outside it; `.wh.` names are
 * plain files and the archive's root entry leaves `dir` as it is.
 */
export async function extractArchive(archive: AsyncIterable<Uint8Array>, dir: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  await applyLayer(dir, decompressArchive(archive, opts), {
    whiteouts: 'none',
    rootAttrs: false,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

/** The Dockerfile at `path` in the context (resolved inside it). @throws InvalidArgumentError */
export function contextDockerfile(dir: string, path: string): string {
  const host = resolveInRoot(dir, path);
  try {
    return readFileSync(host, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`Cannot locate specified Dockerfile: ${path}`, { cause: err });
  }
}
