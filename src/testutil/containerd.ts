// Test and benchmark support: a real containerd (Debian's) on a private root, state and socket.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sh } from './peers.js';

/** A containerd of the benchmark's own (root, state and socket in `dir`), the peer of berth. */
export interface Containerd {
  sock: string;
  pid: number;
  /** Peak RSS of the daemon so far, MiB. */
  peakRssMiB(): Promise<number>;
  stop(): Promise<void>;
}

/** Without `cri`, its CRI plugin is off; with it, on, configured by those lines (under the plugin's table). */
export async function startContainerd(dir: string, opts: { cri?: string[] } = {}): Promise<Containerd> {
  await mkdir(dir, { recursive: true });
  const sock = join(dir, 'containerd.sock');
  await writeFile(
    join(dir, 'config.toml'),
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      ...(opts.cri ? [] : ['disabled_plugins = ["io.containerd.grpc.v1.cri"]']),
      '[grpc]',
      `  address = "${sock}"`,
      '[ttrpc]',
      `  address = "${sock}.ttrpc"`,
      ...(opts.cri ? ['[plugins."io.containerd.grpc.v1.cri"]', ...opts.cri] : []),
    ].join('\n'),
  );
  const daemon: ChildProcess = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: 'ignore' });
  for (let t = 0; ; t++) {
    try {
      await sh('ctr', ['-a', sock, 'version']);
      break;
    } catch (err) {
      if (t > 100) {
        daemon.kill('SIGKILL');
        throw err;
      }
      await sleep(100);
    }
  }
  return {
    sock,
    pid: daemon.pid as number,
    peakRssMiB: async () => Number(/VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${daemon.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024,
    stop: async () => {
      const exited = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      await exited;
      // containerd leaves its overlay snapshots unmounted; the tree goes with the root.
      await rm(dir, { recursive: true, force: true });
    },
  };
}
