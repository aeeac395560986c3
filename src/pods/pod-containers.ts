import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { ContainerHostConfig, CreateContainerOpts, MountRequest } from '../containers/index.js';
import { DeadlineExceededError, FailedPreconditionError, hasCode, InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { isDigest, parseReference } from '../oci/index.js';
import { lookupImage } from '../services/index.js';
import { repoDigest } from './images.js';
import { namePart, type PodContainer, type Pods, podContainerOf } from './pods.js';
import {
  type ContainerConfig,
  containerKey,
  type LinuxContainerResources,
  type PodContainerExtension,
  type PodSandboxConfig,
  sandboxLabel,
  typeLabel,
} from './types.js';

// A pod's containers: CRI's ContainerConfig as a berth container that joins the sandbox's network,
// IPC and UTS namespaces (and its PID namespace when the pod shares one), under the pod's cgroup,
// logging where kubelet reads.

const int = (v: string | undefined) => (v === undefined ? 0 : Number(v));

/** The repo digest of an image record's name, when the name is a reference (not an image ID). */
function imageRefOf(name: string, target: string): string | undefined {
  if (isDigest(name)) return undefined;
  try {
    return repoDigest(parseReference(name), target);
  } catch {
    return undefined;
  }
}

/** The container an ID (or unique prefix) names. @throws NotFoundError */
export async function podContainer(pods: Pods, ref: string): Promise<PodContainer> {
  const rec = await pods.containers.get(ref).catch((err) => {
    throw hasCode(err, 'NOT_FOUND') ? new NotFoundError(`container "${ref}" not found`) : err;
  });
  if (rec.labels[typeLabel] !== 'container') throw new NotFoundError(`container "${ref}" not found`);
  return podContainerOf(rec);
}

/** docker's HostConfig resource fields from CRI's. */
export function resourceFields(r: LinuxContainerResources = {}): Partial<ContainerHostConfig> {
  return {
    ...(int(r.memory_limit_in_bytes) > 0 ? { Memory: int(r.memory_limit_in_bytes) } : {}),
    ...(int(r.cpu_shares) > 0 ? { CpuShares: int(r.cpu_shares) } : {}),
    ...(int(r.cpu_quota) > 0 ? { CpuQuota: int(r.cpu_quota) } : {}),
    ...(int(r.cpu_period) > 0 ? { CpuPeriod: int(r.cpu_period) } : {}),
    ...(int(r.oom_score_adj) !== 0 ? { OomScoreAdj: allowedOomScoreAdj(int(r.oom_score_adj)) } : {}),
  };
}

/**
 * An oom_score_adj this process may give: without CAP_SYS_RESOURCE the kernel refuses one below
 * its own (kubelet asks -997 for guaranteed pods), so it is raised to that, as containerd's
 * restrict_oom_score_adj does.
 */
function allowedOomScoreAdj(wanted: number): number {
  try {
    const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0'}`);
    if ((capEff >> 24n) & 1n) return wanted;
    return Math.max(wanted, Number(readFileSync('/proc/self/oom_score_adj', 'utf8').trim()));
  } catch {
    return wanted;
  }
}

/** The process's user from CRI's security context: a uid (and gid), or a name from the image. */
function userOf(sec: NonNullable<NonNullable<ContainerConfig['linux']>['security_context']>): string | undefined {
  const group = sec.run_as_group?.value;
  if (group !== undefined && sec.run_as_user?.value === undefined && !sec.run_as_username)
    throw new InvalidArgumentError('run_as_group needs run_as_user or run_as_username');
  const user = sec.run_as_user?.value ?? sec.run_as_username;
  if (user === undefined || user === '') return undefined;
  return group !== undefined ? `${user}:${group}` : user;
}

function seccompOpt(sec: NonNullable<NonNullable<ContainerConfig['linux']>['security_context']>): string[] {
  const p = sec.seccomp;
  // CRI's default, absent a profile, is no seccomp filter (kubelet asks for RuntimeDefault)
  if (!p) return ['seccomp=unconfined'];
  if (p.profile_type === 'Unconfined') return ['seccomp=unconfined'];
  if (p.profile_type === 'Localhost') {
    if (!p.localhost_ref?.startsWith('/'))
      throw new InvalidArgumentError(`seccomp localhost_ref "${p.localhost_ref}": want an absolute path`);
    return [`seccomp=${p.localhost_ref}`];
  }
  return [];
}

/** CreateContainer. @throws NotFoundError for a missing pod or image (CRI pulls before it creates) */
export async function createPodContainer(
  pods: Pods,
  sandboxRef: string,
  config: ContainerConfig,
  sandboxConfig?: PodSandboxConfig,
): Promise<string> {
  const sb = await pods.sandbox(sandboxRef);
  if (sb.state !== 'SANDBOX_READY') throw new FailedPreconditionError(`pod sandbox ${sb.id} is not ready: no container can be made in it`);
  const podConfig = sandboxConfig?.metadata ? sandboxConfig : sb.pod.config;
  const m = podConfig.metadata ?? {};
  const name = config.metadata?.name;
  if (!name) throw new InvalidArgumentError('container metadata needs a name');
  const imageName = config.image?.image;
  if (!imageName) throw new InvalidArgumentError('container config needs an image');
  const image = await lookupImage(pods.ns, imageName).catch((err) => {
    throw hasCode(err, 'NOT_FOUND') ? new NotFoundError(`image "${imageName}" not found: pull it first`, { cause: err }) : err;
  });
  const sec = config.linux?.security_context ?? {};
  const nsOpts = sec.namespace_options ?? {};
  const sandboxHost = sb.container.config.HostConfig;
  const pid =
    nsOpts.pid === 'POD'
      ? `container:${sb.id}`
      : nsOpts.pid === 'NODE'
        ? 'host'
        : nsOpts.pid === 'TARGET'
          ? `container:${nsOpts.target_id}`
          : '';
  const mounts: MountRequest[] = (config.mounts ?? []).map((mt) => {
    if (!mt.container_path || !mt.host_path) throw new InvalidArgumentError('a mount needs container_path and host_path');
    return { Type: 'bind', Source: mt.host_path, Target: mt.container_path, ReadOnly: mt.readonly ?? false };
  });
  const user = userOf(sec);
  const logPath = podConfig.log_directory && config.log_path ? join(podConfig.log_directory, config.log_path) : undefined;
  const ext: PodContainerExtension = {
    config,
    sandboxId: sb.id,
    image: imageName,
    imageRef: imageRefOf(image.name, image.resolved.target.digest) ?? image.resolved.config.digest,
    imageId: image.resolved.config.digest,
  };
  const opts: CreateContainerOpts = {
    name: `k8s_${namePart(name)}_${namePart(m.name)}_${namePart(m.namespace)}_${namePart(m.uid)}_${config.metadata?.attempt ?? 0}`,
    ...(config.command?.length ? { entrypoint: config.command } : {}),
    ...(config.args?.length ? { cmd: config.args } : {}),
    env: (config.envs ?? []).map((e) => `${e.key ?? ''}=${e.value ?? ''}`),
    ...(config.working_dir ? { workingDir: config.working_dir } : {}),
    ...(user !== undefined ? { user } : {}),
    hostname: sb.container.config.Config.Hostname,
    tty: config.tty ?? false,
    openStdin: config.stdin ?? false,
    labels: {
      [typeLabel]: 'container',
      [sandboxLabel]: sb.id,
      'io.kubernetes.container.name': name,
      'io.kubernetes.pod.name': m.name ?? '',
      'io.kubernetes.pod.namespace': m.namespace ?? '',
    },
    host: {
      NetworkMode: `container:${sb.id}`,
      IpcMode: sandboxHost.IpcMode === 'host' ? 'host' : `container:${sb.id}`,
      UTSMode: sandboxHost.UTSMode === 'host' ? 'host' : `container:${sb.id}`,
      PidMode: pid,
      ...(sandboxHost.CgroupParent ? { CgroupParent: sandboxHost.CgroupParent } : {}),
      Mounts: mounts,
      Devices: (config.devices ?? []).map((d) => ({
        PathOnHost: d.host_path ?? '',
        PathInContainer: d.container_path || (d.host_path ?? ''),
        CgroupPermissions: d.permissions || 'rwm',
      })),
      ...resourceFields(config.linux?.resources),
      Privileged: sec.privileged ?? false,
      ReadonlyRootfs: sec.readonly_rootfs ?? false,
      CapAdd: sec.capabilities?.add_capabilities ?? [],
      CapDrop: sec.capabilities?.drop_capabilities ?? [],
      GroupAdd: (sec.supplemental_groups ?? []).map(String),
      SecurityOpt: [...(sec.privileged ? [] : seccompOpt(sec)), ...(sec.no_new_privs ? ['no-new-privileges'] : [])],
      ...(sec.masked_paths?.length ? { MaskedPaths: sec.masked_paths } : {}),
      ...(sec.readonly_paths?.length ? { ReadonlyPaths: sec.readonly_paths } : {}),
      Annotations: config.annotations ?? {},
    },
    ...(logPath ? { logPath } : {}),
    extensions: { [containerKey]: ext },
  };
  const rec = await pods.containers.create(image, opts);
  pods.emit({ id: rec.id, type: 'created', sandboxId: sb.id });
  return rec.id;
}

/** StartContainer: its pod must be running. */
export async function startPodContainer(pods: Pods, ref: string): Promise<void> {
  const c = await podContainer(pods, ref);
  const sb = await pods.sandbox(c.ext.sandboxId);
  if (sb.state !== 'SANDBOX_READY') throw new FailedPreconditionError(`pod sandbox ${sb.id} is not ready: its container cannot start`);
  if (c.state === 'CONTAINER_RUNNING') return;
  if (c.state === 'CONTAINER_EXITED') throw new FailedPreconditionError(`container ${c.id} has exited: CRI containers start once`);
  await pods.containers.start(c.id);
  pods.emit({ id: c.id, type: 'started', sandboxId: c.ext.sandboxId });
}

/** StopContainer: the stop signal, then SIGKILL after `timeout` seconds. Safe to repeat. */
export async function stopPodContainer(pods: Pods, ref: string, timeout: number): Promise<void> {
  const c = await podContainer(pods, ref);
  if (c.state !== 'CONTAINER_RUNNING') return;
  await pods.containers.stop(c.id, { timeout });
}

/** RemoveContainer: killed first when it runs. A missing container is not an error. */
export async function removePodContainer(pods: Pods, ref: string): Promise<void> {
  let c: PodContainer;
  try {
    c = await podContainer(pods, ref);
  } catch (err) {
    if (hasCode(err, 'NOT_FOUND')) return;
    throw err;
  }
  await pods.containers.remove(c.id, { force: true });
  pods.emit({ id: c.id, type: 'deleted', sandboxId: c.ext.sandboxId });
}

/** ExecSync's cap on each stream, as containerd and CRI-O keep it (CVE-2022-1708). */
const outputCap = 16 * 1024 * 1024;

/**
 * ExecSync: runs `cmd` in the container and collects its output (each stream capped at 16 MiB,
 * the rest dropped). @throws DeadlineExceededError when `timeout` seconds (0: none) pass first
 */
export async function execSync(
  pods: Pods,
  ref: string,
  cmd: string[],
  timeout: number,
): Promise<{ stdout: Buffer; stderr: Buffer; exitCode: number }> {
  const c = await podContainer(pods, ref);
  const { child, exited } = await pods.containers.spawnExec(c.id, { cmd });
  const collect = (stream: NodeJS.ReadableStream | null) => {
    const parts: Buffer[] = [];
    let n = 0;
    stream?.on('data', (d: Buffer) => {
      if (n >= outputCap) return;
      parts.push(d.subarray(0, outputCap - n));
      n += d.length;
    });
    return parts;
  };
  const out = collect(child.stdout);
  const err = collect(child.stderr);
  let timedOut = false;
  const timer =
    timeout > 0
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, timeout * 1000)
      : undefined;
  const code = await exited;
  clearTimeout(timer);
  if (timedOut) throw new DeadlineExceededError(`command ${JSON.stringify(cmd)} timed out after ${timeout}s`);
  return { stdout: Buffer.concat(out), stderr: Buffer.concat(err), exitCode: code };
}

/** UpdateContainerResources: recorded, and applied now when it runs. */
export async function updatePodContainer(pods: Pods, ref: string, r: LinuxContainerResources): Promise<void> {
  const c = await podContainer(pods, ref);
  const f = resourceFields(r);
  await pods.containers.update(c.id, {
    ...(f.Memory !== undefined ? { Memory: f.Memory } : {}),
    ...(f.CpuShares !== undefined ? { CpuShares: f.CpuShares } : {}),
    ...(f.CpuQuota !== undefined ? { CpuQuota: f.CpuQuota } : {}),
    ...(f.CpuPeriod !== undefined ? { CpuPeriod: f.CpuPeriod } : {}),
  });
  const ext = {
    ...c.ext,
    config: { ...c.ext.config, linux: { ...c.ext.config.linux, resources: { ...c.ext.config.linux?.resources, ...r } } },
  };
  pods.setExtension(c.id, containerKey, ext);
}

/** Where a container's mount came from, for ContainerStatus. */
export function statusMounts(c: PodContainer) {
  return (c.ext.config.mounts ?? []).map((m) => ({
    container_path: posix.normalize(m.container_path ?? ''),
    host_path: m.host_path ?? '',
    readonly: m.readonly ?? false,
    propagation: m.propagation ?? 'PROPAGATION_PRIVATE',
  }));
}
