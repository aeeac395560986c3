import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../errdefs/index.js';
import { defaultSeccomp } from './seccomp.js';
import type { LinuxDevice, LinuxResources, LinuxSeccomp, Process, RuntimeSpec, SpecMount } from './spec-types.js';
import type { ResolvedUser } from './user.js';

/** The capabilities docker and containerd give a container by default. */
export const defaultCapabilities = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
] as const;

/** Every capability Linux defines (through CAP_CHECKPOINT_RESTORE): `--privileged` and `--cap-add ALL`. */
export const allCapabilities = `CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT
SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE
MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE`
  .split(/\s+/)
  .map((c) => `CAP_${c}`);

/** Paths of /proc and /sys a container may not read (docker's list). */
export const maskedPaths = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

/** Paths of /proc a container may read but not write (docker's list). */
export const readonlyPaths = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const defaultPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The capabilities this process may pass on (its bounding set, from /proc/self/status): what
 * `--privileged` and `--cap-add ALL` mean here, as podman takes them.
 */
export function boundingCapabilities(): string[] {
  try {
    const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (hex === undefined) return [...allCapabilities];
    const mask = BigInt(`0x${hex}`);
    return allCapabilities.filter((_, i) => (mask >> BigInt(i)) & 1n);
  } catch {
    return [...allCapabilities];
  }
}

/** Normalises a capability name (`net_admin`, `CAP_NET_ADMIN`, `ALL`). @throws InvalidArgumentError */
export function capabilityName(name: string): string {
  const up = name.toUpperCase();
  if (up === 'ALL') return up;
  const full = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!allCapabilities.includes(full)) throw new InvalidArgumentError(`unknown capability "${name}"`);
  return full;
}

/** The capability set after `--cap-add` and `--cap-drop`, applied as docker does (drop ALL first, then add). */
export function capabilitySet(opts: { privileged?: boolean; capAdd?: readonly string[]; capDrop?: readonly string[] }): string[] {
  if (opts.privileged) return boundingCapabilities();
  const add = (opts.capAdd ?? []).map(capabilityName);
  const drop = (opts.capDrop ?? []).map(capabilityName);
  let caps = new Set<string>(drop.includes('ALL') ? [] : defaultCapabilities);
  for (const d of drop) caps.delete(d);
  if (add.includes('ALL')) caps = new Set(boundingCapabilities());
  for (const a of add) if (a !== 'ALL') caps.add(a);
  return allCapabilities.filter((c) => caps.has(c));
}

export interface SpecInput {
  /** The process: args (entrypoint + cmd already merged), env (merged), cwd (absolute). */
  args: string[];
  env: string[];
  cwd: string;
  user: ResolvedUser;
  /** The rootfs as mounted on the host. */
  rootfs: string;
  hostname: string;
  tty?: boolean;
  readonlyRootfs?: boolean;
  privileged?: boolean;
  capAdd?: readonly string[];
  capDrop?: readonly string[];
  /** `unconfined`, a profile (from `--security-opt seccomp=FILE`), or the default. */
  seccomp?: 'default' | 'unconfined' | LinuxSeccomp;
  noNewPrivileges?: boolean;
  /** `none`: a network namespace of its own with only `lo`; `host`: the host's; a path: that namespace. */
  network?: 'none' | 'host' | { path: string };
  /** The PID, IPC and UTS namespaces: the host's, or another process's (a path); absent, one of its own. */
  share?: Partial<Record<'pid' | 'ipc' | 'uts', 'host' | { path: string }>>;
  /** A host directory (a tmpfs) bound at /dev/shm instead of a tmpfs of its own: docker's shared IPC. */
  shm?: string;
  /** Host devices made in the container's /dev, and allowed by its device cgroup. */
  devices?: LinuxDevice[];
  /** Mounts after the standard ones (binds, tmpfs, /etc/hosts…), in order. */
  mounts?: SpecMount[];
  cgroupsPath: string;
  resources?: { memory?: number; nanoCpus?: number; pidsLimit?: number; cpuShares?: number; cpuQuota?: number; cpuPeriod?: number };
  oomScoreAdj?: number;
  /** Replace the default lists. */
  maskedPaths?: string[];
  readonlyPaths?: string[];
  sysctl?: Record<string, string>;
  rlimits?: { type: string; hard: number; soft: number }[];
  annotations?: Record<string, string>;
}

/** Builds the runtime spec (config.json) of a container: docker's and containerd's defaults, then the input's choices. */
export function buildSpec(input: SpecInput): RuntimeSpec {
  const privileged = input.privileged ?? false;
  const caps = capabilitySet(input);
  const process: Process = {
    terminal: input.tty ?? false,
    user: {
      uid: input.user.uid,
      gid: input.user.gid,
      ...(input.user.additionalGids.length ? { additionalGids: input.user.additionalGids } : {}),
    },
    args: input.args,
    env: input.env,
    cwd: input.cwd,
    capabilities: { bounding: caps, effective: caps, permitted: caps },
    rlimits: input.rlimits ?? [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
    noNewPrivileges: input.noNewPrivileges ?? false,
    ...(input.oomScoreAdj ? { oomScoreAdj: input.oomScoreAdj } : {}),
  };
  const ro = privileged ? [] : ['ro'];
  const mounts: SpecMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    input.shm
      ? { destination: '/dev/shm', type: 'bind', source: input.shm, options: ['rbind', 'rprivate', 'nosuid', 'noexec', 'nodev'] }
      : { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', ...ro] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', ...ro] },
    ...(input.mounts ?? []),
  ];
  const namespaces: { type: string; path?: string }[] = [];
  for (const type of ['pid', 'ipc', 'uts'] as const) {
    const shared = input.share?.[type];
    if (shared === undefined) namespaces.push({ type });
    else if (shared !== 'host') namespaces.push({ type, path: shared.path });
  }
  namespaces.push({ type: 'mount' });
  const network = input.network ?? 'none';
  if (network === 'none') namespaces.push({ type: 'network' });
  else if (typeof network === 'object') namespaces.push({ type: 'network', path: network.path });
  const resources: LinuxResources = {
    devices: [
      { allow: privileged, access: 'rwm' },
      ...(input.devices ?? []).map((d) => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access: d.access })),
    ],
  };
  const r = input.resources ?? {};
  if (r.memory !== undefined) resources.memory = { limit: r.memory, swap: r.memory * 2 };
  if (r.nanoCpus !== undefined) resources.cpu = { quota: Math.round(r.nanoCpus / 1e4), period: 100000 };
  if (r.cpuQuota !== undefined || r.cpuPeriod !== undefined || r.cpuShares !== undefined) {
    resources.cpu = {
      ...resources.cpu,
      ...(r.cpuQuota !== undefined ? { quota: r.cpuQuota } : {}),
      ...(r.cpuPeriod !== undefined ? { period: r.cpuPeriod } : {}),
      ...(r.cpuShares !== undefined ? { shares: r.cpuShares } : {}),
    };
  }
  if (r.pidsLimit !== undefined) resources.pids = { limit: r.pidsLimit };
  const seccomp = input.seccomp ?? 'default';
  const spec: RuntimeSpec = {
    ociVersion: '1.0.2',
    process,
    root: { path: input.rootfs, readonly: input.readonlyRootfs ?? false },
    // runc sets a host name only in a UTS namespace of the container's own
    ...(input.share?.uts === undefined ? { hostname: input.hostname } : {}),
    mounts,
    linux: {
      namespaces,
      resources,
      cgroupsPath: input.cgroupsPath,
      ...(privileged ? {} : { maskedPaths: input.maskedPaths ?? maskedPaths, readonlyPaths: input.readonlyPaths ?? readonlyPaths }),
      ...(input.devices?.length ? { devices: input.devices.map(({ access: _, ...d }) => d) } : {}),
      ...(input.sysctl && Object.keys(input.sysctl).length ? { sysctl: input.sysctl } : {}),
    },
  };
  if (!privileged && seccomp !== 'unconfined') spec.linux.seccomp = seccomp === 'default' ? defaultSeccomp(caps) : seccomp;
  if (input.annotations) spec.annotations = input.annotations;
  return spec;
}

/** The process's arguments from the image config and the overrides, as docker merges them. */
export function processArgs(
  image: { Entrypoint?: string[] | null; Cmd?: string[] | null },
  override: { entrypoint?: string[]; cmd?: string[] },
): string[] {
  // A new entrypoint resets the image's Cmd, as in docker.
  const entrypoint = override.entrypoint ?? image.Entrypoint ?? [];
  const cmd = override.cmd && override.cmd.length > 0 ? override.cmd : override.entrypoint ? [] : (image.Cmd ?? []);
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new InvalidArgumentError('no command specified: the image has no Entrypoint or Cmd and none was given');
  return args;
}

/**
 * Env lists merged by name, later wins. A bare `NAME` takes the caller's value, or is dropped
 * (docker's `-e NAME`).
 */
export function overrideEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const map = new Map<string, string>();
  for (const kv of base) map.set(kv.split('=', 1)[0] as string, kv);
  for (const kv of overrides) {
    const i = kv.indexOf('=');
    if (i >= 0) map.set(kv.slice(0, i), kv);
    else if (globalThis.process.env[kv] !== undefined) map.set(kv, `${kv}=${globalThis.process.env[kv]}`);
  }
  return [...map.values()];
}

/** Env of the image, then the overrides (later wins by name); PATH is added when absent, HOSTNAME and HOME as docker does. */
export function mergeEnv(
  image: readonly string[],
  overrides: readonly string[],
  extra: { hostname: string; home: string; tty?: boolean },
): string[] {
  const has = (name: string, env: readonly string[]) => env.some((e) => e.startsWith(`${name}=`));
  const env = overrideEnv([...(has('PATH', image) ? [] : [`PATH=${defaultPath}`]), `HOSTNAME=${extra.hostname}`, ...image], overrides);
  if (extra.tty && !has('TERM', env)) env.push('TERM=xterm');
  if (!has('HOME', env)) env.push(`HOME=${extra.home}`);
  return env;
}
