import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { FailedPreconditionError, UnavailableError } from '../errdefs/index.js';
import * as sys from '../sys/index.js';
import type { Mount } from './snapshotter.js';

const run = promisify(execFile);
const PAGE = 4096;

/**
 * Mounts `mounts` on `target`, in order (mount(8) does the work). An overlay option string longer
 * than a page is made short, as containerd does: lowerdirs become relative to their common directory,
 * which is the mount's working directory.
 */
export async function mountAll(mounts: readonly Mount[], target: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  for (const m of mounts) {
    try {
      if (m.type === 'bind') {
        sys.mount(m.source, target, null, sys.MS.BIND);
        if (m.options.includes('ro')) sys.mount(m.source, target, null, sys.MS.BIND | sys.MS.REMOUNT | sys.MS.RDONLY);
        continue;
      }
      const data = m.options.join(',');
      if (data.length < PAGE - 1) {
        sys.mount(m.source, target, m.type, 0, data);
        continue;
      }
      // Too long for the kernel: mount(8) from the lowerdirs' common directory, with relative paths.
      const { options, cwd } = compactOverlayOptions(m.options);
      await run('mount', ['-t', m.type, '-o', options.join(','), m.source, target], { ...opts, cwd });
    } catch (err) {
      const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
      throw new FailedPreconditionError(`mount ${m.type} on "${target}": ${stderr || (err as Error).message}`, { cause: err });
    }
  }
}

/** Unmounts `target`; a busy mount is an error (no lazy detach). */
export async function unmount(target: string): Promise<void> {
  try {
    sys.umount(target);
  } catch (err) {
    throw new FailedPreconditionError(`unmount "${target}": ${(err as Error).message}`, { cause: err });
  }
}

function compactOverlayOptions(options: string[]): { options: string[]; cwd: string } {
  const paths = options.filter((o) => /^(lowerdir|upperdir|workdir)=/.test(o)).flatMap((o) => o.slice(o.indexOf('=') + 1).split(':'));
  let common = paths[0] ?? '/';
  for (const p of paths) while (!`${p}/`.startsWith(`${common}/`)) common = common.slice(0, common.lastIndexOf('/')) || '/';
  const rel = (p: string) => relative(common, p) || '.';
  const out = options.map((o) => {
    const m = /^(lowerdir|upperdir|workdir)=(.*)$/.exec(o);
    return m ? `${m[1]}=${(m[2] as string).split(':').map(rel).join(':')}` : o;
  });
  if (out.join(',').length >= PAGE - 1)
    throw new UnavailableError(`overlay mount options still longer than a page after compaction (${out.join(',').length} bytes)`);
  return { options: out, cwd: common };
}

let overlayCheck: Promise<boolean> | undefined;

/** Whether overlayfs mounts work here (kernel support and privilege), tried once with a real mount in `dir`. */
export function overlaySupported(dir: string): Promise<boolean> {
  overlayCheck ??= (async () => {
    if (process.getuid?.() !== 0) return false;
    const tmp = await mkdtemp(join(dir, '.overlay-check-')).catch(() => undefined);
    if (!tmp) return false;
    try {
      for (const d of ['l', 'u', 'w', 'm']) await mkdir(join(tmp, d));
      sys.mount('overlay', join(tmp, 'm'), 'overlay', 0, `lowerdir=${join(tmp, 'l')},upperdir=${join(tmp, 'u')},workdir=${join(tmp, 'w')}`);
      sys.umount(join(tmp, 'm'));
      return true;
    } catch {
      return false;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  })();
  return overlayCheck;
}

/** Whether something is mounted on `path` (from /proc/self/mountinfo). */
export function isMountPoint(path: string): boolean {
  const decode = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mountPoint = line.split(' ')[4];
    if (mountPoint !== undefined && decode(mountPoint) === path) return true;
  }
  return false;
}
