import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { Container } from './types.js';

/** One reading of a container's cgroup, in docker's `stats` shape (fields the docker CLI reads). */
export interface CgroupStats {
  read: string;
  pids_stats: { current: number };
  cpu_stats: {
    cpu_usage: { total_usage: number; usage_in_kernelmode: number; usage_in_usermode: number };
    system_cpu_usage: number;
    online_cpus: number;
  };
  memory_stats: { usage: number; limit: number; stats: Record<string, number> };
  blkio_stats: Record<string, never>;
}

const cgroupRoot = '/sys/fs/cgroup';
const num = (path: string): number | undefined => {
  try {
    const v = readFileSync(path, 'utf8').trim();
    return v === 'max' ? undefined : Number(v);
  } catch {
    return undefined;
  }
};
const keyed = (path: string): Record<string, number> => {
  try {
    return Object.fromEntries(
      readFileSync(path, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
        .map(([k, v]) => [k as string, Number(v)]),
    );
  } catch {
    return {};
  }
};

/** Host CPU time in nanoseconds (the first line of /proc/stat), docker's system_cpu_usage. */
function systemCpu(): number {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] as string).trim().split(/\s+/).slice(1, 8).map(Number);
  return (fields.reduce((a, b) => a + b, 0) * 1e9) / 100; // USER_HZ is 100 on Linux
}

/** The cgroup berth's runtime spec puts a container in: under its CgroupParent, else `/berth`. */
export const cgroupPath = (rec: Pick<Container, 'id' | 'config'>) =>
  `${(rec.config.HostConfig.CgroupParent || '/berth').replace(/\/+$/, '')}/${rec.id}`;

/** Reads the cgroup `path` (the spec's cgroupsPath) from cgroup v2 when it is mounted, else from v1's controllers. */
export function cgroupStats(path: string): CgroupStats {
  const v2 = readable(join(cgroupRoot, 'cgroup.controllers'));
  const memLimitDefault = Number.MAX_SAFE_INTEGER;
  let usage = 0;
  let limit = memLimitDefault;
  let memStats: Record<string, number> = {};
  let cpu = 0;
  let user = 0;
  let kernel = 0;
  let pids = 0;
  if (v2) {
    const dir = join(cgroupRoot, path);
    usage = num(join(dir, 'memory.current')) ?? 0;
    limit = num(join(dir, 'memory.max')) ?? memLimitDefault;
    memStats = keyed(join(dir, 'memory.stat'));
    const c = keyed(join(dir, 'cpu.stat'));
    cpu = (c.usage_usec ?? 0) * 1000;
    user = (c.user_usec ?? 0) * 1000;
    kernel = (c.system_usec ?? 0) * 1000;
    pids = num(join(dir, 'pids.current')) ?? 0;
  } else {
    usage = num(join(cgroupRoot, 'memory', path, 'memory.usage_in_bytes')) ?? 0;
    limit = num(join(cgroupRoot, 'memory', path, 'memory.limit_in_bytes')) ?? memLimitDefault;
    memStats = keyed(join(cgroupRoot, 'memory', path, 'memory.stat'));
    cpu = num(join(cgroupRoot, 'cpuacct', path, 'cpuacct.usage')) ?? 0;
    const c = keyed(join(cgroupRoot, 'cpuacct', path, 'cpuacct.stat'));
    user = ((c.user ?? 0) * 1e9) / 100;
    kernel = ((c.system ?? 0) * 1e9) / 100;
    pids = num(join(cgroupRoot, 'pids', path, 'pids.current')) ?? 0;
  }
  return {
    read: new Date().toISOString(),
    pids_stats: { current: pids },
    cpu_stats: {
      cpu_usage: { total_usage: cpu, usage_in_kernelmode: kernel, usage_in_usermode: user },
      system_cpu_usage: systemCpu(),
      online_cpus: cpus().length,
    },
    memory_stats: { usage, limit, stats: memStats },
    blkio_stats: {},
  };
}

function readable(path: string): boolean {
  try {
    readFileSync(path);
    return true;
  } catch {
    return false;
  }
}
