import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { FailedPreconditionError, UnavailableError } from '../errdefs/index.js';
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
        const ro = m.options.includes('ro');
        await run('mount', ['--bind', m.source, target], opts);
        if (ro) await run('mount', ['-o', 'remount,bind,ro', target], opts);
        continue;
      }
      let options = m.options;
      let cwd: string | undefined;
      if (options.join(',').length >= PAGE - 1) ({ options, cwd } = compactOverlayOptions(options));
      await run('mount', ['-t', m.type, '-o', options.join(','), m.source, target], { ...opts, cwd });
    } catch (err) {
      const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
      throw new FailedPreconditionError(`mount ${m.type} on "${target}": ${stderr || (err as Error).message}`, { cause: err });
    }
  }
}

/** Unmounts `target`; a busy mount is an error (no lazy detach). */
export async function unmount(target: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  try {
    await run('umount', [target], opts);
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
    throw new FailedPreconditionError(`unmount "${target}": ${stderr || (err as Error).message}`, { cause: err });
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
      await run('sh', ['-c', 'mkdir l u w m && mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w m && umount m'], { cwd: tmp });
      return true;
    } catch {
      return false;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  })();
  return overlayCheck;
}
