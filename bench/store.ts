import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushSharedImages } from '../src/testutil/busybox.js';
import { berthMain } from '../src/testutil/cli.js';
import { startContainerd } from '../src/testutil/containerd.js';
import { startDockerd } from '../src/testutil/dockerd.js';
import { sh } from '../src/testutil/peers.js';
import { startRegistry } from '../src/testutil/registry.js';
import { type Comparison, compare } from './harness.js';

/**
 * `berth store explain` over a containerd and a docker store of 100 images each: 25 images pulled
 * from the reference registry (busybox plus a top layer each), each tagged 4 times, in both
 * daemons, which keep running. For reference, what each daemon's users run for sizes: `ctr images
 * ls` and `docker system df -v` against the warm daemons. Target (issue 18): under 1 s (median).
 */
export async function storeBench(opts: { distinct?: number; tags?: number; runs?: number } = {}): Promise<Comparison[]> {
  const distinct = opts.distinct ?? 25;
  const tags = opts.tags ?? 4;
  const runs = opts.runs ?? 5;
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-store-'));
  const registry = await startRegistry();
  const containerd = await startContainerd(join(dir, 'containerd'));
  const dockerd = await startDockerd(join(dir, 'dockerd'));
  try {
    if ('unavailable' in dockerd) throw new Error(`dockerd cannot run here: ${dockerd.unavailable}`);
    const tops = Object.fromEntries(Array.from({ length: distinct }, (_, i) => [`bench/store-${i}`, { [`top-${i}.txt`]: `image ${i}\n` }]));
    const refs = Object.values(await pushSharedImages(dir, registry.host, tops));
    for (const ref of refs) {
      await sh('ctr', ['-a', containerd.sock, 'images', 'pull', '--plain-http', ref]);
      await dockerd.docker('pull', ref);
      for (let t = 1; t < tags; t++) {
        await sh('ctr', ['-a', containerd.sock, 'images', 'tag', ref, `${ref}-${t}`]);
        await dockerd.docker('tag', ref, `${ref}-${t}`);
      }
    }
    const count = distinct * tags;
    const cli = (...args: string[]) => [process.execPath, berthMain, '--root', join(dir, 'unused-root'), 'store', 'explain', ...args];
    const out: Comparison[] = [];
    for (const [what, argv, peerName, peer] of [
      ['containerd', cli('containerd', join(dir, 'containerd', 'root')), 'ctr images ls', ['ctr', '-a', containerd.sock, 'images', 'ls']],
      ['docker', cli('docker', join(dir, 'dockerd', 'data')), 'docker system df -v', dockerd.argv('system', 'df', '-v')],
    ] as const) {
      const [c] = await compare(
        `store explain ${what}, ${count} images`,
        { name: `berth store explain ${what}`, argv: () => [...argv], cleanup: async () => {} },
        {
          name: `${peerName} (reference, warm daemon)`,
          argv: () => [...peer],
          cleanup: async () => {},
        },
        { runs, target: '< 1 s (median)', maxRatio: Number.POSITIVE_INFINITY, maxRssMiB: 300 },
      );
      const first = c as Comparison;
      out.push({ ...first, met: first.subjectSeconds < 1, target: '< 1 s (median)' });
    }
    return out;
  } finally {
    if (!('unavailable' in dockerd)) await dockerd.stop();
    await containerd.stop();
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
