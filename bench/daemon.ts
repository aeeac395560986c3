import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Berth } from '../src/services/index.js';
import { pushBusyboxImage } from '../src/testutil/busybox.js';
import { type Containerd, startContainerd } from '../src/testutil/containerd.js';
import { type BerthDaemon, dockerClis, startBerthDaemon } from '../src/testutil/daemon.js';
import { type Dockerd, startDockerd } from '../src/testutil/dockerd.js';
import { sh } from '../src/testutil/peers.js';
import { startRegistry } from '../src/testutil/registry.js';
import { type Comparison, compare, median } from './harness.js';

const status = async (pid: number, field: 'VmRSS' | 'VmHWM') =>
  Number(new RegExp(`${field}:\\s+(\\d+)`).exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

/** `GET /containers/json?all=1` on the daemon's socket, in seconds. */
function listTime(sock: string): Promise<number> {
  const start = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, path: '/v1.43/containers/json?all=1' }, (res) => {
      res.resume();
      res.on('end', () => resolve(Number(process.hrtime.bigint() - start) / 1e9));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * The Engine API daemon: `docker run --rm IMG true` (docker CLI 28) through `berth daemon`, against
 * `ctr run --rm` on a warm containerd 1.6 and, for reference, the same docker CLI on a warm dockerd
 * (Debian's 20.10, `--network none`); each has the image pulled first, 20 runs alternating. Then
 * the daemon's memory idle and with 100 running containers, and `docker ps` (the CLI, and the API
 * request alone) with those 100.
 * Targets (issue 14): <= 1.0x ctr run; RSS < 60 MiB idle, < 120 MiB with 100 containers; ps < 50 ms.
 */
export async function daemonBench(opts: { runs?: number; containers?: number } = {}): Promise<Comparison[]> {
  const runs = opts.runs ?? 20;
  const count = opts.containers ?? 100;
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-daemon-'));
  const registry = await startRegistry();
  const root = join(dir, 'root');
  let daemon: BerthDaemon | undefined;
  let containerd: Containerd | undefined;
  let dockerd: Dockerd | undefined;
  const cli = dockerClis['docker 28'];
  try {
    const ref = await pushBusyboxImage(dir, registry.host, 'bench/busybox');
    daemon = await startBerthDaemon(root, join(dir, 'run'));
    const d = daemon;
    const docker = (...args: string[]) => sh(cli, ['-H', d.host, ...args]);
    await docker('pull', '-q', ref);
    containerd = await startContainerd(join(dir, 'containerd'));
    const cd = containerd;
    await sh('ctr', ['-a', cd.sock, '-n', 'bench', 'image', 'pull', '--plain-http', ref]);
    const engine = await startDockerd(join(dir, 'dockerd'));
    if ('unavailable' in engine) throw new Error(engine.unavailable);
    dockerd = engine;
    await engine.docker('pull', '-q', ref);
    const fresh = await status(d.pid, 'VmRSS');
    const results = await compare(
      'docker run --rm IMG true through berth daemon (busybox, runc)',
      {
        // --network none: as ctr's containers, and the reference dockerd's (it runs with --bridge=none)
        name: 'docker run --rm --network none IMG true (CLI 28, berth daemon)',
        argv: () => [cli, '-H', d.host, 'run', '--rm', '--network', 'none', ref, 'true'],
        helperPeakRssMiB: () => status(d.pid, 'VmRSS'),
        cleanup: async () => {},
      },
      [
        {
          name: 'ctr run --rm IMG ID true (containerd 1.6)',
          argv: (i) => ['ctr', '-a', cd.sock, '-n', 'bench', 'run', '--rm', ref, `bench-${i}`, 'true'],
          helperPeakRssMiB: () => cd.peakRssMiB(),
          cleanup: async () => {},
        },
        {
          name: 'docker run --rm IMG true (CLI 28, dockerd 20.10)',
          argv: () => [cli, '-H', `unix://${engine.sock}`, 'run', '--rm', '--network', 'none', ref, 'true'],
          helperPeakRssMiB: () => engine.peakRssMiB(),
          cleanup: async () => {},
        },
      ],
      { runs, target: '<= 1.0x ctr run (median)', maxRatio: 1.0, maxRssMiB: 150 },
    );

    const idle = await status(d.pid, 'VmRSS');
    for (let i = 0; i < count; i++) await docker('run', '-d', '--network', 'none', ref, 'sleep', '600');
    const running = await status(d.pid, 'VmRSS');
    const apiTimes: number[] = [];
    const cliTimes: number[] = [];
    for (let i = 0; i < 10; i++) {
      apiTimes.push(await listTime(d.sock));
      const start = process.hrtime.bigint();
      await docker('ps', '-a');
      cliTimes.push(Number(process.hrtime.bigint() - start) / 1e9);
    }
    const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;
    process.stdout.write(
      `berth daemon memory and listing (${count} running containers)\n` +
        `  RSS idle, started and the image pulled       ${fresh.toFixed(1)} MiB   target < 60 MiB   ${fresh < 60 ? 'met' : 'NOT met'}\n` +
        `  RSS idle after the ${3 * (runs + 1)} runs above             ${idle.toFixed(1)} MiB\n` +
        `  RSS with ${count} running                      ${running.toFixed(1)} MiB   target < 120 MiB   ${running < 120 ? 'met' : 'NOT met'}\n` +
        `  GET /containers/json?all=1 (median of 10)    ${ms(median(apiTimes))}   target < 50 ms   ${median(apiTimes) < 0.05 ? 'met' : 'NOT met'}\n` +
        `  docker ps -a, the CLI (median of 10)         ${ms(median(cliTimes))}\n`,
    );
    const ids = (await docker('ps', '-aq')).split('\n').filter(Boolean);
    await docker('rm', '-f', ...ids);
    return results;
  } finally {
    await daemon?.stop();
    await containerd?.stop();
    await dockerd?.stop();
    await registry.stop();
    const b = await Berth.open({ root });
    await rm(b.runDir, { recursive: true, force: true });
    b.close();
    await rm(dir, { recursive: true, force: true });
  }
}
