import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FailedPreconditionError, NotFoundError } from '../errdefs/index.js';
import { lookPath } from '../sys/index.js';

const run = promisify(execFile);

/** runc's own message from its stderr (`time=… level=error msg="…"`), or the whole text. */
export function runcMessage(stderr: string): string {
  const msgs = [...stderr.matchAll(/msg="((?:[^"\\]|\\.)*)"/g)].map((m) => (m[1] as string).replace(/\\(.)/g, '$1'));
  return (msgs.at(-1) ?? stderr).trim();
}

/** runc for a root's run directory (state in `<runDir>/runc`); `BERTH_RUNC` names another binary. */
export function runcFor(runDir: string): Runc {
  return new Runc(join(runDir, 'runc'), process.env.BERTH_RUNC ?? lookPath('runc'));
}

/** The `runc` binary, with one state root (`--root`) that keeps berth's containers apart from others. */
export class Runc {
  constructor(
    readonly root: string,
    readonly bin = 'runc',
  ) {}

  /** Global arguments every call takes. */
  get globalArgs(): string[] {
    return ['--root', this.root];
  }

  async #run(args: string[], what: string): Promise<string> {
    try {
      const { stdout } = await run(this.bin, [...this.globalArgs, ...args], { maxBuffer: 16 << 20 });
      return stdout;
    } catch (err) {
      const msg = runcMessage(String((err as { stderr?: string }).stderr ?? (err as Error).message));
      if (/does not exist|not found/.test(msg)) throw new NotFoundError(`${what}: ${msg}`, { cause: err });
      throw new FailedPreconditionError(`${what}: ${msg}`, { cause: err });
    }
  }

  start(id: string): Promise<string> {
    return this.#run(['start', id], `runc start "${id}"`);
  }

  /** Sends `signal` (a name like `TERM` or a number) to the init process (with `all`, to every process). */
  async kill(id: string, signal: string | number, opts: { all?: boolean } = {}): Promise<void> {
    await this.#run(['kill', ...(opts.all ? ['--all'] : []), id, String(signal)], `runc kill "${id}"`);
  }

  /** Changes a running container's cgroup limits (`--memory`, `--cpu-quota`, `--pids-limit`…). */
  async update(id: string, flags: string[]): Promise<void> {
    await this.#run(['update', ...flags, id], `runc update "${id}"`);
  }

  /** Freezes every process of the container (the cgroup freezer). */
  async pause(id: string): Promise<void> {
    await this.#run(['pause', id], `runc pause "${id}"`);
  }

  async resume(id: string): Promise<void> {
    await this.#run(['resume', id], `runc resume "${id}"`);
  }

  /** Whether runc keeps state for `id` (a container created and not yet deleted): no process needed to ask. */
  has(id: string): boolean {
    return existsSync(join(this.root, id));
  }

  /** Deletes the runtime state (and, forced, kills what still runs); nothing to delete is fine. */
  async delete(id: string, opts: { force?: boolean } = {}): Promise<void> {
    if (!this.has(id)) return;
    try {
      await this.#run(['delete', ...(opts.force ? ['--force'] : []), id], `runc delete "${id}"`);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }

  /**
   * `runc run` in the foreground, without a monitor: the process's stdout and stderr go to
   * `onOutput` as they come, stdin is empty. Resolves with its exit code (128+n for a signal);
   * an abort kills it. What a build step runs.
   */
  run(id: string, bundle: string, opts: { onOutput?: (chunk: Buffer) => void; signal?: AbortSignal } = {}): Promise<number> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.bin, [...this.globalArgs, 'run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
      let errText = '';
      child.stdout.on('data', (c: Buffer) => opts.onOutput?.(c));
      child.stderr.on('data', (c: Buffer) => {
        if (errText.length < 8192) errText += c.toString();
        opts.onOutput?.(c);
      });
      const abort = () => void this.kill(id, 'KILL', { all: true }).catch(() => child.kill('SIGKILL'));
      opts.signal?.addEventListener('abort', abort, { once: true });
      child.on('error', reject);
      child.on('close', (code, signal) => {
        opts.signal?.removeEventListener('abort', abort);
        // runc's own failure before the process ran: its message, not an exit code.
        if (code !== 0 && /level=error/.test(errText)) reject(new FailedPreconditionError(`runc run: ${runcMessage(errText)}`));
        else resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15));
      });
    });
  }

  /** runc's view of a container, or undefined when it has none. */
  async state(id: string): Promise<{ status: string; pid: number } | undefined> {
    try {
      return JSON.parse(await this.#run(['state', id], `runc state "${id}"`)) as { status: string; pid: number };
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /** `ps` of the container's processes (runc runs ps(1) and keeps the container's rows), with `psArgs`. */
  ps(id: string, psArgs: string[] = ['-ef']): Promise<string> {
    return this.#run(['ps', id, ...psArgs], `runc ps "${id}"`);
  }
}
