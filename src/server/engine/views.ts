import type { Container, ContainerHostConfig, CreateContainerOpts, MountRequest, RestartPolicy } from '../../containers/index.js';
import { InvalidArgumentError } from '../../errdefs/index.js';
import { contentSize } from '../../images/index.js';
import type { EndpointRequest, PortMap } from '../../network/index.js';
import { type ImageRow, imageCreated, imageIdOf, imageRows, portList, repoOf, statusText } from '../../services/index.js';
import type { Engine } from './engine.js';

// docker's shapes of berth's records: the items of the image and container lists, and the create
// body turned into berth's create options.

/** `GET /images/json` items: one per image ID, with every name of it. */
export async function imageItems(e: Engine, filter: (rows: ImageRow[]) => ImageRow[] = (r) => r): Promise<Record<string, unknown>[]> {
  const ns = e.containers.ns;
  const all = await imageRows(ns, e.berth.snapshotter(e.namespace));
  const byId = new Map<string, ImageRow[]>();
  for (const r of filter(all)) {
    const id = imageIdOf(r);
    if (!id) continue;
    byId.set(id, [...(byId.get(id) ?? []), r]);
  }
  const used = new Map<string, number>();
  for (const c of ns.containers.list()) used.set(c.imageId, (used.get(c.imageId) ?? 0) + 1);
  return [...byId.entries()]
    .map(([id, rows]) => {
      const first = rows[0] as ImageRow;
      return {
        Id: id,
        ParentId: '',
        RepoTags: rows.filter((r) => r.ref?.tag !== undefined).map((r) => `${repoOf(r)}:${r.ref?.tag}`),
        RepoDigests: [...new Set(rows.map((r) => `${repoOf(r)}@${r.image.target.digest}`))],
        Created: Math.floor(imageCreated(first) / 1000),
        Size: first.unpackedSize ?? (first.resolved ? contentSize(first.resolved) : 0),
        SharedSize: -1,
        Containers: used.get(id) ?? 0,
        Labels: first.resolved?.config.value.config?.Labels ?? {},
        Name: first.image.name,
      };
    })
    .sort((a, z) => z.Created - a.Created);
}

const commandOf = (c: Container) => [...(c.config.Config.Entrypoint ?? []), ...c.config.Config.Cmd].join(' ');

/** `GET /containers/json` item. */
export function containerItem(c: Container): Record<string, unknown> {
  return {
    Id: c.id,
    Names: [`/${c.name}`],
    Image: c.config.Config.Image,
    ImageID: c.imageId,
    Command: commandOf(c),
    Created: Math.floor(c.createdAt.getTime() / 1000),
    Ports: portList(c),
    Labels: c.labels,
    State: c.state.paused ? 'paused' : c.state.status,
    Status: statusText(c),
    HostConfig: { NetworkMode: c.config.HostConfig.NetworkMode },
    NetworkSettings: {
      Networks: Object.fromEntries(
        Object.entries(c.state.status === 'running' ? (c.state.networks ?? {}) : {}).map(([n, e]) => [n, { ...e, IfName: undefined }]),
      ),
    },
    Mounts: [],
  };
}

/** The create body's fields berth reads (docker's `Config` plus `HostConfig`). */
export interface CreateBody {
  Hostname?: string;
  User?: string;
  Env?: string[] | null;
  Cmd?: string[] | string | null;
  Entrypoint?: string[] | string | null;
  Image?: string;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  Tty?: boolean;
  OpenStdin?: boolean;
  StopSignal?: string;
  StopTimeout?: number | null;
  ExposedPorts?: Record<string, object> | null;
  Domainname?: string;
  NetworkingConfig?: { EndpointsConfig?: Record<string, EndpointConfig | null> | null } | null;
  HostConfig?: {
    Binds?: string[] | null;
    Mounts?: MountRequest[] | null;
    VolumesFrom?: string[] | null;
    PortBindings?: PortMap | null;
    PublishAllPorts?: boolean;
    Dns?: string[] | null;
    DnsSearch?: string[] | null;
    DnsOptions?: string[] | null;
    ExtraHosts?: string[] | null;
    Tmpfs?: Record<string, string> | null;
    NetworkMode?: string;
    Memory?: number;
    NanoCpus?: number;
    PidsLimit?: number | null;
    Ulimits?: { Name: string; Soft: number; Hard: number }[] | null;
    Init?: boolean | null;
    Privileged?: boolean;
    ReadonlyRootfs?: boolean;
    CapAdd?: string[] | null;
    CapDrop?: string[] | null;
    SecurityOpt?: string[] | null;
    AutoRemove?: boolean;
    GroupAdd?: string[] | null;
    RestartPolicy?: { Name?: string; MaximumRetryCount?: number } | null;
  };
}

/** docker's EndpointSettings, as create and network connect send them. */
export interface EndpointConfig {
  Aliases?: string[] | null;
  IPAMConfig?: { IPv4Address?: string } | null;
}

/** docker's EndpointSettings as berth's request. */
export function endpointRequest(e: EndpointConfig | null | undefined): EndpointRequest {
  const aliases = stringArray(e?.Aliases, 'Aliases');
  return {
    ...(aliases?.length ? { Aliases: aliases } : {}),
    ...(e?.IPAMConfig?.IPv4Address ? { IPv4Address: e.IPAMConfig.IPv4Address } : {}),
  };
}

const list = (v: string[] | string | null | undefined): string[] | undefined =>
  v === undefined || v === null ? undefined : typeof v === 'string' ? [v] : v;

function stringArray(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new InvalidArgumentError(`${what}: want an array of strings`);
  return v as string[];
}

const restartPolicies = ['', 'no', 'always', 'unless-stopped', 'on-failure'];

/** docker's RestartPolicy, checked. @throws InvalidArgumentError */
export function restartPolicy(p: { Name?: string; MaximumRetryCount?: number }): RestartPolicy {
  const name = p.Name ?? '';
  if (!restartPolicies.includes(name)) throw new InvalidArgumentError(`invalid restart policy "${name}"`);
  const max = p.MaximumRetryCount ?? 0;
  if (!Number.isInteger(max) || max < 0) throw new InvalidArgumentError(`invalid MaximumRetryCount ${max}`);
  return { Name: name as RestartPolicy['Name'], MaximumRetryCount: max };
}

/** docker's create body as berth's create options. @throws InvalidArgumentError */
export function createOpts(body: CreateBody, name: string | null): CreateContainerOpts {
  const h = body.HostConfig ?? {};
  const host: Partial<ContainerHostConfig> = {};
  const binds = stringArray(h.Binds, 'HostConfig.Binds');
  if (binds) host.Binds = binds;
  if (h.Tmpfs) host.Tmpfs = h.Tmpfs;
  if (h.Mounts?.length) host.Mounts = h.Mounts;
  const volumesFrom = stringArray(h.VolumesFrom, 'HostConfig.VolumesFrom');
  if (volumesFrom?.length) host.VolumesFrom = volumesFrom;
  if (h.NetworkMode && h.NetworkMode !== 'default') host.NetworkMode = h.NetworkMode;
  if (h.PortBindings && Object.keys(h.PortBindings).length) host.PortBindings = h.PortBindings;
  if (h.PublishAllPorts) host.PublishAllPorts = true;
  for (const k of ['Dns', 'DnsSearch', 'DnsOptions', 'ExtraHosts'] as const) {
    const v = stringArray(h[k], `HostConfig.${k}`);
    if (v?.length) host[k] = v;
  }
  if (h.Memory) host.Memory = h.Memory;
  if (h.NanoCpus) host.NanoCpus = h.NanoCpus;
  if (h.PidsLimit && h.PidsLimit > 0) host.PidsLimit = h.PidsLimit;
  if (h.Ulimits) host.Ulimits = h.Ulimits;
  if (h.Init) host.Init = true;
  if (h.Privileged) host.Privileged = true;
  if (h.ReadonlyRootfs) host.ReadonlyRootfs = true;
  const capAdd = stringArray(h.CapAdd, 'HostConfig.CapAdd');
  if (capAdd) host.CapAdd = capAdd;
  const capDrop = stringArray(h.CapDrop, 'HostConfig.CapDrop');
  if (capDrop) host.CapDrop = capDrop;
  const secOpt = stringArray(h.SecurityOpt, 'HostConfig.SecurityOpt');
  if (secOpt) host.SecurityOpt = secOpt;
  if (h.AutoRemove) host.AutoRemove = true;
  const groupAdd = stringArray(h.GroupAdd, 'HostConfig.GroupAdd');
  if (groupAdd) host.GroupAdd = groupAdd;
  if (h.RestartPolicy?.Name) {
    if (h.AutoRemove && h.RestartPolicy.Name !== 'no')
      throw new InvalidArgumentError("can't create 'AutoRemove' container with restart policy");
    host.RestartPolicy = restartPolicy(h.RestartPolicy);
  }
  const opts: CreateContainerOpts = { host };
  if (name) opts.name = name.replace(/^\//, '');
  const cmd = list(body.Cmd);
  if (cmd?.length) opts.cmd = cmd;
  const entrypoint = list(body.Entrypoint);
  if (entrypoint) opts.entrypoint = entrypoint;
  const env = stringArray(body.Env, 'Env');
  if (env) opts.env = env;
  if (body.WorkingDir) opts.workingDir = body.WorkingDir;
  if (body.User) opts.user = body.User;
  if (body.Hostname) opts.hostname = body.Hostname;
  if (body.Tty) opts.tty = true;
  if (body.OpenStdin) opts.openStdin = true;
  if (body.Labels) opts.labels = body.Labels;
  const exposed = Object.keys(body.ExposedPorts ?? {});
  if (exposed.length) opts.exposedPorts = exposed;
  const endpoints = Object.entries(body.NetworkingConfig?.EndpointsConfig ?? {});
  if (endpoints.length) opts.networks = Object.fromEntries(endpoints.map(([n, e]) => [n, endpointRequest(e)]));
  if (body.StopSignal) opts.stopSignal = body.StopSignal;
  if (typeof body.StopTimeout === 'number') opts.stopTimeout = body.StopTimeout;
  return opts;
}
