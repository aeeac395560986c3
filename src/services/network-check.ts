// What crashes leave of networking and volumes, found (fsck) and released (fsck --repair, gc):
// namespaces and CNI attachments (addresses, port rules) of containers that do not run, a
// network's rules gone while this boot's marker says they were made, volume directories
// without a record.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Container } from '../containers/index.js';
import type { Finding, FsckOpts } from '../gc/index.js';
import {
  deleteNetns,
  ensureNetworkRules,
  forgetNetworkRules,
  listNetns,
  netnsAbandoned,
  netnsPath,
  networkRulesMarked,
  networkRulesPresent,
  type PortBinding,
} from '../network/index.js';
import type { Berth } from './berth.js';

/** Finds the leftovers; with `repair`, releases each (CNI DEL, the namespace deleted, the record cleared). */
export async function networkLeftovers(b: Berth, opts: { repair?: boolean } = {}): Promise<Finding[]> {
  const findings: Finding[] = [];
  const report = async (f: Finding, how: string, apply: () => Promise<unknown>) => {
    if (opts.repair) {
      await apply();
      f.repaired = how;
    }
    findings.push(f);
  };
  // Every container, its state brought up to date (a dead monitor's container is released here).
  const byId = new Map<string, { ns: string; c: Container }>();
  for (const ns of b.metadata.namespaces.list()) {
    const containers = b.containers(ns.name);
    for (const c of await containers.list()) {
      byId.set(c.id, { ns: ns.name, c });
      for (const { network, problem } of await containers.checkNetworks(c)) {
        findings.push({
          kind: 'network-broken',
          severity: 'error',
          subject: `${c.name}/${network}`,
          message: `CNI CHECK failed: ${problem} (restart the container to attach it again)`,
        });
      }
      if (c.state.status === 'running' || !(c.state.netns || existsSync(netnsPath(c.id)))) continue;
      await report(
        {
          kind: 'network-leftover',
          severity: 'orphan',
          subject: c.id,
          message: `container ${c.name} is not running but keeps its network namespace`,
        },
        'released its networks and deleted the namespace',
        async () => {
          await containers.releaseNetworks({ ...c, state: { ...c.state, netns: netnsPath(c.id) } });
          const { netns: _, ...state } = c.state;
          b.namespace(ns.name).containers.setState(c.id, state);
        },
      );
    }
  }
  // Namespaces of containers this root does not know (removed while a start was under way),
  // which no process is in any more.
  for (const id of listNetns()) {
    if (byId.has(id) || !netnsAbandoned(id)) continue;
    await report(
      { kind: 'network-leftover', severity: 'orphan', subject: id, message: 'a network namespace no container owns and no process is in' },
      'deleted the namespace',
      () => deleteNetns(id),
    );
  }
  const running = (id: string) => byId.get(id)?.c.state.status === 'running';
  // A container of another root (or one this root forgot) still runs while its namespace exists.
  const gone = (id: string) => !running(id) && (byId.has(id) || !existsSync(netnsPath(id)));
  for (const net of b.network.store.list()) {
    if (net.Driver !== 'bridge') continue;
    const held = new Map<string, { ifName: string; ports: PortBinding[] }>();
    for (const l of b.network.leases(net)) if (gone(l.containerId)) held.set(l.containerId, { ifName: l.ifName, ports: [] });
    for (const [id, ports] of await b.network.portChains(net)) {
      if (gone(id)) held.set(id, { ifName: held.get(id)?.ifName ?? 'eth0', ports });
    }
    for (const [id, { ifName, ports }] of held) {
      await report(
        {
          kind: 'network-leftover',
          severity: 'orphan',
          subject: `${net.Name}/${id.slice(0, 12)}`,
          message: `an address or port rules on network ${net.Name} held for a container that does not run`,
        },
        'released (CNI DEL)',
        async () => {
          await b.network.detach(id, '', { network: net, ifName, ports });
          await deleteNetns(id);
        },
      );
    }
    if (networkRulesMarked(b.runDir, net) && !(await networkRulesPresent(net))) {
      await report(
        {
          kind: 'network-rules-missing',
          severity: 'error',
          subject: net.Name,
          message: `the iptables rules of network ${net.Name} are missing (flushed?)`,
        },
        'made the rules again',
        async () => {
          forgetNetworkRules(b.runDir, net);
          await ensureNetworkRules(b.runDir, net);
        },
      );
    }
  }
  for (const name of b.volumes.orphans()) {
    await report(
      {
        kind: 'orphan-volume',
        severity: 'orphan',
        subject: name,
        message: 'a volume directory without its record (a crash in create or remove)',
      },
      'removed the directory',
      () => rm(join(b.volumes.dir, name), { recursive: true, force: true }),
    );
  }
  return findings;
}

/** fsck of the whole root: the store (Berth.fsck), then networks and volumes. */
export async function checkRoot(b: Berth, opts: FsckOpts = {}): Promise<Finding[]> {
  return [...(await b.fsck(opts)), ...(await networkLeftovers(b, { repair: opts.repair ?? false }))];
}
