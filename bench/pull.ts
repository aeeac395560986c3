import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { berthMain } from '../src/testutil/cli.js';
import { skopeoCopy, umociImage } from '../src/testutil/peers.js';
import { startRegistry } from '../src/testutil/registry.js';
import { type Comparison, compare } from './harness.js';

/**
 * Pull of a multi-layer image of about 500 MB (five layers of 100 MiB of random bytes, gzip, made by
 * umoci and pushed with skopeo) from the reference registry on 127.0.0.1 into an empty root, against
 * `skopeo copy docker://… oci:DIR`. Target (issue 3): at most 1.0x skopeo's time, under 150 MiB RSS.
 */
export async function pullBench(opts: { layers?: number; layerMiB?: number; runs?: number } = {}): Promise<Comparison[]> {
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
    return await compare(
      `pull: ${layers} layers x ${layerMiB} MiB (gzip) from a local registry`,
      {
        name: 'berth pull --no-unpack REF',
        argv: (i) => [process.execPath, berthMain, '--root', join(dir, `root-${i}`), 'pull', '--no-unpack', '-q', ref],
        cleanup: (i) => rm(join(dir, `root-${i}`), { recursive: true, force: true }),
      },
      {
        name: 'skopeo copy docker://REF oci:DIR',
        argv: (i) => ['skopeo', 'copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${join(dir, `oci-${i}`)}:latest`],
        cleanup: (i) => rm(join(dir, `oci-${i}`), { recursive: true, force: true }),
      },
      { runs, target: '<= 1.0x, < 150 MiB peak RSS', maxRatio: 1.0, maxRssMiB: 150 },
    );
  } finally {
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
