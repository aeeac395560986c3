import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skopeoCopy, umociImage } from '../src/testutil/peers.js';
import { startRegistry } from '../src/testutil/registry.js';
import { type Comparison, median, timed } from './harness.js';

const berthMain = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/**
 * Pull of a multi-layer image of about 500 MB (five layers of 100 MiB of random bytes, gzip, made by
 * umoci and pushed with skopeo) from the reference registry on 127.0.0.1 into an empty root, against
 * `skopeo copy docker://… oci:DIR`. Target (issue 3): at most 1.0x skopeo's time, under 150 MiB RSS.
 */
export async function pullBench(opts: { layers?: number; layerMiB?: number; runs?: number } = {}): Promise<Comparison> {
  const layers = opts.layers ?? 5;
  const layerMiB = opts.layerMiB ?? 100;
  const runs = opts.runs ?? 3;
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-pull-'));
  const registry = await startRegistry();
  try {
    const layout = join(dir, 'layout');
    const files = Array.from({ length: layers }, (_, i) => ({ [`data/layer-${i}.bin`]: randomBytes(layerMiB << 20) }));
    await umociImage(layout, 'big', files, { work: dir });
    const ref = `${registry.host}/bench/big:latest`;
    await skopeoCopy(`oci:${layout}:big`, `docker://${ref}`);
    const berth: { seconds: number; peakRssMiB: number }[] = [];
    const skopeo: { seconds: number; peakRssMiB: number }[] = [];
    for (let i = 0; i <= runs; i++) {
      const root = join(dir, `root-${i}`);
      await timed(['sync']);
      const b = await timed([process.execPath, berthMain, '--root', root, 'pull', '-q', ref]);
      await rm(root, { recursive: true, force: true });
      const out = join(dir, `oci-${i}`);
      await timed(['sync']);
      const s = await timed(['skopeo', 'copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${out}:latest`]);
      await rm(out, { recursive: true, force: true });
      if (i > 0) {
        berth.push(b);
        skopeo.push(s);
      }
    }
    const subjectSeconds = median(berth.map((s) => s.seconds));
    const peerSeconds = median(skopeo.map((s) => s.seconds));
    const subjectPeakRssMiB = Math.max(...berth.map((s) => s.peakRssMiB));
    const ratio = subjectSeconds / peerSeconds;
    return {
      benchmark: `pull: ${layers} layers x ${layerMiB} MiB (gzip) from a local registry, median of ${runs}`,
      subject: 'berth pull REF',
      peer: 'skopeo copy docker://REF oci:DIR',
      subjectSeconds,
      peerSeconds,
      ratio,
      subjectPeakRssMiB,
      peerPeakRssMiB: Math.max(...skopeo.map((s) => s.peakRssMiB)),
      target: '<= 1.0x, < 150 MiB peak RSS',
      met: ratio <= 1.0 && subjectPeakRssMiB < 150,
    };
  } finally {
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
