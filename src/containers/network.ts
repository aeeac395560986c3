import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FailedPreconditionError, hasCode } from '../errdefs/index.js';
import {
  type Attachment,
  assignHostPorts,
  type CniResult,
  createNetns,
  deleteNetns,
  type Endpoint,
  type EndpointRequest,
  type HostEntry,
  hostsFile,
  ifName,
  type NetworkRecord,
  type PortBinding,
  parseExtraHost,
  parsePortKey,
  portBindings,
  resolvConf,
} from '../network/index.js';
import { withFileLock } from '../sys/index.js';
import { type ContainerContext, containerDir } from './context.js';
import type { Container } from './types.js';

// A container's networking at start and exit: its namespace (the host's, one of its own, one berth
// makes and attaches to networks, or another container's), the CNI attachments, the published
// ports, and the /etc files: hosts (kept in sync with the peers on its user networks: berth's name
// resolution), resolv.conf and hostname.

export interface NetworkPlan {
  /** What the runtime spec gets. */
  namespace: 'none' | 'host' | { path: string };
  /** berth made the namespace (bridge networks): lo, the attachments, and its removal at the exit are berth's. */
  ownNetns?: string;
  attachments: Attachment[];
  ports: PortBinding[];
  /** `container:ID`: that container's /etc files are shared. */
  filesFrom?: Container;
}

/** docker's `default` is the `bridge` network. */
export function primaryNetwork(mode: string): string {
  return mode === 'default' ? 'bridge' : mode;
}

/** The network names a container joins, its NetworkMode's first (none for host, none, container:). */
export function joinedNetworks(rec: Container): string[] {
  const mode = primaryNetwork(rec.config.HostConfig.NetworkMode);
  if (mode === 'host' || mode === 'none' || mode.startsWith('container:') || mode.startsWith('ns:')) return [];
  return rec.config.Networks ? Object.keys(rec.config.Networks) : [mode];
}

/** Every port the container publishes: `-p`, and with `-P` each exposed port on a random host port. */
function wantedPorts(rec: Container): PortBinding[] {
  const h = rec.config.HostConfig;
  const bound = portBindings(h.PortBindings);
  if (h.PublishAllPorts) {
    for (const key of Object.keys(rec.config.Config.ExposedPorts ?? {})) {
      const { port, protocol } = parsePortKey(key);
      if (!bound.some((b) => b.containerPort === port && b.protocol === protocol))
        bound.push({ hostIP: '', hostPort: 0, containerPort: port, protocol });
    }
  }
  return bound;
}

/** Host ports already published by the namespace's running containers. */
function takenPorts(ctx: ContainerContext): Set<string> {
  const taken = new Set<string>();
  for (const r of ctx.ns.containers.list<Container['config']>()) {
    if (r.state.status === 'running') for (const p of r.state.ports ?? []) taken.add(`${p.hostPort}/${p.protocol}`);
  }
  return taken;
}

/** Works out a starting container's networking and makes its namespace. @throws NotFoundError for an unknown network */
export async function planNetwork(ctx: ContainerContext, rec: Container): Promise<NetworkPlan> {
  const mode = primaryNetwork(rec.config.HostConfig.NetworkMode);
  if (mode === 'host' || mode === 'none') return { namespace: mode, attachments: [], ports: [] };
  if (mode.startsWith('ns:')) return { namespace: { path: mode.slice('ns:'.length) }, attachments: [], ports: [] };
  if (mode.startsWith('container:')) {
    const other = ctx.find(mode.slice('container:'.length));
    if (other.state.status !== 'running' || other.state.pid === undefined) {
      throw new FailedPreconditionError(`cannot join the network of container ${other.name}: it is not running`);
    }
    const path = other.state.netns ?? `/proc/${other.state.pid}/ns/net`;
    return { namespace: other.config.HostConfig.NetworkMode === 'host' ? 'host' : { path }, attachments: [], ports: [], filesFrom: other };
  }
  const names = joinedNetworks(rec);
  const networks = names.map((n) => ctx.host.network.store.find(n));
  const wanted = wantedPorts(rec);
  const ports = wanted.length ? await assignHostPorts(wanted, takenPorts(ctx)) : [];
  const attachments = networks.map((network, i) => ({
    network,
    request: rec.config.Networks?.[names[i] as string] ?? {},
    ports: i === 0 ? ports : [],
    ifName: ifName(i),
  }));
  const path = await createNetns(rec.id);
  return { namespace: { path }, ownNetns: path, attachments, ports };
}

/** ADD for every attachment, side by side; on a failure, what was added is undone. */
export async function attachNetworks(ctx: ContainerContext, rec: Container, plan: NetworkPlan): Promise<Record<string, Endpoint>> {
  if (!plan.ownNetns) return {};
  const netns = plan.ownNetns;
  const svc = ctx.host.network;
  const results = await Promise.allSettled(plan.attachments.map((a) => svc.attach(rec.id, netns, a)));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    await releaseNetworks(ctx, rec, { netns, attachments: plan.attachments });
    throw (failed as PromiseRejectedResult).reason;
  }
  const endpoints: Record<string, Endpoint> = {};
  const cni: Record<string, CniResult> = {};
  plan.attachments.forEach((a, i) => {
    const r = (results[i] as PromiseFulfilledResult<{ endpoint: Endpoint; result: CniResult }>).value;
    endpoints[a.network.Name] = r.endpoint;
    cni[a.network.Name] = r.result;
  });
  writeCniResults(ctx, rec.id, cni);
  return endpoints;
}

/**
 * DEL for every network the container joins and the removal of its namespace: after its exit, on
 * a failed start, and by fsck for leftovers. Repeating it is harmless.
 */
export async function releaseNetworks(
  ctx: ContainerContext,
  rec: Container,
  given?: { netns: string; attachments: Omit<Attachment, 'request'>[] },
): Promise<void> {
  const netns = given?.netns ?? rec.state.netns;
  if (!netns) return;
  const attachments = given?.attachments ?? recordedAttachments(ctx, rec);
  // The namespace first: with nothing left in it, its veth ends go with it, and DEL (given no
  // namespace) only releases the addresses and port rules.
  await deleteNetns(rec.id);
  const results = await Promise.allSettled(attachments.map((a) => ctx.host.network.detach(rec.id, '', a)));
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

/** The attachments a start made (or may have made before a crash), with the interfaces and ports it recorded. */
function recordedAttachments(ctx: ContainerContext, rec: Container): Omit<Attachment, 'request'>[] {
  const out: Omit<Attachment, 'request'>[] = [];
  joinedNetworks(rec).forEach((name, i) => {
    let network: NetworkRecord;
    try {
      network = ctx.host.network.store.find(name);
    } catch (err) {
      if (hasCode(err, 'NOT_FOUND')) return; // removed since: nothing of it to release
      throw err;
    }
    out.push({ network, ifName: rec.state.networks?.[name]?.IfName ?? ifName(i), ports: i === 0 ? (rec.state.ports ?? []) : [] });
  });
  return out;
}

/** Writes /etc/hostname, /etc/resolv.conf and a first /etc/hosts into the container's directory. */
export function writeEtcFiles(ctx: ContainerContext, rec: Container, plan: NetworkPlan): void {
  const { Config: c, HostConfig: h } = rec.config;
  const dir = ctx.paths(rec.id).dir;
  const hostNetwork = plan.namespace === 'host';
  writeFileSync(join(dir, 'hostname'), `${c.Hostname}\n`);
  writeFileSync(
    join(dir, 'resolv.conf'),
    resolvConf({
      hostNetwork,
      ...(h.Dns ? { servers: h.Dns } : {}),
      ...(h.DnsSearch ? { search: h.DnsSearch } : {}),
      ...(h.DnsOptions ? { options: h.DnsOptions } : {}),
    }),
  );
  const extra = (h.ExtraHosts ?? []).map(parseExtraHost);
  const hosts = hostNetwork
    ? `${readFileSync('/etc/hosts', 'utf8').trimEnd()}\n${extra.map((e) => `${e.ip}\t${e.names.join(' ')}\n`).join('')}`
    : hostsFile(plan.ownNetns ? [] : [{ ip: '127.0.1.1', names: [c.Hostname] }], [], extra);
  writeFileSync(join(dir, 'hosts'), hosts);
}

/** The files a container's /etc mounts come from (another container's, for `container:ID`). */
export function etcFileSource(
  ctx: ContainerContext,
  rec: Container,
  plan: NetworkPlan,
  file: 'hosts' | 'resolv.conf' | 'hostname',
): string {
  const owner = plan.filesFrom && file !== 'hostname' ? plan.filesFrom : rec;
  return join(ctx.paths(owner.id).dir, file);
}

/**
 * Rewrites /etc/hosts of the running containers on the given networks: each lists itself and,
 * on user networks (docker's default bridge resolves no names), its peers by name and alias.
 * `starting` counts as running (its record is written after the start) and, when given, is the
 * only file written: the start writes everyone's once its record says running, so that of two
 * containers starting at once the later writer sees both. Files are rewritten in place: the
 * containers see them through bind mounts of those inodes.
 */
export async function syncHosts(ctx: ContainerContext, networkIds: Set<string>, starting?: Container): Promise<void> {
  if (networkIds.size === 0) return;
  const bridge = ctx.host.network.store.find('bridge').Id;
  // On the default bridge a container's file names only itself: the others' need no rewrite.
  const named = new Set([...networkIds].filter((id) => id !== bridge));
  if (starting && named.size === 0) {
    const e = Object.values(starting.state.networks ?? {})[0];
    if (e)
      writeFileSync(
        join(ctx.paths(starting.id).dir, 'hosts'),
        hostsFile([{ ip: e.IPAddress, names: [starting.config.Config.Hostname] }], [], extraHosts(starting)),
      );
    return;
  }
  if (!starting) networkIds = named;
  if (networkIds.size === 0) return;
  await withFileLock(join(ctx.host.network.store.dir, 'hosts.lock'), async () => {
    // Networks are the root's: peers come from every namespace, each file from its own directory.
    const running: Container[] = [];
    const dirs = new Map<string, string>();
    for (const ns of ctx.host.namespaceNames()) {
      for (const r of ctx.host.namespace(ns).containers.list<Container['config']>()) {
        if (r.id === starting?.id || r.state.status !== 'running' || !r.state.networks) continue;
        running.push(r);
        dirs.set(r.id, containerDir(ctx.host.root, ns, r.id));
      }
    }
    if (starting) {
      running.push(starting);
      dirs.set(starting.id, ctx.paths(starting.id).dir);
    }
    for (const r of running) {
      if (starting && r.id !== starting.id) continue;
      const mine = Object.values(r.state.networks ?? {});
      if (!mine.some((e) => networkIds.has(e.NetworkID))) continue;
      // itself by its host name and, on user networks, by its name and aliases (docker's DNS answers those too)
      const self: HostEntry[] = mine
        .slice(0, 1)
        .map((e) => ({ ip: e.IPAddress, names: [r.config.Config.Hostname, ...(e.NetworkID === bridge ? [] : [r.name, ...e.Aliases])] }));
      const peers: HostEntry[] = [];
      for (const o of running) {
        if (o.id === r.id) continue;
        for (const e of Object.values(o.state.networks ?? {})) {
          if (e.NetworkID === bridge || !mine.some((m) => m.NetworkID === e.NetworkID)) continue;
          peers.push({ ip: e.IPAddress, names: [o.name, ...e.Aliases] });
        }
      }
      const file = join(dirs.get(r.id) as string, 'hosts');
      const text = hostsFile(self, peers, extraHosts(r));
      if (existsSync(file) && readFileSync(file, 'utf8') !== text) writeFileSync(file, text);
    }
  });
}

/** The CNI results of a container's attachments (CHECK needs them), beside its other files. */
function cniResultsFile(ctx: ContainerContext, id: string): string {
  return join(ctx.paths(id).dir, 'cni-results.json');
}

function readCniResults(ctx: ContainerContext, id: string): Record<string, CniResult> {
  try {
    return JSON.parse(readFileSync(cniResultsFile(ctx, id), 'utf8')) as Record<string, CniResult>;
  } catch {
    return {};
  }
}

function writeCniResults(ctx: ContainerContext, id: string, results: Record<string, CniResult>): void {
  writeFileSync(cniResultsFile(ctx, id), JSON.stringify(results));
}

/**
 * CHECK for each network a running container is attached to: the plugins confirm the interface,
 * the address and the rules their ADD reported are still in place. The problems, by network.
 */
export async function checkNetworks(ctx: ContainerContext, rec: Container): Promise<{ network: string; problem: string }[]> {
  const netns = rec.state.netns;
  if (rec.state.status !== 'running' || !netns) return [];
  const results = readCniResults(ctx, rec.id);
  const out: { network: string; problem: string }[] = [];
  for (const a of recordedAttachments(ctx, rec)) {
    const result = results[a.network.Name];
    if (!result || !rec.state.networks?.[a.network.Name]) continue;
    await ctx.host.network
      .check(rec.id, netns, a, result)
      .catch((err) => out.push({ network: a.network.Name, problem: (err as Error).message }));
  }
  return out;
}

/** `--add-host` entries. */
function extraHosts(rec: Container): HostEntry[] {
  return (rec.config.HostConfig.ExtraHosts ?? []).map(parseExtraHost);
}

/** The IDs of the networks in a container's recorded attachments. */
export function attachedNetworkIds(rec: Container): Set<string> {
  return new Set(Object.values(rec.state.networks ?? {}).map((e) => e.NetworkID));
}

/**
 * Joins a container to one more network (docker network connect): recorded for its starts, and
 * attached now (the next interface) when it runs in a namespace berth made.
 * @throws FailedPreconditionError for a container on host, none or another's network, or already joined
 */
export async function connectNetwork(
  ctx: ContainerContext,
  ref: string,
  network: NetworkRecord,
  request: EndpointRequest,
): Promise<Container> {
  const found = ctx.find(ref);
  return ctx.locked(found.id, async () => {
    const rec = ctx.find(found.id);
    const joined = joinedNetworks(rec);
    const mode = primaryNetwork(rec.config.HostConfig.NetworkMode);
    if (mode === 'host' || mode === 'none' || mode.startsWith('container:') || mode.startsWith('ns:')) {
      throw new FailedPreconditionError(`container ${rec.name} is on network "${mode}": it cannot join others`);
    }
    if (joined.includes(network.Name))
      throw new FailedPreconditionError(`endpoint with name ${rec.name} already exists in network ${network.Name}`);
    const config = {
      ...rec.config,
      Networks: { ...(rec.config.Networks ?? Object.fromEntries(joined.map((n) => [n, {}]))), [network.Name]: request },
    };
    let state = rec.state;
    if (rec.state.status === 'running' && rec.state.netns) {
      const used = new Set(Object.values(rec.state.networks ?? {}).map((e) => e.IfName));
      let n = 0;
      while (used.has(ifName(n))) n++;
      const { endpoint, result } = await ctx.host.network.attach(rec.id, rec.state.netns, {
        network,
        request,
        ports: [],
        ifName: ifName(n),
      });
      writeCniResults(ctx, rec.id, { ...readCniResults(ctx, rec.id), [network.Name]: result });
      state = { ...rec.state, networks: { ...rec.state.networks, [network.Name]: endpoint } };
      ctx.ns.containers.setState(rec.id, state);
    }
    ctx.ns.containers.setConfig(rec.id, config);
    const done = { ...rec, config, state };
    await syncHosts(ctx, new Set([network.Id]));
    return done;
  });
}

/** Leaves a network (docker network disconnect): detached now when it runs, and no longer joined at its starts. */
export async function disconnectNetwork(ctx: ContainerContext, ref: string, network: NetworkRecord): Promise<Container> {
  const found = ctx.find(ref);
  return ctx.locked(found.id, async () => {
    const rec = ctx.find(found.id);
    const joined = joinedNetworks(rec);
    if (!joined.includes(network.Name))
      throw new FailedPreconditionError(`container ${rec.name} is not connected to network ${network.Name}`);
    const { [network.Name]: _, ...rest } = rec.config.Networks ?? {};
    // NetworkMode stays (docker's too): compose disconnects and connects again to set aliases.
    const config = { ...rec.config, Networks: rest };
    let state = rec.state;
    const ep = rec.state.networks?.[network.Name];
    if (rec.state.status === 'running' && rec.state.netns && ep) {
      const ports = joined[0] === network.Name ? (rec.state.ports ?? []) : [];
      await ctx.host.network.detach(rec.id, rec.state.netns, { network, ifName: ep.IfName, ports });
      const { [network.Name]: ___, ...kept } = readCniResults(ctx, rec.id);
      writeCniResults(ctx, rec.id, kept);
      const { [network.Name]: __, ...networks } = rec.state.networks ?? {};
      state = { ...rec.state, networks };
      ctx.ns.containers.setState(rec.id, state);
    }
    ctx.ns.containers.setConfig(rec.id, config);
    await syncHosts(ctx, new Set([network.Id]));
    return { ...rec, config, state };
  });
}
