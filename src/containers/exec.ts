import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../errdefs/index.js';
import { capabilitySet, overrideEnv, type Process, type RuntimeSpec, resolveUser } from '../runtime/index.js';
import type { ContainerContext } from './context.js';
import { getContainer } from './lifecycle.js';
import type { Container, ExecOpts } from './types.js';

/**
 * Writes the process spec of an exec into a running container (its command, env over the
 * container's, working directory and user resolved in its rootfs, the container's capabilities)
 * and returns the runc arguments that run it.
 */
export async function execArgs(
  ctx: ContainerContext,
  ref: string,
  opts: ExecOpts,
): Promise<{ container: Container; runcArgs: string[]; cleanup: () => void }> {
  const rec = await getContainer(ctx, ref);
  if (rec.state.status !== 'running') throw new FailedPreconditionError(`container ${rec.id.slice(0, 12)} is not running`);
  if (rec.state.paused) throw new FailedPreconditionError(`container ${rec.id} is paused, unpause the container before exec`);
  if (opts.cmd.length === 0) throw new InvalidArgumentError('exec: no command given');
  const p = ctx.paths(rec.id);
  const spec = JSON.parse(await readFile(p.spec, 'utf8')) as RuntimeSpec;
  const user = opts.user !== undefined ? resolveUser(p.rootfs, opts.user) : undefined;
  const env = overrideEnv(spec.process.env, opts.env ?? []);
  const proc: Process = {
    ...spec.process,
    terminal: opts.tty ?? false,
    args: opts.cmd,
    env,
    cwd: opts.workingDir ?? spec.process.cwd,
    ...(user
      ? { user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: user.additionalGids } : {}) } }
      : {}),
  };
  if (opts.privileged) {
    const all = capabilitySet({ privileged: true });
    proc.capabilities = { bounding: all, effective: all, permitted: all };
  }
  const file = join(p.dir, `exec-${randomBytes(6).toString('hex')}.json`);
  writeFileSync(file, JSON.stringify(proc));
  return {
    container: rec,
    runcArgs: [...ctx.runc.globalArgs, 'exec', '--process', file, ...(opts.tty ? ['--tty'] : []), rec.id],
    cleanup: () => rmSync(file, { force: true }),
  };
}

/** `ps` of the container's processes (docker top). */
export async function top(ctx: ContainerContext, ref: string, psArgs?: string[]): Promise<string> {
  const rec = await getContainer(ctx, ref);
  if (rec.state.status !== 'running') throw new FailedPreconditionError(`container ${rec.id.slice(0, 12)} is not running`);
  return ctx.runc.ps(rec.id, psArgs);
}
