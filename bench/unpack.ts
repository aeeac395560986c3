import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { berthMain } from '../src/testutil/cli.js';
import { type Containerd, startContainerd } from '../src/testutil/containerd.js';
import { type Dockerd, startDockerd } from '../src/testutil/dockerd.js';
import { umociLayers } from '../src/testutil/layers.js';
import { sh, skopeoCopy } from '../src/testutil/peers.js';
import { startRegistry } from '../src/testutil/registry.js';
import { type Comparison, compare } from './harness.js';

/**
 * Layer tars like real ones: many files of mixed sizes (1 KiB to 4 MiB), half random bytes and half
 * text, so gzip has something to do. Written by Python's tarfile.
 */
const MAKE_LAYERS = `
import io, os, random, sys, tarfile
out, layers, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(7)
text = (b'the quick brown fox jumps over the lazy dog 0123456789\\n' * 80000)
for l in range(layers):
    with tarfile.open(os.path.join(out, f'layer{l}.tar'), 'w', format=tarfile.PAX_FORMAT) as tf:
        total, n = 0, 0
        d = tarfile.TarInfo(f'layer{l}'); d.type = tarfile.DIRTYPE; d.mode = 0o755; tf.addfile(d)
        while total < mib << 20:
            size = min(int(rnd.paretovariate(1.2) * 1024), 4 << 20)
            data = os.urandom(size // 2) + text[: size - size // 2]
            ti = tarfile.TarInfo(f'layer{l}/dir{n % 50}/file{n}'); ti.size = len(data); ti.mode = 0o644
            if n % 50 == n:
                dd = tarfile.TarInfo(f'layer{l}/dir{n}'); dd.type = tarfile.DIRTYPE; dd.mode = 0o755; tf.addfile(dd)
            tf.addfile(ti, io.BytesIO(data))
            total += size; n += 1
`;

/**
 * Pull and unpack of a multi-layer image (five layers of about 110 MiB of files, uncompressed; gzip)
 * from the reference registry on 127.0.0.1 into an empty store, against containerd's `ctr image pull`
 * and, for reference, `docker pull` (dockerd 20.10, overlay2) and `skopeo copy` + `umoci unpack`.
 * Each daemon is started once on its own root and socket and stays warm, as its users run it (its
 * peak RSS is counted); between runs the image is removed and its content and snapshots collected,
 * untimed. Target (issue 4): at most 0.8x containerd's time, under 200 MiB peak RSS.
 */
export async function unpackBench(opts: { layers?: number; layerMiB?: number; runs?: number } = {}): Promise<Comparison[]> {
  const layers = opts.layers ?? 5;
  const layerMiB = opts.layerMiB ?? 110;
  const runs = opts.runs ?? 3;
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-unpack-'));
  const registry = await startRegistry();
  let containerd: Containerd | undefined;
  let dockerd: Dockerd | undefined;
  try {
    const tars = join(dir, 'tars');
    await mkdir(tars);
    await sh('python3', ['-c', MAKE_LAYERS, tars, String(layers), String(layerMiB)]);
    const layout = join(dir, 'layout');
    await umociLayers(
      layout,
      'big',
      Array.from({ length: layers }, (_, i) => join(tars, `layer${i}.tar`)),
    );
    await rm(tars, { recursive: true });
    const ref = `${registry.host}/bench/unpack:latest`;
    await skopeoCopy(`oci:${layout}:big`, `docker://${ref}`);

    containerd = await startContainerd(join(dir, 'containerd'));
    const cd = containerd;
    const ctr = (...args: string[]) => sh('ctr', ['-a', cd.sock, '-n', 'bench', ...args]);
    const engine = await startDockerd(join(dir, 'dockerd'));
    if ('unavailable' in engine) throw new Error(engine.unavailable);
    dockerd = engine;
    return await compare(
      `pull + unpack: ${layers} layers x ${layerMiB} MiB of files (gzip) from a local registry`,
      {
        name: 'berth pull REF (overlayfs)',
        argv: (i) => [process.execPath, berthMain, '--root', join(dir, `root-${i}`), '--snapshotter', 'overlayfs', 'pull', '-q', ref],
        cleanup: (i) => rm(join(dir, `root-${i}`), { recursive: true, force: true }),
      },
      [
        {
          name: 'ctr image pull REF (containerd 1.6, overlayfs)',
          argv: () => ['ctr', '-a', cd.sock, '-n', 'bench', 'image', 'pull', '--plain-http', '--snapshotter', 'overlayfs', ref],
          helperPeakRssMiB: () => cd.peakRssMiB(),
          cleanup: async () => {
            await ctr('image', 'rm', '--sync', ref);
            // Snapshots are removed by containerd's collector after the image goes: wait for it, so
            // the next pull starts from an empty store (listings are a header line then).
            const lines = async (...args: string[]) => (await ctr(...args)).trim().split('\n').length;
            for (let t = 0; (await lines('snapshot', '--snapshotter', 'overlayfs', 'ls')) > 1 || (await lines('content', 'ls')) > 1; t++) {
              if (t > 300) throw new Error('containerd kept the content or snapshots of a removed image');
              await sleep(100);
            }
          },
        },
        {
          name: 'docker pull REF (dockerd 20.10, overlay2)',
          argv: () => engine.argv('pull', '-q', ref),
          helperPeakRssMiB: () => engine.peakRssMiB(),
          cleanup: async () => {
            await engine.docker('rmi', ref);
          },
        },
        {
          name: 'skopeo copy + umoci unpack',
          argv: (i) => [
            'sh',
            '-c',
            `skopeo copy -q --src-tls-verify=false docker://${ref} oci:${join(dir, `oci-${i}`)}:latest && umoci unpack --image ${join(dir, `oci-${i}`)}:latest ${join(dir, `bundle-${i}`)} >/dev/null`,
          ],
          cleanup: async (i) => {
            await rm(join(dir, `oci-${i}`), { recursive: true, force: true });
            await rm(join(dir, `bundle-${i}`), { recursive: true, force: true });
          },
        },
      ],
      { runs, target: '<= 0.8x containerd, < 200 MiB peak RSS', maxRatio: 0.8, maxRssMiB: 200 },
    );
  } finally {
    await containerd?.stop();
    await dockerd?.stop();
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
