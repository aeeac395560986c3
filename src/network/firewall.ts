import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { withFileLock } from '../sys/index.js';
import type { NetworkRecord } from './types.js';

const run = promisify(execFile);

// A network's iptables rules, made once per boot for the whole network (per-container rules are
// the CNI plugins' business: portmap's DNAT chains). Forwarding is accepted per bridge, so a
// FORWARD policy of DROP (dockerd sets one) does not cut containers off; traffic from one berth
// bridge to another is dropped (docker's isolation); an internal network forwards nothing out or
// in; the others masquerade what leaves the subnet.

const forward = 'BERTH-FORWARD';
const isolation = 'BERTH-ISOLATION';
const postrouting = 'BERTH-POSTROUTING';
/** Every bridge berth makes is named berth…: the isolation chain drops what heads for any of them. */
const bridgeWildcard = 'berth+';

interface Rule {
  table: 'filter' | 'nat';
  chain: string;
  spec: string[];
  /** At the top of the chain (drops and isolation precede the accepts). */
  first?: boolean;
}

function networkRules(net: NetworkRecord): Rule[] {
  const b = net.Bridge as string;
  if (net.Internal) {
    return [
      { table: 'filter', chain: forward, spec: ['-i', b, '!', '-o', b, '-j', 'DROP'], first: true },
      { table: 'filter', chain: forward, spec: ['-o', b, '!', '-i', b, '-j', 'DROP'], first: true },
      { table: 'filter', chain: forward, spec: ['-i', b, '-o', b, '-j', 'ACCEPT'] },
    ];
  }
  return [
    { table: 'filter', chain: forward, spec: ['-i', b, '!', '-o', b, '-j', isolation], first: true },
    { table: 'filter', chain: forward, spec: ['-i', b, '-j', 'ACCEPT'] },
    { table: 'filter', chain: forward, spec: ['-o', b, '-j', 'ACCEPT'] },
    { table: 'nat', chain: postrouting, spec: ['-s', net.Subnet as string, '!', '-o', b, '-j', 'MASQUERADE'] },
  ];
}

/** The chains and the jumps into them, shared by every network. */
const baseRules: Rule[] = [
  { table: 'filter', chain: 'FORWARD', spec: ['-j', forward], first: true },
  { table: 'filter', chain: isolation, spec: ['-o', bridgeWildcard, '-j', 'DROP'] },
  { table: 'nat', chain: 'POSTROUTING', spec: ['-j', postrouting] },
];

async function iptables(table: string, args: string[]): Promise<void> {
  await run('iptables', ['-w', '5', '-t', table, ...args]);
}

async function ensureChain(table: string, chain: string): Promise<void> {
  await iptables(table, ['-N', chain]).catch((err) => {
    if (!/already exists/i.test(String(err.stderr ?? err.message))) throw err;
  });
}

async function ensureRule(r: Rule): Promise<void> {
  try {
    await iptables(r.table, ['-C', r.chain, ...r.spec]);
  } catch {
    await iptables(r.table, r.first ? ['-I', r.chain, '1', ...r.spec] : ['-A', r.chain, ...r.spec]);
  }
}

/**
 * Makes the network's rules unless this boot already did: a marker under the run directory
 * (tmpfs, gone at a reboot, as the rules are) says they are in place.
 */
export async function ensureNetworkRules(runDir: string, net: NetworkRecord): Promise<void> {
  const dir = join(runDir, 'networks');
  const marker = join(dir, `${net.Id}.rules`);
  if (existsSync(marker)) return;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await withFileLock(join(dir, 'lock'), async () => {
    if (existsSync(marker)) return;
    await ensureChain('filter', forward);
    await ensureChain('filter', isolation);
    await ensureChain('nat', postrouting);
    for (const r of [...baseRules, ...networkRules(net)]) await ensureRule(r);
    raiseNeighbourLimits();
    writeFileSync(marker, '');
  });
}

/** Takes a removed network's rules out (those that are there). */
export async function removeNetworkRules(runDir: string, net: NetworkRecord): Promise<void> {
  const dir = join(runDir, 'networks');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await withFileLock(join(dir, 'lock'), async () => {
    for (const r of networkRules(net)) {
      await iptables(r.table, ['-D', r.chain, ...r.spec]).catch(() => {});
    }
    rmSync(join(dir, `${net.Id}.rules`), { force: true });
  });
}

/**
 * The kernel's neighbour (ARP) table is one for every network namespace, and by default holds at
 * most 1,024 entries: 50 containers on one network that all talk to each other need 2,450, and
 * past the ceiling the kernel drops packets ("neighbor table overflow"). Raised, never lowered, to
 * the limits Kubernetes nodes are commonly given.
 */
function raiseNeighbourLimits(): void {
  const wanted = { gc_thresh1: 1024, gc_thresh2: 4096, gc_thresh3: 8192 };
  for (const [name, value] of Object.entries(wanted)) {
    const file = `/proc/sys/net/ipv4/neigh/default/${name}`;
    try {
      if (Number(readFileSync(file, 'utf8')) < value) writeFileSync(file, String(value));
    } catch {} // not ours to change (a container without /proc/sys write): left as it is
  }
}

/** Whether this boot's marker says the network's rules were made. */
export function networkRulesMarked(runDir: string, net: NetworkRecord): boolean {
  return existsSync(join(runDir, 'networks', `${net.Id}.rules`));
}

/** Forgets the marker, so the next use makes the rules again (fsck's repair after a flush). */
export function forgetNetworkRules(runDir: string, net: NetworkRecord): void {
  rmSync(join(runDir, 'networks', `${net.Id}.rules`), { force: true });
}

/** Whether the network's rules are all in place (fsck's check after a reboot or a flush). */
export async function networkRulesPresent(net: NetworkRecord): Promise<boolean> {
  for (const r of networkRules(net)) {
    try {
      await iptables(r.table, ['-C', r.chain, ...r.spec]);
    } catch {
      return false;
    }
  }
  return true;
}
