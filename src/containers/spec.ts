import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { InvalidArgumentError, withContext } from '../errdefs/index.js';
import {
  buildSpec,
  type LinuxSeccomp,
  mergeEnv,
  processArgs,
  type RuntimeSpec,
  resolveInRoot,
  resolveUser,
  type SeccompSyscall,
  type SpecMount,
} from '../runtime/index.js';
import { lookPath } from '../sys/index.js';
import type { ContainerContext } from './context.js';
import { cgroupPath } from './stats.js';
import type { Container } from './types.js';

/**
 * The runtime spec of a container about to start (its rootfs is mounted): the process as its config
 * says, docker's /etc files, binds, tmpfs mounts, the init, confinement and resources.
 */
export function containerSpec(ctx: ContainerContext, rec: Container): RuntimeSpec {
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
  // The files docker manages: /etc/hostname, /etc/hosts, /etc/resolv.conf.
  writeFileSync(join(p.dir, 'hostname'), `${c.Hostname}\n`);
  writeFileSync(
    join(p.dir, 'hosts'),
    h.NetworkMode === 'host'
      ? readFileSync('/etc/hosts', 'utf8')
      : `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${c.Hostname}\n`,
  );
  if (existsSync('/etc/resolv.conf')) copyFileSync('/etc/resolv.conf', join(p.dir, 'resolv.conf'));
  else writeFileSync(join(p.dir, 'resolv.conf'), '');
  for (const f of ['hostname', 'hosts', 'resolv.conf']) {
    const dest = `/etc/${f}`;
    const resolved = resolveInRoot(p.rootfs, dest);
    if (existsSync(resolved) && statSync(resolved).isDirectory()) continue;
    target(dest, false);
    mounts.push({
      destination: dest,
      type: 'bind',
      source: join(p.dir, f),
      options: ['rbind', 'rprivate', ...(h.ReadonlyRootfs ? ['ro'] : [])],
    });
  }
  for (const v of Object.keys(c.Volumes ?? {})) confined(() => resolveInRoot(p.rootfs, v, { mkdir: true }), `volume "${v}"`);
  for (const b of h.Binds) {
    const { source, destination, readOnly } = parseBind(b);
    if (!existsSync(source)) mkdirSync(source, { recursive: true });
    target(destination, statSync(source).isDirectory());
    mounts.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate', readOnly ? 'ro' : 'rw'] });
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
    network: h.NetworkMode,
    mounts,
    cgroupsPath: cgroupPath(rec.id),
    resources: {
      ...(h.Memory > 0 ? { memory: h.Memory } : {}),
      ...(h.NanoCpus > 0 ? { nanoCpus: h.NanoCpus } : {}),
      ...(h.PidsLimit > 0 ? { pidsLimit: h.PidsLimit } : {}),
    },
    ...(h.Ulimits.length
      ? { rlimits: h.Ulimits.map((u) => ({ type: `RLIMIT_${u.Name.toUpperCase()}`, soft: u.Soft, hard: u.Hard })) }
      : {}),
  });
}

/** Runs a path resolution, naming what was resolved in its error. */
function confined<T>(fn: () => T, what: string): T {
  try {
    return fn();
  } catch (err) {
    throw withContext(err, what);
  }
}

/** `-v HOST:CONTAINER[:ro|rw]`. @throws InvalidArgumentError */
export function parseBind(spec: string): { source: string; destination: string; readOnly: boolean; mode: string } {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3)
    throw new InvalidArgumentError(`invalid volume specification "${spec}" (want HOST:CONTAINER[:ro])`);
  const [source = '', destination = '', mode = 'rw'] = parts;
  if (!source.startsWith('/')) {
    throw new InvalidArgumentError(
      `invalid volume specification "${spec}": the host path must be absolute (named volumes are not supported yet)`,
    );
  }
  if (!destination.startsWith('/'))
    throw new InvalidArgumentError(`invalid volume specification "${spec}": the container path must be absolute`);
  const opts = mode.split(',');
  if (!opts.every((o) => o === 'ro' || o === 'rw' || o === 'z' || o === 'Z'))
    throw new InvalidArgumentError(`invalid volume mode "${mode}" in "${spec}"`);
  return {
    source: posix.normalize(source),
    destination: posix.normalize(destination),
    readOnly: opts.includes('ro'),
    mode: parts[2] ?? '',
  };
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
