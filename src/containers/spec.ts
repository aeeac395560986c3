import { type BigIntStats, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { deviceNumbers } from '../archive/index.js';
import { FailedPreconditionError, InvalidArgumentError, withContext } from '../errdefs/index.js';
import {
  buildSpec,
  type LinuxDevice,
  type LinuxSeccomp,
  mergeEnv,
  processArgs,
  type RuntimeSpec,
  resolveInRoot,
  resolveUser,
  type SeccompSyscall,
  type SpecInput,
  type SpecMount,
} from '../runtime/index.js';
import { isMountPoint } from '../snapshots/index.js';
import { lookPath } from '../sys/index.js';
import type { ContainerContext } from './context.js';
import { mountPoints } from './mounts.js';
import { etcFileSource, type NetworkPlan, writeEtcFiles } from './network.js';
import { cgroupPath } from './stats.js';
import type { Container } from './types.js';

/**
 * The runtime spec of a container about to start (its rootfs is mounted): the process as its config
 * says, docker's /etc files, binds, tmpfs mounts, the init, confinement and resources.
 */
export function containerSpec(ctx: ContainerContext, rec: Container, plan: NetworkPlan, volumePaths: Map<string, string>): RuntimeSpec {
  const { Config: c, HostConfig: h } = rec.config;
  const p = ctx.paths(rec.id);
  const user = resolveUser(p.rootfs, c.User, h.GroupAdd);
  const cwd = c.WorkingDir || '/';
  const cwdHost = confined(() => resolveInRoot(p.rootfs, cwd, { mkdir: true }), `working directory "${cwd}"`);
  if (!statSync(cwdHost).isDirectory()) throw new InvalidArgumentError(`working directory "${cwd}": not a directory in the image`);
  let args = processArgs({ Entrypoint: c.Entrypoint, Cmd: c.Cmd }, {});
  const mounts: SpecMount[] = [];
  const target = (dest: string, dir: boolean) => {
    if (!dest.startsWith('/')) throw new InvalidArgumentError(`invalid mount target "${dest}": it must be an absolute path`);
    const host = confined(() => resolveInRoot(p.rootfs, posix.dirname(dest), { mkdir: true }), `mount target "${dest}"`);
    const leaf = join(host, posix.basename(dest));
    if (!existsSync(leaf)) {
      if (dir) mkdirSync(leaf);
      else writeFileSync(leaf, '', { flag: 'wx' });
    }
  };
  // The files docker manages: /etc/hostname, /etc/hosts, /etc/resolv.conf (unless a mount gives one).
  writeEtcFiles(ctx, rec, plan);
  const mounted = new Set(mountPoints(rec).map((m) => posix.normalize(m.Destination)));
  for (const f of ['hostname', 'hosts', 'resolv.conf'] as const) {
    const dest = `/etc/${f}`;
    if (mounted.has(dest)) continue;
    const resolved = resolveInRoot(p.rootfs, dest);
    if (existsSync(resolved) && statSync(resolved).isDirectory()) continue;
    target(dest, false);
    mounts.push({
      destination: dest,
      type: 'bind',
      source: etcFileSource(ctx, rec, plan, f),
      options: ['rbind', 'rprivate', ...(h.ReadonlyRootfs ? ['ro'] : [])],
    });
  }
  for (const m of mountPoints(rec)) {
    if (m.Type === 'tmpfs') {
      target(m.Destination, true);
      mounts.push({
        destination: m.Destination,
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'nodev', 'noexec', ...(m.TmpfsOptions ?? [])],
      });
      continue;
    }
    const source = m.Type === 'volume' ? (volumePaths.get(m.Name as string) as string) : m.Source;
    if (m.Type === 'bind' && !existsSync(source)) {
      if (!m.CreateSource)
        throw new InvalidArgumentError(`invalid mount config for type "bind": bind source path does not exist: ${source}`);
      mkdirSync(source, { recursive: true });
    }
    target(m.Destination, statSync(source).isDirectory());
    mounts.push({ destination: m.Destination, type: 'bind', source, options: ['rbind', 'rprivate', m.RW ? 'rw' : 'ro'] });
  }
  for (const [dest, o] of Object.entries(h.Tmpfs)) {
    target(dest, true);
    mounts.push({
      destination: dest,
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'nodev', 'noexec', ...o.split(',').filter(Boolean)],
    });
  }
  if (h.Init) {
    const tini = lookPath('tini-static');
    target('/sbin/docker-init', false);
    mounts.push({ destination: '/sbin/docker-init', type: 'bind', source: tini, options: ['rbind', 'rprivate', 'ro'] });
    args = ['/sbin/docker-init', '--', ...args];
  }
  const sec = securityOpts(h.SecurityOpt);
  return buildSpec({
    args,
    env: mergeEnv(c.Env, [], { hostname: c.Hostname, home: user.home, tty: c.Tty }),
    cwd,
    user,
    rootfs: p.rootfs,
    hostname: c.Hostname,
    tty: c.Tty,
    readonlyRootfs: h.ReadonlyRootfs,
    privileged: h.Privileged,
    capAdd: h.CapAdd,
    capDrop: h.CapDrop,
    seccomp: sec.seccomp,
    noNewPrivileges: sec.noNewPrivileges,
    network: plan.namespace,
    share: sharedNamespaces(ctx, h),
    ...shmSource(ctx, rec),
    devices: (h.Devices ?? []).map(hostDevice),
    mounts,
    cgroupsPath: cgroupPath(rec),
    resources: {
      ...(h.Memory > 0 ? { memory: h.Memory } : {}),
      ...(h.NanoCpus > 0 ? { nanoCpus: h.NanoCpus } : {}),
      ...(h.PidsLimit > 0 ? { pidsLimit: h.PidsLimit } : {}),
      ...(h.CpuShares ? { cpuShares: h.CpuShares } : {}),
      ...(h.CpuQuota ? { cpuQuota: h.CpuQuota } : {}),
      ...(h.CpuPeriod ? { cpuPeriod: h.CpuPeriod } : {}),
    },
    ...(h.OomScoreAdj ? { oomScoreAdj: h.OomScoreAdj } : {}),
    ...(h.MaskedPaths ? { maskedPaths: h.MaskedPaths } : {}),
    ...(h.ReadonlyPaths ? { readonlyPaths: h.ReadonlyPaths } : {}),
    ...(h.Sysctls ? { sysctl: h.Sysctls } : {}),
    ...(h.Annotations ? { annotations: h.Annotations } : {}),
    ...(h.Ulimits.length
      ? { rlimits: h.Ulimits.map((u) => ({ type: `RLIMIT_${u.Name.toUpperCase()}`, soft: u.Soft, hard: u.Hard })) }
      : {}),
  });
}

/** IpcMode, PidMode and UTSMode: `host`, or `container:ID` (the namespace of that container's init, which must run). */
function sharedNamespaces(ctx: ContainerContext, h: Container['config']['HostConfig']): SpecInput['share'] {
  const out: NonNullable<SpecInput['share']> = {};
  for (const [kind, mode] of [
    ['ipc', h.IpcMode],
    ['pid', h.PidMode],
    ['uts', h.UTSMode],
  ] as const) {
    if (mode === 'host') out[kind] = 'host';
    else if (mode?.startsWith('container:')) {
      const other = ctx.find(mode.slice('container:'.length));
      if (other.state.status !== 'running' || other.state.pid === undefined)
        throw new FailedPreconditionError(`cannot join the ${kind} namespace of container ${other.name}: it is not running`);
      out[kind] = { path: `/proc/${other.state.pid}/ns/${kind}` };
    } else if (mode && !['private', 'shareable', ''].includes(mode)) throw new InvalidArgumentError(`invalid ${kind} mode "${mode}"`);
  }
  return out;
}

/** /dev/shm from the host: its own for `shareable` IPC, the other's for `container:ID` when that one shares it. */
function shmSource(ctx: ContainerContext, rec: Container): { shm?: string } {
  const mode = rec.config.HostConfig.IpcMode ?? '';
  const owner = mode === 'shareable' ? rec.id : mode.startsWith('container:') ? ctx.find(mode.slice('container:'.length)).id : undefined;
  if (owner === undefined) return {};
  const shm = ctx.paths(owner).shm;
  return isMountPoint(shm) ? { shm } : {};
}

/** A `--device` entry as the spec's device node: the host node's type and numbers. @throws InvalidArgumentError */
function hostDevice(d: { PathOnHost: string; PathInContainer: string; CgroupPermissions: string }): LinuxDevice {
  let st: BigIntStats;
  try {
    st = statSync(d.PathOnHost, { bigint: true });
  } catch (err) {
    throw new InvalidArgumentError(`device "${d.PathOnHost}": ${(err as Error).message}`);
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) throw new InvalidArgumentError(`"${d.PathOnHost}" is not a device`);
  return {
    path: d.PathInContainer || d.PathOnHost,
    type: st.isCharacterDevice() ? 'c' : 'b',
    ...deviceNumbers(st.rdev),
    fileMode: Number(st.mode & 0o777n),
    uid: 0,
    gid: 0,
    access: d.CgroupPermissions || 'rwm',
  };
}

/** Runs a path resolution, naming what was resolved in its error. */
function confined<T>(fn: () => T, what: string): T {
  try {
    return fn();
  } catch (err) {
    throw withContext(err, what);
  }
}

/** `--security-opt` values: `seccomp=unconfined|FILE`, `no-new-privileges[=true|false]`. */
function securityOpts(opts: readonly string[]): { seccomp: 'default' | 'unconfined' | LinuxSeccomp; noNewPrivileges: boolean } {
  let seccomp: 'default' | 'unconfined' | LinuxSeccomp = 'default';
  let noNewPrivileges = false;
  for (const o of opts) {
    const [k, v] = o.includes('=') ? [o.slice(0, o.indexOf('=')), o.slice(o.indexOf('=') + 1)] : [o, undefined];
    if (k === 'no-new-privileges') noNewPrivileges = v === undefined || v === 'true';
    else if (k === 'seccomp') seccomp = v === 'unconfined' ? 'unconfined' : v ? loadSeccompProfile(v) : 'default';
    else throw new InvalidArgumentError(`invalid --security-opt "${o}" (want seccomp=unconfined|PROFILE.json or no-new-privileges)`);
  }
  return { seccomp, noNewPrivileges };
}

/** A seccomp profile in docker's format (what `--security-opt seccomp=FILE` takes), as the OCI form runc reads. */
export function loadSeccompProfile(file: string): LinuxSeccomp {
  let p: {
    defaultAction?: string;
    defaultErrnoRet?: number;
    architectures?: string[];
    archMap?: { architecture: string; subArchitectures?: string[] | null }[];
    syscalls?: (Partial<SeccompSyscall> & { name?: string; action: string; includes?: { caps?: string[]; arches?: string[] } })[];
  };
  try {
    p = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`seccomp profile "${file}": ${(err as Error).message}`);
  }
  if (typeof p?.defaultAction !== 'string') throw new InvalidArgumentError(`seccomp profile "${file}": no defaultAction`);
  const out: LinuxSeccomp = { defaultAction: p.defaultAction, syscalls: [] };
  if (p.defaultErrnoRet !== undefined) out.defaultErrnoRet = p.defaultErrnoRet;
  const arches = p.architectures ?? (p.archMap ?? []).flatMap((a) => [a.architecture, ...(a.subArchitectures ?? [])]);
  if (arches.length) out.architectures = arches;
  for (const s of p.syscalls ?? []) {
    if (s.includes?.caps?.length || s.includes?.arches?.length) continue; // conditional entries need a capability or an architecture: left out
    const names = s.names ?? (s.name ? [s.name] : []);
    out.syscalls?.push({
      names,
      action: s.action,
      ...(s.errnoRet !== undefined ? { errnoRet: s.errnoRet } : {}),
      ...(s.args ? { args: s.args } : {}),
    });
  }
  return out;
}
