import { readFileSync } from 'node:fs';
import type { CgroupStats } from '../containers/index.js';
import type { PodContainer, Pods, Sandbox } from './pods.js';

// CRI's stats of containers and pods, from their cgroups (berth's docker-shaped reading), the
// writable layer's usage and the pod's interfaces. Rates (nano cores) come from the previous
// reading of the same container in this process.

const u64 = (n: number) => ({ value: String(Math.max(0, Math.round(n))) });
const last = new Map<string, { cpu: number; at: bigint }>();

function cpuUsage(id: string, s: CgroupStats, at: bigint) {
  const cpu = s.cpu_stats.cpu_usage.total_usage;
  const prev = last.get(id);
  last.set(id, { cpu, at });
  const nanoCores = prev && at > prev.at ? ((cpu - prev.cpu) * 1e9) / Number(at - prev.at) : undefined;
  return {
    timestamp: String(at),
    usage_core_nano_seconds: u64(cpu),
    ...(nanoCores !== undefined ? { usage_nano_cores: u64(nanoCores) } : {}),
  };
}

function memoryUsage(s: CgroupStats, at: bigint) {
  const st = s.memory_stats.stats;
  const inactive = st.total_inactive_file ?? st.inactive_file ?? 0;
  const usage = s.memory_stats.usage;
  const workingSet = Math.max(0, usage - inactive);
  const limit = s.memory_stats.limit;
  return {
    timestamp: String(at),
    working_set_bytes: u64(workingSet),
    ...(limit < Number.MAX_SAFE_INTEGER / 2 ? { available_bytes: u64(limit - workingSet) } : {}),
    usage_bytes: u64(usage),
    rss_bytes: u64(st.total_rss ?? st.rss ?? st.anon ?? 0),
    page_faults: u64(st.total_pgfault ?? st.pgfault ?? 0),
    major_page_faults: u64(st.total_pgmajfault ?? st.pgmajfault ?? 0),
  };
}

/** ContainerStats of one container: CPU, memory, and its writable layer. */
export async function containerStats(pods: Pods, c: PodContainer) {
  const at = BigInt(Date.now()) * 1_000_000n;
  const s = pods.containers.stats(c.container);
  const usage = await pods.containers.usage(c.container).catch(() => ({ writable: 0, removable: 0 }));
  const sn = pods.berth.snapshotter(pods.ns.name);
  return {
    attributes: {
      id: c.id,
      metadata: { name: c.ext.config.metadata?.name ?? '', attempt: c.ext.config.metadata?.attempt ?? 0 },
      labels: c.ext.config.labels ?? {},
      annotations: c.ext.config.annotations ?? {},
    },
    cpu: cpuUsage(c.id, s, at),
    memory: memoryUsage(s, at),
    writable_layer: {
      timestamp: String(at),
      fs_id: { mountpoint: `${pods.berth.root}/snapshots/${sn.driver}` },
      used_bytes: u64(usage.writable),
    },
  };
}

/** The interfaces of a process's network namespace (/proc/PID/net/dev), `eth0` first. */
function interfaces(pid: number | undefined) {
  if (pid === undefined) return [];
  try {
    return readFileSync(`/proc/${pid}/net/dev`, 'utf8')
      .split('\n')
      .slice(2)
      .map((l) => l.trim().split(/[:\s]+/))
      .filter((f) => f.length > 10 && f[0] !== 'lo')
      .map((f) => ({
        name: f[0] as string,
        rx_bytes: u64(Number(f[1])),
        rx_errors: u64(Number(f[3])),
        tx_bytes: u64(Number(f[9])),
        tx_errors: u64(Number(f[11])),
      }))
      .sort((a, b) => (a.name === 'eth0' ? -1 : b.name === 'eth0' ? 1 : a.name.localeCompare(b.name)));
  } catch {
    return [];
  }
}

/** PodSandboxStats: the pod's containers summed (with the pause process), its network and process count. */
export async function podStats(pods: Pods, sb: Sandbox) {
  const at = BigInt(Date.now()) * 1_000_000n;
  const members = (await pods.podContainers(sb.id)).filter((c) => c.state === 'CONTAINER_RUNNING');
  const containers = await Promise.all(members.map((c) => containerStats(pods, c)));
  const readings = [sb.container, ...members.map((c) => c.container)].map((r) => pods.containers.stats(r));
  const sum = (f: (s: CgroupStats) => number) => readings.reduce((n, s) => n + f(s), 0);
  const total: CgroupStats = {
    read: '',
    pids_stats: { current: sum((s) => s.pids_stats.current) },
    cpu_stats: {
      cpu_usage: { total_usage: sum((s) => s.cpu_stats.cpu_usage.total_usage), usage_in_kernelmode: 0, usage_in_usermode: 0 },
      system_cpu_usage: 0,
      online_cpus: 0,
    },
    memory_stats: {
      usage: sum((s) => s.memory_stats.usage),
      limit: Number.MAX_SAFE_INTEGER,
      stats: {
        inactive_file: sum((s) => s.memory_stats.stats.total_inactive_file ?? s.memory_stats.stats.inactive_file ?? 0),
        rss: sum((s) => s.memory_stats.stats.total_rss ?? s.memory_stats.stats.rss ?? 0),
      },
    },
    blkio_stats: {},
  };
  const [first, ...rest] = interfaces(sb.container.state.pid);
  const m = sb.pod.config.metadata ?? {};
  return {
    attributes: {
      id: sb.id,
      metadata: { name: m.name ?? '', uid: m.uid ?? '', namespace: m.namespace ?? '', attempt: m.attempt ?? 0 },
      labels: sb.pod.config.labels ?? {},
      annotations: sb.pod.config.annotations ?? {},
    },
    linux: {
      cpu: cpuUsage(`pod-${sb.id}`, total, at),
      memory: memoryUsage(total, at),
      network: { timestamp: String(at), ...(first ? { default_interface: first } : {}), interfaces: rest },
      process: { timestamp: String(at), process_count: u64(total.pids_stats.current) },
      containers,
    },
  };
}
