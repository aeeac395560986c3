import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Berth } from '../src/services/index.js';
import { pushBusyboxImage } from '../src/testutil/busybox.js';
import { berthMain } from '../src/testutil/cli.js';
import { sh } from '../src/testutil/peers.js';
import { startRegistry } from '../src/testutil/registry.js';
import { type Comparison, compare } from './harness.js';

const multiStage = `ARG BASE
FROM $BASE AS deps
WORKDIR /deps
COPY deps/ ./
RUN for i in $(seq 1 200); do echo "dep $i" > dep-$i.txt; done && cat *.txt | wc -l > count
FROM $BASE AS tools
RUN mkdir -p /tools && for i in $(seq 1 100); do echo "#!/bin/sh" > /tools/t$i; done && chmod +x /tools/*
FROM $BASE
COPY --from=deps /deps /app/deps
COPY --from=tools /tools /usr/local/bin/
COPY src/ /app/src/
RUN cat /app/deps/count > /app/count && ls /usr/local/bin | wc -l >> /app/count
CMD ["cat", "/app/count"]
`;

/**
 * Builds (issue 16), against `buildah bud` (1.28), both with RUN steps on no network and the base
 * image already pulled:
 * - an uncached multi-stage build (three stages, two of them independent): target <= 1.0x buildah;
 * - a fully cached rebuild of the same: target < 0.5 s (buildah --layers for reference);
 * - COPY of a 10,000-file context: target <= 1.0x buildah.
 */
export async function buildBench(opts: { runs?: number; files?: number } = {}): Promise<Comparison[]> {
  const runs = opts.runs ?? 5;
  const files = opts.files ?? 10_000;
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-build-'));
  const registry = await startRegistry();
  const root = join(dir, 'root');
  const bh = ['--root', join(dir, 'buildah'), '--runroot', join(dir, 'buildah-run')];
  const berth = (...args: string[]) => [process.execPath, berthMain, '--root', root, ...args];
  const buildah = (...args: string[]) => ['buildah', ...bh, ...args];
  try {
    const ref = await pushBusyboxImage(dir, registry.host, 'bench/busybox');
    await sh(process.execPath, [berthMain, '--root', root, 'pull', '-q', ref]);
    await sh('buildah', [...bh, 'pull', '-q', '--tls-verify=false', ref]);
    const ms = join(dir, 'multistage');
    await mkdir(join(ms, 'deps'), { recursive: true });
    await mkdir(join(ms, 'src'), { recursive: true });
    for (let i = 0; i < 50; i++) await writeFile(join(ms, 'deps', `d${i}.txt`), `dependency ${i}\n`.repeat(20));
    for (let i = 0; i < 50; i++) await writeFile(join(ms, 'src', `s${i}.js`), `export const x${i} = ${i};\n`.repeat(50));
    await writeFile(join(ms, 'Dockerfile'), multiStage);
    const big = join(dir, 'many');
    for (let d = 0; d < 100; d++) {
      await mkdir(join(big, `d${d}`), { recursive: true });
      for (let f = 0; f < files / 100; f++) await writeFile(join(big, `d${d}`, `f${f}.txt`), `file ${d}/${f}\n`);
    }
    await writeFile(join(big, 'Dockerfile'), 'ARG BASE\nFROM $BASE\nCOPY . /ctx\n');
    const arg = ['--build-arg', `BASE=${ref}`];
    // Every uncached run starts cold on both sides: the last run's image and cache removed (not timed).
    const rmiBuildah = async () => {
      await sh('buildah', [...bh, 'rmi', '--prune']).catch(() => '');
    };
    const rmiBerth = (tag: string) => async () => {
      await sh(process.execPath, [berthMain, '--root', root, 'rmi', tag]).catch(() => '');
      await sh(process.execPath, [berthMain, '--root', root, 'builder', 'prune', '-f']);
    };
    const out: Comparison[] = [];
    out.push(
      ...(await compare(
        'uncached multi-stage build (3 stages, 2 independent)',
        {
          name: 'berth build --no-cache',
          argv: () => berth('build', '-q', '--no-cache', '--network', 'none', ...arg, '-t', 'ms', ms),
          cleanup: rmiBerth('ms'),
        },
        {
          name: 'buildah bud (no layer cache)',
          argv: () => buildah('bud', '-q', '--network', 'none', '--tls-verify=false', ...arg, '-t', 'ms', ms),
          cleanup: rmiBuildah,
        },
        { runs, target: '<= 1.0x buildah bud', maxRatio: 1.0, maxRssMiB: 200 },
      )),
    );
    await sh(process.execPath, [berthMain, '--root', root, 'build', '-q', '--network', 'none', ...arg, '-t', 'ms', ms]);
    await sh('buildah', [...bh, 'bud', '-q', '--layers', '--network', 'none', '--tls-verify=false', ...arg, '-t', 'ms', ms]);
    const [cached] = await compare(
      'fully cached rebuild of the multi-stage build',
      {
        name: 'berth build (cached)',
        argv: () => berth('build', '-q', '--network', 'none', ...arg, '-t', 'ms', ms),
        cleanup: async () => {},
      },
      {
        name: 'buildah bud --layers (cached)',
        argv: () => buildah('bud', '-q', '--layers', '--network', 'none', '--tls-verify=false', ...arg, '-t', 'ms', ms),
        cleanup: async () => {},
      },
      { runs, target: '', maxRatio: Number.POSITIVE_INFINITY, maxRssMiB: 200 },
    );
    const c = cached as Comparison;
    c.target = '< 0.5 s';
    c.met = c.subjectSeconds < 0.5;
    out.push(c);
    await rmiBuildah();
    out.push(
      ...(await compare(
        `COPY of a ${files}-file context`,
        {
          name: 'berth build --no-cache',
          argv: () => berth('build', '-q', '--no-cache', '--network', 'none', ...arg, '-t', 'many', big),
          cleanup: rmiBerth('many'),
        },
        {
          name: 'buildah bud',
          argv: () => buildah('bud', '-q', '--network', 'none', '--tls-verify=false', ...arg, '-t', 'many', big),
          cleanup: rmiBuildah,
        },
        { runs, target: '<= 1.0x buildah bud', maxRatio: 1.0, maxRssMiB: 200 },
      )),
    );
    return out;
  } finally {
    await registry.stop();
    await sh('buildah', [...bh, 'rm', '--all']).catch(() => '');
    await sh('buildah', [...bh, 'rmi', '--all', '--force']).catch(() => '');
    const b = await Berth.open({ root });
    await rm(b.runDir, { recursive: true, force: true });
    b.close();
    await sh('umount', ['-R', join(dir, 'buildah')]).catch(() => '');
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}
