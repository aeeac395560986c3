import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBlob, writeBlob } from '../src/content/index.js';
import { digestOf } from '../src/oci/index.js';
import { Berth } from '../src/services/index.js';
import { pushSharedImages } from '../src/testutil/busybox.js';
import { berthMain } from '../src/testutil/cli.js';
import { sh } from '../src/testutil/peers.js';
import { startRegistry } from '../src/testutil/registry.js';
import { type Comparison, compare } from './harness.js';

/**
 * `berth system df` and `berth images` with 1,000 images in the store that share their layers: two
 * images pulled from the reference registry (busybox plus a top layer each), then 998 more made
 * from them through the library, each with its own config (a label) and manifest over the same
 * layers, so they share the layers' blobs and snapshots. For reference, what people run otherwise:
 * `du -s` over the root. Target (issue 6): under 1 s each (median).
 */
export async function diskBench(opts: { images?: number; runs?: number } = {}): Promise<Comparison[]> {
  const count = opts.images ?? 1000;
  const runs = opts.runs ?? 5;
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-disk-'));
  const registry = await startRegistry();
  // BENCH_DISK_ROOT keeps the store for profiling (made once, reused after).
  const root = process.env.BENCH_DISK_ROOT || join(dir, 'root');
  try {
    if (!(process.env.BENCH_DISK_ROOT && existsSync(join(root, 'metadata.db')))) await fill(root, dir, registry.host, count);
    const cli = (...args: string[]) => [process.execPath, berthMain, '--root', root, ...args];
    const out: Comparison[] = [];
    for (const [what, argv] of [
      ['system df', cli('system', 'df')],
      ['images', cli('images')],
    ] as const) {
      const [c] = await compare(
        `${what} with ${count} images sharing layers`,
        { name: `berth ${what}`, argv: () => [...argv], cleanup: async () => {} },
        { name: 'du -s ROOT (reference)', argv: () => ['du', '-s', root], cleanup: async () => {} },
        { runs, target: '< 1 s (median)', maxRatio: Number.POSITIVE_INFINITY, maxRssMiB: 300 },
      );
      const first = c as Comparison;
      out.push({ ...first, met: first.subjectSeconds < 1, target: '< 1 s (median)' });
    }
    return out;
  } finally {
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Two images pulled, then `count - 2` more made from them through the library. */
async function fill(root: string, dir: string, host: string, count: number): Promise<void> {
  const refs = await pushSharedImages(dir, host, { 'bench/a': { 'a.txt': 'a\n' }, 'bench/b': { 'b.txt': 'b\n' } });
  for (const ref of Object.values(refs)) await sh(process.execPath, [berthMain, '--root', root, 'pull', '-q', ref]);
  const b = await Berth.open({ root });
  try {
    const ns = b.namespace('default');
    const bases = Object.values(refs).map((r) => ns.images.get(r));
    for (let i = 0; i < count - bases.length; i++) {
      const base = bases[i % bases.length] as (typeof bases)[number];
      const manifest = JSON.parse(Buffer.from(await readBlob(ns.content, base.target, { maxSize: 4 << 20 })).toString()) as {
        config: { digest: string; size: number; mediaType: string };
      };
      const config = JSON.parse(Buffer.from(await readBlob(ns.content, manifest.config as never, { maxSize: 4 << 20 })).toString()) as {
        config: { Labels?: Record<string, string> };
      };
      config.config.Labels = { ...config.config.Labels, 'bench.image': String(i) };
      const configBytes = Buffer.from(JSON.stringify(config));
      const c = await writeBlob(ns.content, `bench-config-${i}`, [configBytes], {
        expected: { digest: digestOf(configBytes), size: configBytes.length },
      });
      manifest.config = { ...manifest.config, digest: c.digest, size: c.size };
      const manifestBytes = Buffer.from(JSON.stringify(manifest));
      const m = await writeBlob(ns.content, `bench-manifest-${i}`, [manifestBytes], {
        expected: { digest: digestOf(manifestBytes), size: manifestBytes.length },
      });
      ns.images.put({ name: `${host}/bench/img-${i}:latest`, target: { ...base.target, digest: m.digest, size: m.size } });
    }
  } finally {
    b.close();
  }
}
