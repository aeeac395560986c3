import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Berth } from '../src/services/index.js';
import { pushBusyboxImage } from '../src/testutil/busybox.js';
import { berthMain } from '../src/testutil/cli.js';
import { sh } from '../src/testutil/peers.js';
import { startRegistry } from '../src/testutil/registry.js';
import { type Comparison, compare } from './harness.js';

/**
 * Networking's cost and scale (issue 15):
 * - `berth run --rm IMG true` on the default bridge against the same with `--network none`, 20
 *   times each, alternating. Target: at most 30 ms more.
 * - 50 containers started at once on one user network: the wall time, that their addresses are
 *   distinct, and that each reaches all the others by name (one exec per container pinging the 49
 *   others). Target: distinct addresses, every name reached.
 */
export async function networkBench(opts: { runs?: number; parallel?: number } = {}): Promise<Comparison[]> {
  const runs = opts.runs ?? 20;
  const n = opts.parallel ?? 50;
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-net-'));
  const registry = await startRegistry();
  const root = join(dir, 'root');
  const berth = (...args: string[]) => sh(process.execPath, [berthMain, '--root', root, ...args]);
  try {
    const ref = await pushBusyboxImage(dir, registry.host, 'bench/busybox');
    await berth('pull', '-q', ref);
    const [bridge] = await compare(
      'run --rm IMG true: the default bridge against --network none',
      {
        name: 'berth run --rm IMG true (bridge)',
        argv: () => [process.execPath, berthMain, '--root', root, 'run', '--rm', ref, 'true'],
        cleanup: async () => {},
      },
      {
        name: 'berth run --rm --network none IMG true',
        argv: () => [process.execPath, berthMain, '--root', root, 'run', '--rm', '--network', 'none', ref, 'true'],
        cleanup: async () => {},
      },
      { runs, target: '', maxRatio: Number.POSITIVE_INFINITY, maxRssMiB: 150 },
    );
    const c = bridge as Comparison;
    const extraMs = (c.subjectSeconds - c.peerSeconds) * 1000;
    c.target = `<= 30 ms more than none (measured ${extraMs.toFixed(0)} ms more)`;
    c.met = extraMs <= 30;

    await berth('network', 'create', 'benchnet');
    const names = Array.from({ length: n }, (_, i) => `c${i}`);
    const start = performance.now();
    await Promise.all(names.map((name) => berth('run', '-d', '--name', name, '--network', 'benchnet', ref, 'sleep', '600')));
    const startSeconds = (performance.now() - start) / 1000;
    const inspected = JSON.parse(await berth('inspect', ...names)) as {
      NetworkSettings: { Networks: { benchnet: { IPAddress: string } } };
    }[];
    const addresses = new Set(inspected.map((x) => x.NetworkSettings.Networks.benchnet.IPAddress));
    const script = `for h in ${names.join(' ')}; do ping -c1 -W1 $h >/dev/null 2>&1 || echo "miss $h"; done`;
    const reachStart = performance.now();
    const misses: string[] = [];
    for (let i = 0; i < n; i += 10) {
      const outs = await Promise.all(names.slice(i, i + 10).map((name) => berth('exec', name, 'sh', '-c', script)));
      for (const o of outs) misses.push(...o.split('\n').filter(Boolean));
    }
    const reachSeconds = (performance.now() - reachStart) / 1000;
    process.stdout.write(
      `${n} containers started at once on one network\n` +
        `  started in ${startSeconds.toFixed(2)} s; ${addresses.size} distinct addresses of ${n}; ` +
        `${n * n - misses.length} of ${n * n} name lookups and pings answered (checked in ${reachSeconds.toFixed(1)} s)` +
        `   target: distinct addresses, every name reached   ${addresses.size === n && misses.length === 0 ? 'met' : 'NOT met'}\n`,
    );
    await berth('rm', '-f', ...names);
    await berth('network', 'rm', 'benchnet');
    return [c];
  } finally {
    await registry.stop();
    const b = await Berth.open({ root });
    await rm(b.runDir, { recursive: true, force: true });
    b.close();
    await rm(dir, { recursive: true, force: true });
  }
}
