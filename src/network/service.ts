import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type CniConfList, type CniResult, cniAdd, cniCheck, cniDel, cniPath, cniVersion } from './cni.js';
import { ensureNetworkRules, removeNetworkRules } from './firewall.js';
import { NetworkStore } from './store.js';
import type { Endpoint, EndpointRequest, NetworkRecord, PortBinding } from './types.js';

const run = promisify(execFile);

/** host-local's default data directory: one directory of leases per CNI network name. */
const leaseDir = '/var/lib/cni/networks';

/** The interface name inside the container for its n-th network. */
export const ifName = (n: number) => `eth${n}`;

/** Whether this process can make bridge networks: root, and the CNI plugins installed. */
export function networkingAvailable(): boolean {
  return process.getuid?.() === 0 && existsSync(`${cniPath}/bridge`) && existsSync(`${cniPath}/host-local`);
}

/** The CNI list for a bridge network: bridge with host-local addresses, and portmap when ports are published. */
export function conflist(net: NetworkRecord, withPorts: boolean): CniConfList {
  return {
    cniVersion,
    // The list's name keys host-local's leases (/var/lib/cni/networks/<name>): the bridge's, so
    // roots sharing the default bridge share its leases too.
    name: net.Bridge as string,
    plugins: [
      {
        type: 'bridge',
        bridge: net.Bridge,
        isGateway: !net.Internal,
        ipMasq: false, // the network's own rule masquerades (see firewall.ts): no per-container chains
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: net.Subnet, gateway: net.Gateway }]],
          routes: net.Internal ? [] : [{ dst: '0.0.0.0/0' }],
        },
      },
      ...(withPorts ? [{ type: 'portmap', capabilities: { portMappings: true }, snat: true }] : []),
    ],
  };
}

export interface Attachment {
  network: NetworkRecord;
  request: EndpointRequest;
  /** Published ports go with the container's first network. */
  ports: PortBinding[];
  ifName: string;
}

function capabilityArgs(ports: PortBinding[]) {
  return ports.length ? { portMappings: ports } : {};
}

/** docker's endpoint view of a CNI result. */
function endpoint(a: Attachment, containerId: string, result: CniResult): Endpoint {
  const ip = result.ips?.[0];
  const [address = '', prefix = '0'] = (ip?.address ?? '').split('/');
  const mac = result.interfaces?.find((i) => i.name === a.ifName && i.sandbox)?.mac ?? '';
  return {
    NetworkID: a.network.Id,
    EndpointID: createHash('sha256').update(`${a.network.Id}/${containerId}`).digest('hex'),
    IPAddress: address,
    IPPrefixLen: Number(prefix),
    Gateway: ip?.gateway ?? '',
    MacAddress: mac,
    Aliases: a.request.Aliases ?? [],
    IfName: a.ifName,
  };
}

/**
 * The networks of one root and the attachment of containers' namespaces to them, through the CNI
 * plugins. A container's attachments are undone by DEL with the same config, whether or not its
 * namespace still exists, so a crash at any point is finished by the next DEL.
 */
export class NetworkService {
  readonly store: NetworkStore;
  readonly runDir: string;

  constructor(root: string, runDir: string, opts: { bridgeSubnet?: string } = {}) {
    this.store = new NetworkStore(root, opts);
    this.runDir = runDir;
  }

  /** ADD: attaches the namespace to one network (making the network's rules first, once per boot). */
  async attach(containerId: string, netns: string, a: Attachment): Promise<{ endpoint: Endpoint; result: CniResult }> {
    await ensureNetworkRules(this.runDir, a.network);
    const result = await cniAdd(conflist(a.network, a.ports.length > 0), {
      containerId,
      netns,
      ifName: a.ifName,
      // host-local reads IP; IgnoreUnknown keeps bridge from refusing a key it does not know
      ...(a.request.IPv4Address ? { args: { IgnoreUnknown: '1', IP: a.request.IPv4Address } } : {}),
      capabilityArgs: capabilityArgs(a.ports),
    });
    return { endpoint: endpoint(a, containerId, result), result };
  }

  /** DEL: releases the address, the port rules and (with the namespace) the interface. portmap's DEL needs the ports. */
  async detach(containerId: string, netns: string, a: Omit<Attachment, 'request'>): Promise<void> {
    await cniDel(conflist(a.network, a.ports.length > 0), {
      containerId,
      netns: existsSync(netns) ? netns : '',
      ifName: a.ifName,
      capabilityArgs: capabilityArgs(a.ports),
    });
  }

  /**
   * CHECK: the interface and address ADD reported are still there. @throws UnavailableError
   * The bridge plugin only: portmap 1.1.1's CHECK looks for IPv6 rules it never made for an IPv4
   * address, and fails (containernetworking/plugins#819).
   */
  async check(containerId: string, netns: string, a: Omit<Attachment, 'request'>, result: CniResult): Promise<void> {
    await cniCheck(conflist(a.network, false), { containerId, netns, ifName: a.ifName }, result);
  }

  /** The leases host-local holds on a network: address, container ID, interface. */
  leases(net: NetworkRecord): { ip: string; containerId: string; ifName: string }[] {
    const dir = join(leaseDir, net.Bridge as string);
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => /^[\d.]+$/.test(n));
    } catch {
      return [];
    }
    return names.flatMap((ip) => {
      try {
        const [containerId = '', ifName = 'eth0'] = readFileSync(join(dir, ip), 'utf8').split(/\r?\n/);
        return [{ ip, containerId: containerId.trim(), ifName: ifName.trim() }];
      } catch {
        return [];
      }
    });
  }

  /** The containers portmap holds DNAT chains for on a network, with the host ports (from the rules' comments). */
  async portChains(net: NetworkRecord): Promise<Map<string, PortBinding[]>> {
    const { stdout } = await run('iptables', ['-w', '5', '-t', 'nat', '-S', 'CNI-HOSTPORT-DNAT']).catch(() => ({ stdout: '' }));
    const out = new Map<string, PortBinding[]>();
    for (const line of stdout.split('\n')) {
      const m = /name: \\"([^"\\]+)\\" id: \\"([^"\\]+)\\"/.exec(line);
      if (!m || m[1] !== net.Bridge) continue;
      const protocol = / -p udp /.test(line) ? 'udp' : 'tcp';
      const ports = (/--dports (\S+)/.exec(line)?.[1] ?? '').split(',').filter(Boolean);
      const id = m[2] as string;
      out.set(id, [
        ...(out.get(id) ?? []),
        ...ports.map((p) => ({ hostIP: '', hostPort: Number(p), containerPort: Number(p), protocol }) as PortBinding),
      ]);
    }
    return out;
  }

  /** Removes a network's record and rules (the caller made sure no container is attached). */
  async remove(net: NetworkRecord): Promise<void> {
    this.store.remove(net);
    if (net.Driver !== 'bridge') return;
    await removeNetworkRules(this.runDir, net);
    await run('ip', ['link', 'delete', net.Bridge as string]).catch(() => {}); // never made, or gone
  }
}
