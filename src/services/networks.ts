// docker's networks over berth's: the inspect document, the listing filters, removal refused while
// containers run on a network, prune; and a container's NetworkSettings and port list.
import type { Container } from '../containers/index.js';
import { FailedPreconditionError, InvalidArgumentError } from '../errdefs/index.js';
import { type CreateNetworkOpts, isPredefined, type NetworkRecord, parsePortKey } from '../network/index.js';
import type { Berth } from './berth.js';
import { labelMatches, pruneMatches, splitFilter } from './filters.js';

/** The running containers of every namespace attached to a network. */
function attachedContainers(b: Berth, net: NetworkRecord): Container[] {
  const out: Container[] = [];
  for (const ns of b.metadata.namespaces.list()) {
    for (const c of b.namespace(ns.name).containers.list<Container['config']>()) {
      if (c.state.status === 'running' && Object.values(c.state.networks ?? {}).some((e) => e.NetworkID === net.Id)) out.push(c);
    }
  }
  return out;
}

/** docker's network inspect document. */
export function networkView(b: Berth, net: NetworkRecord): Record<string, unknown> {
  const containers: Record<string, unknown> = {};
  for (const c of attachedContainers(b, net)) {
    const e = Object.values(c.state.networks ?? {}).find((x) => x.NetworkID === net.Id);
    if (!e) continue;
    containers[c.id] = {
      Name: c.name,
      EndpointID: e.EndpointID,
      MacAddress: e.MacAddress,
      IPv4Address: `${e.IPAddress}/${e.IPPrefixLen}`,
      IPv6Address: '',
    };
  }
  return {
    Name: net.Name,
    Id: net.Id,
    Created: net.Created,
    Scope: 'local',
    Driver: net.Driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: net.Subnet ? [{ Subnet: net.Subnet, Gateway: net.Gateway }] : [] },
    Internal: net.Internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: net.Options,
    Labels: net.Labels,
  };
}

/** docker's network filters: name (substring), id (prefix), driver, label, type (builtin/custom). */
export function networkMatches(net: NetworkRecord, filter: string): boolean {
  const [k, v] = splitFilter(filter);
  switch (k) {
    case 'name':
      return net.Name.includes(v);
    case 'id':
      return net.Id.startsWith(v);
    case 'driver':
      return net.Driver === v;
    case 'label':
      return labelMatches(net.Labels, v);
    case 'type':
      return v === (isPredefined(net) ? 'builtin' : 'custom');
    case 'scope':
      return v === 'local';
    default:
      throw new InvalidArgumentError(`invalid filter "${k}" (want name, id, driver, label, type or scope)`);
  }
}

export function listNetworks(b: Berth, filters: string[] = []): NetworkRecord[] {
  return b.network.store.list().filter((n) => filters.every((f) => networkMatches(n, f)));
}

export function createNetwork(b: Berth, name: string, opts: CreateNetworkOpts = {}): NetworkRecord {
  return b.network.store.create(name, opts);
}

/** Removes a user network. @throws FailedPreconditionError while containers run on it, or for a built-in one */
export async function removeNetwork(b: Berth, ref: string): Promise<NetworkRecord> {
  const net = b.network.store.find(ref);
  if (isPredefined(net)) throw new FailedPreconditionError(`${net.Name} is a pre-defined network and cannot be removed`);
  const users = attachedContainers(b, net);
  if (users.length) {
    throw new FailedPreconditionError(
      `error while removing network: network ${net.Name} id ${net.Id} has active endpoints (${users.map((c) => c.name).join(', ')})`,
    );
  }
  await b.network.remove(net);
  return net;
}

/** Removes the user networks no running container is on (`until=`, `label=` filters). */
export async function pruneNetworks(b: Berth, filters: string[] = []): Promise<string[]> {
  const out: string[] = [];
  for (const net of b.network.store.list()) {
    if (isPredefined(net) || attachedContainers(b, net).length) continue;
    if (!filters.every((f) => pruneMatches({ created: Date.parse(net.Created), labels: net.Labels }, f))) continue;
    await b.network.remove(net);
    out.push(net.Name);
  }
  return out;
}

/** docker's NetworkSettings.Ports: published ports with their host side, exposed ones as null. */
export function portSettings(c: Container): Record<string, { HostIp: string; HostPort: string }[] | null> {
  const out: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  for (const key of Object.keys(c.config.Config.ExposedPorts ?? {})) out[key] = null;
  if (c.state.status !== 'running') return out;
  for (const p of c.state.ports ?? []) {
    const key = `${p.containerPort}/${p.protocol}`;
    out[key] = [...(out[key] ?? []), { HostIp: p.hostIP || '0.0.0.0', HostPort: String(p.hostPort) }];
  }
  return out;
}

/** The Ports of docker's container list: one per published binding, exposed ports without a host side. */
export function portList(c: Container): { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] {
  const out: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] = [];
  for (const [key, list] of Object.entries(portSettings(c))) {
    const { port, protocol } = parsePortKey(key);
    if (!list) out.push({ PrivatePort: port, Type: protocol });
    else for (const b of list) out.push({ IP: b.HostIp, PrivatePort: port, PublicPort: Number(b.HostPort), Type: protocol });
  }
  return out;
}

/** The PORTS column of docker ps: `0.0.0.0:8080->80/tcp, 443/tcp`. */
export function portsText(c: Container): string {
  return portList(c)
    .map((p) => (p.PublicPort ? `${p.IP}:${p.PublicPort}->${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`))
    .join(', ');
}

/** docker's NetworkSettings of a container: its attachments (empty addresses once it stopped) and ports. */
export function networkSettings(b: Berth, c: Container): Record<string, unknown> {
  const running = c.state.status === 'running';
  const networks: Record<string, unknown> = {};
  const mode = c.config.HostConfig.NetworkMode === 'default' ? 'bridge' : c.config.HostConfig.NetworkMode;
  const names = c.config.Networks ? Object.keys(c.config.Networks) : [mode];
  for (const name of names) {
    const e = running ? c.state.networks?.[name] : undefined;
    const req = c.config.Networks?.[name] ?? {};
    let id = e?.NetworkID ?? '';
    if (!id) {
      try {
        id = b.network.store.find(name).Id;
      } catch {}
    }
    networks[name] = {
      IPAMConfig: req.IPv4Address ? { IPv4Address: req.IPv4Address } : null,
      Links: null,
      Aliases: req.Aliases ?? null,
      NetworkID: id,
      EndpointID: e?.EndpointID ?? '',
      Gateway: e?.Gateway ?? '',
      IPAddress: e?.IPAddress ?? '',
      IPPrefixLen: e?.IPPrefixLen ?? 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      MacAddress: e?.MacAddress ?? '',
      DriverOpts: null,
    };
  }
  const bridge = running ? c.state.networks?.bridge : undefined;
  return {
    Bridge: '',
    SandboxID: running && c.state.netns ? c.id : '',
    SandboxKey: running ? (c.state.netns ?? '') : '',
    HairpinMode: false,
    LinkLocalIPv6Address: '',
    LinkLocalIPv6PrefixLen: 0,
    Ports: portSettings(c),
    EndpointID: bridge?.EndpointID ?? '',
    Gateway: bridge?.Gateway ?? '',
    IPAddress: bridge?.IPAddress ?? '',
    IPPrefixLen: bridge?.IPPrefixLen ?? 0,
    MacAddress: bridge?.MacAddress ?? '',
    Networks: networks,
  };
}
