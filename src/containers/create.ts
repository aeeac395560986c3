import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { hasCode, InvalidArgumentError } from '../errdefs/index.js';
import { type ResolvedImage, unpackedTop } from '../images/index.js';
import type { ContainerState } from '../metadata/index.js';
import { type EndpointRequest, networkingAvailable } from '../network/index.js';
import type { ContainerConfig as ImageRunConfig } from '../oci/index.js';
import { capabilitySet, overrideEnv, processArgs } from '../runtime/index.js';
import type { ContainerContext } from './context.js';
import { resolveMounts } from './mounts.js';
import { primaryNetwork } from './network.js';
import type { Container, ContainerHostConfig, ContainerRunConfig, CreateContainerOpts, StoredContainerConfig } from './types.js';

const adjectives =
  'brave calm eager fancy gentle happy jolly keen lucid merry nifty proud quirky sharp tender vivid witty zealous bold clever'.split(' ');
const surnames =
  'turing hopper lovelace curie noether ritchie thompson torvalds knuth dijkstra lamport liskov hamilton kay pike shannon babbage wozniak'.split(
    ' ',
  );

/**
 * Creates a container from an image of the namespace: unpacks the image when its snapshots are
 * missing, prepares the writable snapshot on its top layer (keyed by the container's ID) and
 * records the merged config under a name (the one given, or docker's adjective_surname).
 */
export async function createContainer(
  ctx: ContainerContext,
  image: { name: string; resolved: ResolvedImage },
  opts: CreateContainerOpts = {},
): Promise<Container> {
  const r = image.resolved;
  const ic: ImageRunConfig = r.config.value.config ?? {};
  if (opts.id !== undefined && !/^[a-f0-9]{64}$/.test(opts.id))
    throw new InvalidArgumentError(`invalid container ID "${opts.id}": want 64 hex digits`);
  const id = opts.id ?? randomBytes(32).toString('hex');
  const sn = ctx.host.snapshotter(ctx.ns.name);
  const top = await unpackedTop(ctx.ns, sn, r);
  const host: ContainerHostConfig = {
    Binds: [],
    Tmpfs: {},
    NetworkMode: networkingAvailable() ? 'bridge' : 'none',
    Memory: 0,
    NanoCpus: 0,
    PidsLimit: 0,
    Ulimits: [],
    Init: false,
    Privileged: false,
    ReadonlyRootfs: false,
    CapAdd: [],
    CapDrop: [],
    SecurityOpt: [],
    AutoRemove: false,
    GroupAdd: [],
    ...opts.host,
  };
  capabilitySet({ capAdd: host.CapAdd, capDrop: host.CapDrop }); // validates the names now, not at start
  const entrypoint = opts.entrypoint ?? ic.Entrypoint ?? null;
  const config: ContainerRunConfig = {
    Hostname: opts.hostname ?? id.slice(0, 12),
    User: opts.user ?? ic.User ?? '',
    Env: overrideEnv(ic.Env ?? [], opts.env ?? []),
    Cmd: opts.cmd && opts.cmd.length > 0 ? opts.cmd : opts.entrypoint ? [] : (ic.Cmd ?? []),
    Entrypoint: entrypoint && entrypoint.length > 0 ? entrypoint : null,
    WorkingDir: opts.workingDir ?? ic.WorkingDir ?? '',
    Labels: { ...(ic.Labels ?? {}), ...(opts.labels ?? {}) },
    Tty: opts.tty ?? false,
    OpenStdin: opts.openStdin ?? false,
    Image: image.name,
  };
  const stopSignal = opts.stopSignal ?? ic.StopSignal;
  if (stopSignal) config.StopSignal = stopSignal;
  if (opts.stopTimeout !== undefined) config.StopTimeout = opts.stopTimeout;
  if (ic.Volumes) config.Volumes = ic.Volumes;
  const exposed = {
    ...(ic.ExposedPorts ?? {}),
    ...Object.fromEntries((opts.exposedPorts ?? []).map((p) => [p.includes('/') ? p : `${p}/tcp`, {}])),
  };
  if (Object.keys(exposed).length) config.ExposedPorts = exposed;
  const networks = checkNetworks(ctx, host, opts.networks ?? {});
  const mounts = resolveMounts(ctx, host, Object.keys(ic.Volumes ?? {}));
  processArgs({ Entrypoint: config.Entrypoint, Cmd: config.Cmd }, {});
  if (config.WorkingDir !== '' && !config.WorkingDir.startsWith('/')) {
    throw new InvalidArgumentError(`the working directory "${config.WorkingDir}" is invalid: it needs to be an absolute path`);
  }

  const paths = ctx.paths(id);
  mkdirSync(paths.rootfs, { recursive: true, mode: 0o700 });
  const record = {
    id,
    name: '',
    image: image.name,
    imageId: r.config.digest,
    snapshotter: sn.driver,
    snapshotKey: id,
    config: {
      Config: config,
      HostConfig: host,
      Manifest: r.manifestDesc,
      ...(networks ? { Networks: networks } : {}),
      MountPoints: mounts,
      ...(opts.logPath ? { LogPath: opts.logPath } : {}),
      ...(opts.extensions ? { Extensions: opts.extensions } : {}),
    } satisfies StoredContainerConfig,
    state: { status: 'created' } as ContainerState,
    labels: opts.labels ?? {},
  };
  let rec: Container | undefined;
  try {
    for (let attempt = 0; !rec; attempt++) {
      const name = opts.name ?? `${pick(adjectives)}_${pick(surnames)}${attempt > 2 ? attempt : ''}`;
      try {
        rec = ctx.ns.containers.create({ ...record, name });
      } catch (err) {
        if (opts.name !== undefined || !hasCode(err, 'ALREADY_EXISTS') || attempt > 20) throw err;
      }
    }
    await sn.prepare(id, { ...(top !== undefined ? { parent: top } : {}), labels: { 'berth.container': id } });
  } catch (err) {
    if (rec) ctx.ns.containers.delete(id);
    rmSync(paths.dir, { recursive: true, force: true });
    for (const m of mounts) if (m.Anonymous && m.Name) await ctx.host.volumes.remove(m.Name).catch(() => {});
    throw err;
  }
  return rec;
}

/**
 * The networks a new container joins, by name: its NetworkMode's (with the request given for it) and
 * the others named. Each must exist now (docker refuses an unknown one at create). @throws NotFoundError
 */
function checkNetworks(
  ctx: ContainerContext,
  host: ContainerHostConfig,
  requested: Record<string, EndpointRequest>,
): Record<string, EndpointRequest> | undefined {
  const mode = primaryNetwork(host.NetworkMode);
  if (mode === 'none' || mode === 'host') {
    if (Object.keys(requested).some((n) => primaryNetwork(n) !== mode)) {
      throw new InvalidArgumentError(`container cannot be connected to other networks with network mode "${mode}"`);
    }
    return undefined;
  }
  if (mode.startsWith('ns:')) {
    if (!mode.slice(3).startsWith('/')) throw new InvalidArgumentError(`invalid network mode "${mode}": want ns:/path`);
    return undefined;
  }
  if (mode.startsWith('container:')) {
    ctx.find(mode.slice('container:'.length));
    if (host.PortBindings && Object.keys(host.PortBindings).length) {
      throw new InvalidArgumentError('conflicting options: port publishing and the container type network mode');
    }
    return undefined;
  }
  const out: Record<string, EndpointRequest> = {};
  for (const name of [mode, ...Object.keys(requested)]) {
    const net = ctx.host.network.store.find(name === 'default' ? 'bridge' : name);
    const req = requested[name] ?? (name === mode ? requested[net.Name] : undefined) ?? {};
    if ((req.Aliases?.length || req.IPv4Address) && net.Name === 'bridge') {
      throw new InvalidArgumentError('network-scoped aliases and user-specified IP addresses are supported only for user-defined networks');
    }
    out[net.Name] = req;
  }
  return out;
}

function pick<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)] as T;
}
