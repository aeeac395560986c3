// Test and benchmark support: a real Docker engine (Debian's docker.io) on a private data root, exec
// root and socket, with no networking of its own; the peer berth's archives and runs are held against.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const dockerdPath = '/usr/sbin/dockerd';

export interface Dockerd {
  sock: string;
  /** `docker -H unix://SOCK ARGS…` (Debian's client); resolves to stdout. */
  docker(...args: string[]): Promise<string>;
  /** The argv of that command, for timing it. */
  argv(...args: string[]): string[];
  /** Peak RSS of dockerd so far, MiB. */
  peakRssMiB(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts dockerd in `dir` and waits until it answers. Resolves to `{ unavailable }` with dockerd's
 * last lines when it cannot run here (no overlayfs or cgroups inside some sandboxes).
 * @throws Error when dockerd is not installed (scripts/setup.sh installs it)
 */
export async function startDockerd(dir: string): Promise<Dockerd | { unavailable: string }> {
  if (!existsSync(dockerdPath)) throw new Error(`${dockerdPath} is missing: scripts/setup.sh installs Debian's docker.io`);
  await mkdir(dir, { recursive: true });
  const sock = join(dir, 'docker.sock');
  const daemon: ChildProcess = spawn(
    dockerdPath,
    [
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'dockerd.pid'),
      '--host',
      `unix://${sock}`,
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  daemon.stderr?.on('data', (d: Buffer) => {
    if (log.length < 20_000) log += d;
  });
  const argv = (...args: string[]) => ['/usr/bin/docker', '-H', `unix://${sock}`, ...args];
  const docker = async (...args: string[]) => {
    const [cmd, ...rest] = argv(...args) as [string, ...string[]];
    return (await run(cmd, rest, { maxBuffer: 64 << 20 })).stdout;
  };
  const stop = async () => {
    if (daemon.exitCode === null) {
      const exited = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 150 && daemon.exitCode === null; i++) {
    if (
      await docker('version').then(
        () => true,
        () => false,
      )
    ) {
      return {
        sock,
        docker,
        argv,
        peakRssMiB: async () => Number(/VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${daemon.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024,
        stop,
      };
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  return { unavailable: `dockerd did not start: ${log.trim().split('\n').slice(-3).join(' | ')}` };
}
