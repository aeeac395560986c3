import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { FailedPreconditionError, InvalidArgumentError } from '../errdefs/index.js';
import { capabilitySet, overrideEnv, type Process, type RuntimeSpec, resolveUser } from '../runtime/index.js';
import type { ContainerContext } from './context.js';
import { getContainer } from './lifecycle.js';
import type { Container, ExecOpts } from './types.js';

const run = promisify(execFile);

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

/** A process an exec started: its stdio, its exit code, and its terminal's size (with a TTY). */
export interface ExecProcess {
  child: ChildProcess;
  /** The exit code (126 when it could not start, 128 + 9 after a signal). */
  exited: Promise<number>;
  resize(size: { rows: number; cols: number }): Promise<void>;
}

/** Quotes for sh. */
const shellQuote = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;

/**
 * Runs an exec's process with `runc exec`: stdout and stderr as pipes (one terminal with `tty`:
 * script(1) lends runc a pseudo-terminal, whose output comes on stdout), stdin a pipe when asked;
 * `detach` leaves it to runc and returns at once. Its spec file goes when it exits.
 */
export async function spawnExec(
  ctx: ContainerContext,
  ref: string,
  opts: ExecOpts & { stdin?: boolean; detach?: boolean },
): Promise<ExecProcess> {
  const { runcArgs, cleanup } = await execArgs(ctx, ref, opts);
  const runc = ctx.runc.bin;
  let file = runc;
  let argv = opts.detach ? [...runcArgs.slice(0, -1), '--detach', runcArgs.at(-1) as string] : runcArgs;
  if (opts.tty && !opts.detach) {
    file = 'script';
    // the size goes on script's pty before runc starts: runc gives the container's terminal that size
    const size = opts.size && opts.size.rows > 0 && opts.size.cols > 0 ? `stty rows ${opts.size.rows} cols ${opts.size.cols}; exec ` : '';
    argv = ['-q', '-e', '-f', '-E', 'never', '-c', `${size}${[runc, ...argv].map(shellQuote).join(' ')}`, '/dev/null'];
  }
  const stdin = !opts.detach && (opts.stdin || opts.tty) ? 'pipe' : 'ignore';
  const child = spawn(file, argv, { stdio: [stdin, opts.detach ? 'ignore' : 'pipe', opts.detach ? 'ignore' : 'pipe'] });
  child.stdin?.on('error', () => {});
  const exited = new Promise<number>((resolve) => {
    child.on('error', () => resolve(126));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + 9 : 1)));
  }).finally(cleanup);
  return {
    child,
    exited,
    // the pty script(1) lent runc is its child's stdin; runc takes the SIGWINCH and resizes the container's
    resize: async ({ rows, cols }) => {
      const pid = child.pid;
      if (!opts.tty || !pid || rows <= 0 || cols <= 0) return;
      // a size asked for at once waits for script's child (its stdin is the pty), a moment at most;
      // runc copies that size to the container's terminal when it starts, and follows SIGWINCH after
      for (let i = 0; i < 100 && child.exitCode === null; i++) {
        let first: string | undefined;
        try {
          first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0];
        } catch {
          return; // ended meanwhile
        }
        // script's child has the pty as stdin once it set it up (a moment after the fork)
        if (first && readlinkOrEmpty(`/proc/${first}/fd/0`).startsWith('/dev/pts/')) {
          await run('stty', ['-F', `/proc/${first}/fd/0`, 'rows', String(rows), 'cols', String(cols)]).catch(() => {});
          return;
        }
        await sleep(10);
      }
    },
  };
}

function readlinkOrEmpty(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

/** `ps` of the container's processes (docker top). */
export async function top(ctx: ContainerContext, ref: string, psArgs?: string[]): Promise<string> {
  const rec = await getContainer(ctx, ref);
  if (rec.state.status !== 'running') throw new FailedPreconditionError(`container ${rec.id.slice(0, 12)} is not running`);
  return ctx.runc.ps(rec.id, psArgs);
}
