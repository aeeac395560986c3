// Test support: the berth CLI run as its own process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cliEntry } from '../sys/index.js';

/** The CLI as users run it: the bundle (dist/berth.cjs). */
export const berthMain = cliEntry();

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `berth` with a private root (BERTH_ROOT) and optional input and environment. */
export function berth(
  root: string,
  args: string[],
  opts: {
    input?: Uint8Array | string;
    env?: Record<string, string> /** SIGKILL it after this many ms (code null). */;
    killAfter?: number;
  } = {},
): Promise<Result> {
  const p = spawn(process.execPath, [berthMain, ...args], {
    env: { ...process.env, BERTH_ROOT: root, BERTH_NAMESPACE: '', ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => {
    stdout += d;
  });
  p.stderr.on('data', (d: Buffer) => {
    stderr += d;
  });
  p.stdin.end(opts.input ?? '');
  const timer = opts.killAfter === undefined ? undefined : setTimeout(() => p.kill('SIGKILL'), opts.killAfter);
  return new Promise((resolve) =>
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
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
