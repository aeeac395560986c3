import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Berth } from '../src/services/index.js';
import { pushBusyboxImage } from '../src/testutil/busybox.js';
import { berthMain } from '../src/testutil/cli.js';
import { type Containerd, startContainerd } from '../src/testutil/containerd.js';
import { type Dockerd, startDockerd } from '../src/testutil/dockerd.js';
import { sh } from '../src/testutil/peers.js';
import { startRegistry } from '../src/testutil/registry.js';
import { type Comparison, compare, median } from './harness.js';

const rssKiB = async (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

/**
 * `berth run --rm IMG true` against `ctr run --rm IMG ID true` (containerd 1.6 with its runc shim,
 * one warm daemon for all runs, its peak RSS counted) and, for reference, the same with `--seccomp`
 * (ctr applies no seccomp profile by default; berth applies its default one) and `docker run --rm
 * --network none` (Debian's docker.io on one warm dockerd of its own), 20 times each, alternating;
 * the image (busybox) is pulled and unpacked by each first, as their users run it. Then the
 * monitor's memory per running container: conmon for berth, containerd-shim-runc-v2 for containerd,
 * with five `sleep` containers each.
 * Target (issue 5): median at most 1.0x `ctr run`.
 */
export async function runBench(opts: { runs?: number } = {}): Promise<Comparison[]> {
  const runs = opts.runs ?? 20;
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-run-'));
  const registry = await startRegistry();
  let containerd: Containerd | undefined;
  let dockerd: Dockerd | undefined;
  const root = join(dir, 'root');
  const berth = (...args: string[]) => sh(process.execPath, [berthMain, '--root', root, ...args]);
  try {
    const ref = await pushBusyboxImage(dir, registry.host, 'bench/busybox');
    await berth('pull', '-q', ref);
    containerd = await startContainerd(join(dir, 'containerd'));
    const ctr = (...args: string[]) => sh('ctr', ['-a', (containerd as Containerd).sock, '-n', 'bench', ...args]);
    await ctr('image', 'pull', '--plain-http', ref);
    const cd = containerd;
    const engine = await startDockerd(join(dir, 'dockerd'));
    if ('unavailable' in engine) throw new Error(engine.unavailable);
    dockerd = engine;
    await engine.docker('pull', '-q', ref); // dockerd speaks plain HTTP to 127.0.0.0/8 by default
    const results = await compare(
      'run --rm IMG true (busybox, overlayfs, runc)',
      {
        // ctr gives a container no network; berth's default is the bridge (see the network benchmark)
        name: 'berth run --rm --network none IMG true',
        argv: () => [process.execPath, berthMain, '--root', root, 'run', '--rm', '--network', 'none', ref, 'true'],
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
          // ctr applies no seccomp profile unless asked; berth applies its default, as docker does.
          name: 'ctr run --rm --seccomp IMG ID true',
          argv: (i) => ['ctr', '-a', cd.sock, '-n', 'bench', 'run', '--rm', '--seccomp', ref, `bench-s-${i}`, 'true'],
          helperPeakRssMiB: () => cd.peakRssMiB(),
          cleanup: async () => {},
        },
        {
          name: 'docker run --rm --network none IMG true (20.10)',
          argv: () => engine.argv('run', '--rm', '--network', 'none', ref, 'true'),
          helperPeakRssMiB: () => engine.peakRssMiB(),
          cleanup: async () => {},
        },
      ],
      { runs, target: '<= 1.0x ctr run (median)', maxRatio: 1.0, maxRssMiB: 150 },
    );

    // Memory of the monitor per running container.
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await berth('run', '-d', ref, 'sleep', '300')).trim());
    for (let i = 0; i < 5; i++) await ctr('run', '-d', ref, `sleeper-${i}`, 'sleep', '300');
    const conmons = await Promise.all(
      ids.map(async (id) => rssKiB(Number(await readFile(join(root, 'containers', 'default', id, 'conmon.pid'), 'utf8')))),
    );
    const shims = (await sh('pgrep', ['-f', `containerd-shim-runc-v2 -namespace bench`])).split('\n').filter(Boolean).map(Number);
    const shimRss = await Promise.all(shims.map(rssKiB));
    process.stdout.write(
      `monitor memory per running container (RSS, median of ${conmons.length})\n` +
        `  berth: conmon                                ${(median(conmons) / 1024).toFixed(1)} MiB\n` +
        `  containerd: containerd-shim-runc-v2 (${shimRss.length})        ${(median(shimRss) / 1024).toFixed(1)} MiB\n`,
    );
    await berth('rm', '-f', ...ids);
    for (let i = 0; i < 5; i++) await ctr('task', 'kill', '-s', 'KILL', `sleeper-${i}`).catch(() => '');
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 5; i++) await ctr('container', 'rm', `sleeper-${i}`).catch(() => '');
    return results;
  } finally {
    await containerd?.stop();
    await dockerd?.stop();
    await registry.stop();
    const b = await Berth.open({ root });
    await rm(b.runDir, { recursive: true, force: true });
    b.close();
    await rm(dir, { recursive: true, force: true });
  }
}
