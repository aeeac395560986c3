// Test support: the berth CLI run as its own process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Berth } from '../services/index.js';
import { cliEntry } from '../sys/index.js';

/** The CLI as users run it: the bundle (dist/berth.cjs). */
export const berthMain = cliEntry();

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOpts {
  /** Bytes for stdin, or a stream piped into it. */
  input?: Uint8Array | string | NodeJS.ReadableStream;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** SIGKILL it after this many ms (code null). */
  killAfter?: number;
}

/** Runs a program to its end, collecting its output (the tests' runner for berth, docker and compose). */
export function runProgram(bin: string, args: string[], opts: RunOpts = {}): Promise<Result> {
  const p = spawn(bin, args, {
    env: { ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => {
    stdout += d;
  });
  p.stderr.on('data', (d: Buffer) => {
    stderr += d;
  });
  p.stdin.on('error', () => {}); // it may stop reading early (a refused archive)
  const input = opts.input ?? '';
  if (typeof input === 'string' || input instanceof Uint8Array) p.stdin.end(input);
  else input.pipe(p.stdin);
  const timer = opts.killAfter === undefined ? undefined : setTimeout(() => p.kill('SIGKILL'), opts.killAfter);
  return new Promise((resolve) =>
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** Runs `berth` with a private root (BERTH_ROOT) and optional input and environment. */
export function berth(root: string, args: string[], opts: Omit<RunOpts, 'cwd'> = {}): Promise<Result> {
  return runProgram(process.execPath, [berthMain, ...args], { ...opts, env: { BERTH_ROOT: root, BERTH_NAMESPACE: '', ...opts.env } });
}

/** Asserts success and returns the result. */
export function ok(r: Result, what: string): Result {
  assert.equal(r.code, 0, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
  return r;
}

/** Asserts a failure with `code` and exactly one line of error matching `message`. */
export function fails(r: Result, code: number, message: RegExp): void {
  assert.equal(r.code, code, `exit ${r.code}, stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line of error, got: ${r.stderr}`);
  assert.match(lines[0] ?? '', message);
}

/** Fresh roots under a test's work directory, each `<tmp>/root`; `cleanup` removes what they left outside. */
export class TestRoots {
  readonly #roots: string[] = [];
  async make(work: string): Promise<string> {
    const root = join(await mkdtemp(join(work, 'r-')), 'root');
    this.#roots.push(root);
    return root;
  }
  cleanup(): Promise<void> {
    return cleanupRoots(this.#roots);
  }
}

/** Removes what the roots left outside themselves: their containers, networks and runtime directories under /run. */
export async function cleanupRoots(roots: string[]): Promise<void> {
  for (const root of roots) {
    for (const ns of ['default', 'k8s.io']) {
      const ids = (await berth(root, ['-n', ns, 'ps', '-aq'])).stdout.split('\n').filter(Boolean);
      if (ids.length) await berth(root, ['-n', ns, 'rm', '-f', ...ids]);
    }
    await berth(root, ['network', 'prune', '-f']); // their bridges and rules are the host's
    const b = await Berth.open({ root });
    await rm(b.runDir, { recursive: true, force: true });
    b.close();
  }
}
