import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { berthMain } from '../src/testutil/cli.js';
import { type Containerd, startContainerd } from '../src/testutil/containerd.js';
import { type Dockerd, startDockerd } from '../src/testutil/dockerd.js';
import { umociLayers } from '../src/testutil/layers.js';
import { sh, skopeoCopy } from '../src/testutil/peers.js';
import { startRegistry, type TestRegistry } from '../src/testutil/registry.js';
import { type Comparison, type Contender, compare } from './harness.js';

/**
 * Layer tars like real ones: files of mixed sizes (Pareto, from `scale` bytes up to `cap`), each
 * part random bytes and part text so gzip has something to do. Written by Python's tarfile.
 */
const MAKE_LAYERS = `
import io, os, random, sys, tarfile
out, layers, mib, scale, cap, rfrac = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
rnd = random.Random(7)
text = (b'the quick brown fox jumps over the lazy dog 0123456789\\n' * 400000)
for l in range(layers):
    with tarfile.open(os.path.join(out, f'layer{l}.tar'), 'w', format=tarfile.PAX_FORMAT) as tf:
        total, n = 0, 0
        d = tarfile.TarInfo(f'layer{l}'); d.type = tarfile.DIRTYPE; d.mode = 0o755; tf.addfile(d)
        while total < mib << 20:
            size = min(int(rnd.paretovariate(1.2) * scale), cap)
            r = int(size * rfrac)
            data = os.urandom(r) + text[: size - r]
            ti = tarfile.TarInfo(f'layer{l}/dir{n % 50}/file{n}'); ti.size = len(data); ti.mode = 0o644
            if n % 50 == n:
                dd = tarfile.TarInfo(f'layer{l}/dir{n}'); dd.type = tarfile.DIRTYPE; dd.mode = 0o755; tf.addfile(dd)
            tf.addfile(ti, io.BytesIO(data))
            total += size; n += 1
`;

/** Appends a file naming the run to each layer tar, so that every run's image has layers of its own. */
const SALT_LAYERS = `
import io, sys, tarfile
run = sys.argv[1].encode()
for path in sys.argv[2:]:
    with tarfile.open(path, 'a') as tf:
        ti = tarfile.TarInfo('run-' + sys.argv[1]); ti.size = len(run); ti.mode = 0o644
        tf.addfile(ti, io.BytesIO(run))
`;

interface ImageShape {
  layers: number;
  layerMiB: number;
  /** Pareto scale of the file sizes, and their largest, bytes. */
  fileScale: number;
  fileCap: number;
  /** Share of each file that is random bytes; the rest is text. */
  randomFraction: number;
}

/**
 * Pushes `count` images of that shape to the registry, `REPO:run-0` and on, that differ in every
 * layer (a file naming the run is added to each), so that every run pulls what its store lacks and
 * nothing is deleted between runs. This file system (ext4 without a journal) skips inodes deleted
 * in the last 60 s when it makes new ones (`recently_deleted`): a pull right after a cleanup of the
 * previous run's files spends up to half of its time in that walk, whoever pulls.
 */
async function pushImages(registry: TestRegistry, dir: string, shape: ImageShape, count: number): Promise<string> {
  const tars = join(dir, 'tars');
  await mkdir(tars);
  await sh('python3', [
    '-c',
    MAKE_LAYERS,
    tars,
    String(shape.layers),
    String(shape.layerMiB),
    String(shape.fileScale),
    String(shape.fileCap),
    String(shape.randomFraction),
  ]);
  const files = (await readdir(tars)).sort().map((f) => join(tars, f));
  const layout = join(dir, 'layout');
  const ref = `${registry.host}/bench/unpack`;
  for (let i = 0; i < count; i++) {
    await sh('python3', ['-c', SALT_LAYERS, String(i), ...files]);
    await umociLayers(layout, `run-${i}`, files);
    await skopeoCopy(`oci:${layout}:run-${i}`, `docker://${ref}:run-${i}`);
  }
  await rm(tars, { recursive: true });
  await rm(layout, { recursive: true });
  return ref;
}

/**
 * Pull and unpack of an image from the reference registry on 127.0.0.1 into an empty berth root,
 * against containerd's `ctr image pull` and, for reference, `docker pull` (dockerd 20.10, overlay2)
 * and, when asked, `skopeo copy` + `umoci unpack`. Each daemon is started once on its own root and
 * socket and stays warm, as its users run it (its peak RSS is counted); each run pulls an image no
 * store has yet (see {@link pushImages}).
 */
async function pullUnpack(
  title: string,
  shape: ImageShape,
  opts: { runs: number; umoci: boolean; target: string; maxRatio: number },
): Promise<Comparison[]> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-unpack-'));
  const registry = await startRegistry();
  let containerd: Containerd | undefined;
  let dockerd: Dockerd | undefined;
  try {
    const repo = await pushImages(registry, dir, shape, opts.runs + 1);
    const ref = (i: number) => `${repo}:run-${i}`;
    containerd = await startContainerd(join(dir, 'containerd'));
    const cd = containerd;
    const engine = await startDockerd(join(dir, 'dockerd'));
    if ('unavailable' in engine) throw new Error(engine.unavailable);
    dockerd = engine;
    const kept = async () => {};
    const peers: Contender[] = [
      {
        name: 'ctr image pull REF (containerd 1.6, overlayfs)',
        argv: (i) => ['ctr', '-a', cd.sock, '-n', 'bench', 'image', 'pull', '--plain-http', '--snapshotter', 'overlayfs', ref(i)],
        helperPeakRssMiB: () => cd.peakRssMiB(),
        cleanup: kept,
      },
      {
        name: 'docker pull REF (dockerd 20.10, overlay2)',
        argv: (i) => engine.argv('pull', '-q', ref(i)),
        helperPeakRssMiB: () => engine.peakRssMiB(),
        cleanup: kept,
      },
    ];
    if (opts.umoci) {
      peers.push({
        name: 'skopeo copy + umoci unpack',
        argv: (i) => [
          'sh',
          '-c',
          `skopeo copy -q --src-tls-verify=false docker://${ref(i)} oci:${join(dir, `oci-${i}`)}:latest && umoci unpack --image ${join(dir, `oci-${i}`)}:latest ${join(dir, `bundle-${i}`)} >/dev/null`,
        ],
        cleanup: kept,
      });
    }
    return await compare(
      title,
      {
        name: 'berth pull REF (overlayfs)',
        argv: (i) => [process.execPath, berthMain, '--root', join(dir, `root-${i}`), '--snapshotter', 'overlayfs', 'pull', '-q', ref(i)],
        cleanup: kept,
      },
      peers,
      { runs: opts.runs, target: `${opts.target}, < 200 MiB peak RSS`, maxRatio: opts.maxRatio, maxRssMiB: 200 },
    );
  } finally {
    await containerd?.stop();
    await dockerd?.stop();
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Issue 4's image: five layers of about 110 MiB of files each, 1 KiB to 4 MiB, half random bytes and
 * half text; about 110,000 files. Target: at most 0.8x containerd's time.
 */
export function unpackBench(opts: { runs?: number } = {}): Promise<Comparison[]> {
  const shape = { layers: 5, layerMiB: 110, fileScale: 1024, fileCap: 4 << 20, randomFraction: 0.5 };
  return pullUnpack('pull + unpack: 5 layers x 110 MiB of small files (gzip) from a local registry', shape, {
    runs: opts.runs ?? 3,
    umoci: true,
    target: '<= 0.8x containerd',
    maxRatio: 0.8,
  });
}

/**
 * Issue 19's lab image, as measured there: 8 layers, about 575 MB of gzip over 760 MB of tar, files
 * of 32 KiB and up (about 5,500), three quarters random bytes. Target: at most 0.55x containerd's time.
 */
export function unpackLabBench(opts: { runs?: number } = {}): Promise<Comparison[]> {
  const shape = { layers: 8, layerMiB: 87, fileScale: 32 << 10, fileCap: 16 << 20, randomFraction: 0.76 };
  return pullUnpack('pull + unpack: the lab image, 8 layers, 575 MB gzip, 760 MB tar, from a local registry', shape, {
    runs: opts.runs ?? 3,
    umoci: false,
    target: '<= 0.55x containerd',
    maxRatio: 0.55,
  });
}
