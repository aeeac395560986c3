// A container's process in the foreground of this terminal (`run`, `exec`): output and input
// through, signals forwarded, the exit code as docker gives it.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Container, Containers } from '../containers/index.js';
import { resize } from '../runtime/index.js';

/**
 * Runs a started container in the foreground: its output to ours (stdout and stderr apart, or the
 * terminal), our stdin to it with -i, signals forwarded; returns its exit code once it is recorded.
 */
export async function attachAndWait(containers: Containers, id: string, opts: { stdin: boolean }): Promise<Container> {
  const rec = containers.ns.containers.find(id);
  const tty = (rec.config as { Config: { Tty: boolean } }).Config.Tty;
  const size = tty && process.stdout.isTTY ? { rows: process.stdout.rows, cols: process.stdout.columns } : undefined;
  const { monitor, attachment } = await containers.start(id, { attach: true, ...(size ? { size } : {}) });
  if (!monitor || !attachment) return containers.get(id);
  const bundle = containers.paths(id).dir;
  const forward = (sig: NodeJS.Signals) => void containers.runc.kill(id, sig.replace(/^SIG/, '')).catch(() => {});
  const signals: NodeJS.Signals[] = tty ? [] : ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  for (const s of signals) process.on(s, forward);
  const onResize = () => resize(bundle, { rows: process.stdout.rows, cols: process.stdout.columns });
  if (size) process.stdout.on('resize', onResize);
  const raw = tty && opts.stdin && process.stdin.isTTY;
  if (raw) process.stdin.setRawMode(true);
  const onData = (d: Buffer) => attachment.write(d);
  const onEnd = () => attachment.closeStdin();
  if (opts.stdin) {
    process.stdin.on('data', onData);
    process.stdin.on('end', onEnd);
  }
  try {
    for await (const p of attachment.output) {
      const out = p.stream === 1 ? process.stdout : process.stderr;
      if (!out.write(p.data)) await new Promise((r) => out.once('drain', r));
    }
    await monitor.exited;
  } finally {
    attachment.close();
    for (const s of signals) process.off(s, forward);
    process.stdout.off('resize', onResize);
    if (opts.stdin) {
      process.stdin.off('data', onData);
      process.stdin.off('end', onEnd);
      process.stdin.destroy();
    }
    if (raw) process.stdin.setRawMode(false);
  }
  return containers.cleanup(id);
}

/** docker's exit codes for `run` failures: 125 berth's own, 126 not executable, 127 not found. */
export function runFailure(err: unknown, debug: boolean): never {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`berth: ${msg}\n`);
  if (debug && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  const code = /executable file not found|no such file or directory/.test(msg) ? 127 : /permission denied/i.test(msg) ? 126 : 125;
  process.exit(code);
}

/**
 * Runs `runc exec` in the foreground. With -t and a terminal of ours, runc drives it; with -t and
 * no terminal, script(1) lends runc a pseudo-terminal, as a terminal would.
 */
export function runExec(runc: string, args: string[], flags: { interactive?: boolean; tty?: boolean; detach?: boolean }): Promise<number> {
  let file = runc;
  let argv = flags.detach ? [...args.slice(0, -1), '--detach', args.at(-1) as string] : args;
  let stdin: 'inherit' | 'ignore' | 'pipe' = flags.interactive ? 'inherit' : 'ignore';
  if (flags.tty && !process.stdin.isTTY && !flags.detach) {
    const quoted = [runc, ...argv].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    file = 'script';
    argv = ['-q', '-e', '-f', '-E', 'never', '-c', quoted, '/dev/null'];
    // script passes an end of its input on as a NUL byte: without -i, its input stays open, empty.
    if (!flags.interactive) stdin = 'pipe';
  }
  const child = spawn(file, argv, { stdio: [stdin, 'inherit', 'inherit'] });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, forward);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      for (const s of signals) process.off(s, forward);
      resolve(code ?? 128 + (signal ? (osSignals[signal] ?? 1) : 1));
    });
  });
}

const osSignals = constants.signals as Record<string, number>;
