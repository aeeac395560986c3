import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { criProto } from '../src/server/index.js';
import { pushBusyboxImage } from '../src/testutil/busybox.js';
import { berth, cleanupRoots } from '../src/testutil/cli.js';
import { startContainerd } from '../src/testutil/containerd.js';
import { type BerthDaemon, startBerthDaemon } from '../src/testutil/daemon.js';
import { removeCgroupTree, writePodNetwork } from '../src/testutil/network.js';
import { startRegistry } from '../src/testutil/registry.js';
import { type Comparison, median } from './harness.js';

// CRI: a pod with one container (RunPodSandbox + CreateContainer + StartContainer, the image
// pulled) through `berth daemon --cri`, against containerd 1.6's own CRI plugin driven by the same
// gRPC client with the same requests, both on the same CNI config; then 30 pods at once on each.
// Targets (issue 17): one pod < 300 ms; 30 concurrent pods all ready.

type Rpc = (method: string, req: object) => Promise<Record<string, unknown>>;

function criClient(sock: string): { rpc: Rpc; close(): void } {
  const def = loader.loadSync(criProto, { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: Record<string, typeof grpc.Client> } };
  const make = (name: string) =>
    new (pkg.runtime.v1[name] as typeof grpc.Client)(`unix://${sock}`, grpc.credentials.createInsecure()) as unknown as Record<
      string,
      (req: object, opts: object, cb: (err: Error | null, res: Record<string, unknown>) => void) => void
    > & { close(): void };
  const rt = make('RuntimeService');
  const im = make('ImageService');
  const rpc: Rpc = (method, req) => {
    const c = ['PullImage', 'ListImages', 'ImageStatus', 'RemoveImage', 'ImageFsInfo'].includes(method) ? im : rt;
    return new Promise((resolve, reject) =>
      (c[method] as (req: object, opts: object, cb: (err: Error | null, res: Record<string, unknown>) => void) => void)(
        req,
        { deadline: Date.now() + 120_000 },
        (err, res) => (err ? reject(err) : resolve(res)),
      ),
    );
  };
  return {
    rpc,
    close: () => {
      rt.close();
      im.close();
    },
  };
}

interface Runtime {
  name: string;
  rpc: Rpc;
  /** What the image is called in CreateContainer (an ID, as kubelet sends). */
  image: string;
  peakRssMiB(): Promise<number>;
  stop(): Promise<void>;
}

const hwm = async (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

async function startContainerdCri(dir: string, cniDir: string, sandboxImage: string, registry: string): Promise<Runtime> {
  const cd = await startContainerd(dir, {
    cri: [
      `  sandbox_image = "${sandboxImage}"`,
      '  disable_apparmor = true',
      // this machine refuses a negative oom_score_adj (no CAP_SYS_RESOURCE): containerd's switch for that
      '  restrict_oom_score_adj = true',
      '  enable_selinux = false',
      '  [plugins."io.containerd.grpc.v1.cri".cni]',
      '    bin_dir = "/usr/lib/cni"',
      `    conf_dir = "${cniDir}"`,
      `  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."${registry}"]`,
      `    endpoint = ["http://${registry}"]`,
    ],
  });
  const client = criClient(cd.sock);
  return {
    name: 'containerd 1.6 CRI',
    rpc: client.rpc,
    image: '',
    peakRssMiB: () => cd.peakRssMiB(),
    stop: async () => {
      client.close();
      await cd.stop();
    },
  };
}

let podN = 0;

/** One pod with one container, started; the seconds it took. */
async function startPod(rt: Runtime, logRoot: string): Promise<{ seconds: number; pod: string }> {
  const name = `bench-${++podN}`;
  const config = {
    metadata: { name, uid: `uid-${name}`, namespace: 'bench', attempt: 0 },
    hostname: name,
    log_directory: join(logRoot, name),
    // kubelet's cgroupfs layout
    linux: { cgroup_parent: `/kubepods/besteffort/pod${name}` },
  };
  const start = process.hrtime.bigint();
  const { pod_sandbox_id } = (await rt.rpc('RunPodSandbox', { config })) as { pod_sandbox_id: string };
  const { container_id } = (await rt.rpc('CreateContainer', {
    pod_sandbox_id,
    config: {
      metadata: { name: 'main', attempt: 0 },
      image: { image: rt.image },
      command: ['sleep', '1000'],
      log_path: 'main/0.log',
      linux: {},
    },
    sandbox_config: config,
  })) as { container_id: string };
  await rt.rpc('StartContainer', { container_id });
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, pod: pod_sandbox_id };
}

async function removePods(rt: Runtime, pods: string[]): Promise<void> {
  for (const p of pods) {
    await rt.rpc('StopPodSandbox', { pod_sandbox_id: p });
    await rt.rpc('RemovePodSandbox', { pod_sandbox_id: p });
  }
}

export async function criBench(opts: { runs?: number; concurrent?: number } = {}): Promise<Comparison[]> {
  const runs = opts.runs ?? 15;
  const concurrent = opts.concurrent ?? 30;
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-cri-'));
  const registry = await startRegistry();
  const root = join(dir, 'root');
  const cniDir = join(dir, 'net.d');
  const bridge = `bbench${process.pid % 1000}`;
  let daemon: BerthDaemon | undefined;
  let containerd: Runtime | undefined;
  try {
    await writePodNetwork(cniDir, { name: `cri-bench-${process.pid}`, bridge, subnet: '10.204.0.0/16' });
    const ref = await pushBusyboxImage(dir, registry.host, 'bench/busybox');
    daemon = await startBerthDaemon(root, join(dir, 'run'), ['--cri', `unix://${join(dir, 'run', 'cri.sock')}`, '--cni-conf-dir', cniDir]);
    const b = criClient(join(dir, 'run', 'cri.sock'));
    const d = daemon;
    const berthRt: Runtime = {
      name: 'berth daemon --cri',
      rpc: b.rpc,
      image: '',
      peakRssMiB: () => hwm(d.pid),
      stop: async () => b.close(),
    };
    berthRt.image = (await b.rpc('PullImage', { image: { image: ref } })).image_ref as string;
    // containerd's sandbox image: berth's pause image, pushed to the registry
    await startPod(berthRt, join(dir, 'logs')).then((r) => removePods(berthRt, [r.pod]));
    const pauseRef = `${registry.host}/bench/pause:catatonit`;
    for (const args of [
      ['tag', 'berth.local/pause:catatonit', pauseRef],
      ['push', '-q', pauseRef],
    ]) {
      const r = await berth(root, ['-n', 'k8s.io', ...args]);
      if (r.code !== 0) throw new Error(`berth ${args.join(' ')}: ${r.stderr}`);
    }
    containerd = await startContainerdCri(
      join(dir, 'containerd'),
      cniDir,
      process.env.BENCH_SANDBOX === 'busybox' ? ref : pauseRef,
      registry.host,
    );
    containerd.image = (await containerd.rpc('PullImage', { image: { image: ref } })).image_ref as string;
    await containerd.rpc('PullImage', { image: { image: pauseRef } });
    const contenders = [berthRt, containerd];
    // one pod at a time, alternating, after a warm-up each
    const times: number[][] = contenders.map(() => []);
    for (let i = 0; i <= runs; i++) {
      for (const [k, rt] of contenders.entries()) {
        const r = await startPod(rt, join(dir, 'logs'));
        if (i > 0) times[k]?.push(r.seconds);
        await removePods(rt, [r.pod]);
      }
    }
    /** berth against containerd: seconds of each, their peak RSS now. */
    const comparison = async (benchmark: string, seconds: number[], target: string, met: boolean): Promise<Comparison> => {
      const [subjectSeconds, peerSeconds] = seconds as [number, number];
      const [subjectPeakRssMiB, peerPeakRssMiB] = (await Promise.all(contenders.map((rt) => rt.peakRssMiB()))) as [number, number];
      const names = { subject: berthRt.name, peer: (containerd as Runtime).name };
      return {
        benchmark,
        ...names,
        subjectSeconds,
        peerSeconds,
        ratio: subjectSeconds / peerSeconds,
        subjectPeakRssMiB,
        peerPeakRssMiB,
        target,
        met,
      };
    };
    const one = contenders.map((_, k) => median(times[k] as number[]));
    const results = [
      await comparison(
        'CRI: one pod with one container (RunPodSandbox + CreateContainer + StartContainer), median',
        one,
        'berth < 300 ms',
        (one[0] as number) < 0.3,
      ),
    ];
    // 30 pods at once: every one ready
    const wall: number[] = [];
    let ready = 0;
    for (const rt of contenders) {
      const start = process.hrtime.bigint();
      const started = await Promise.allSettled(Array.from({ length: concurrent }, () => startPod(rt, join(dir, 'logs'))));
      wall.push(Number(process.hrtime.bigint() - start) / 1e9);
      const ok = started.filter((s) => s.status === 'fulfilled').map((s) => (s as PromiseFulfilledResult<{ pod: string }>).value.pod);
      const listed = (await rt.rpc('ListPodSandbox', { filter: { state: { state: 'SANDBOX_READY' } } })) as { items?: { id: string }[] };
      const readyHere = (listed.items ?? []).filter((p) => ok.includes(p.id)).length;
      if (rt === berthRt) ready = readyHere;
      process.stdout.write(`  ${rt.name}: ${readyHere}/${concurrent} pods ready\n`);
      await removePods(rt, ok);
    }
    results.push(
      await comparison(
        `CRI: ${concurrent} pods started at once, wall time until all are ready`,
        wall,
        `all ${concurrent} ready`,
        ready === concurrent,
      ),
    );
    await berthRt.stop();
    return results;
  } finally {
    await containerd?.stop().catch(() => {});
    await daemon?.stop('SIGKILL');
    await cleanupRoots([root]);
    await registry.stop();
    await sh_('ip', ['link', 'del', bridge]);
    await rm(`/var/lib/cni/networks/cri-bench-${process.pid}`, { recursive: true, force: true });
    for (const n of Array.from({ length: podN }, (_, i) => i + 1)) removeCgroupTree(`/kubepods/besteffort/podbench-${n}`);
    await rm(dir, { recursive: true, force: true });
  }
}

async function sh_(cmd: string, args: string[]): Promise<void> {
  await new Promise((resolve) => spawn(cmd, args, { stdio: 'ignore' }).on('close', resolve));
}
