import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FailedPreconditionError } from '../errdefs/index.js';
import { type CniConfList, type CniResult, cniAdd, cniDel, cniPath, createNetns, deleteNetns, netnsPath } from '../network/index.js';
import type { PodSandboxConfig } from './types.js';

// A pod's network the way kubelet's runtimes make it: a namespace of its own, attached by the
// first CNI config (by file name) in the config directory, `eth0` inside. The config is the
// operator's (kubelet's network plugin writes it); berth's own networks are not used.

/** kubelet's and containerd's default. */
export const defaultCniConfDir = '/etc/cni/net.d';

/**
 * The network config a pod gets: the first `.conflist`, `.conf` or `.json` file by name (a
 * single-plugin `.conf` becomes a list of one). Undefined when there is none.
 * @throws FailedPreconditionError for a file that is not a CNI config
 */
export function loadPodNetwork(dir: string): { file: string; list: CniConfList } | undefined {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => /\.(conflist|conf|json)$/.test(n))
      .sort();
  } catch {
    return undefined;
  }
  for (const name of names) {
    const file = join(dir, name);
    let parsed: Partial<CniConfList> & { type?: string };
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new FailedPreconditionError(`CNI config "${file}": ${(err as Error).message}`);
    }
    if (Array.isArray(parsed.plugins) && parsed.plugins.length > 0) return { file, list: parsed as CniConfList };
    if (typeof parsed.type === 'string') {
      const { cniVersion = '1.0.0', name: netName = 'pod', ...plugin } = parsed as Record<string, unknown>;
      return { file, list: { cniVersion: String(cniVersion), name: String(netName), plugins: [plugin as CniConfList['plugins'][0]] } };
    }
  }
  return undefined;
}

/** Whether pods can get a network: a config, and every plugin it names installed. The reason when not. */
export function podNetworkStatus(dir: string): { ready: boolean; reason?: string; message?: string } {
  try {
    const net = loadPodNetwork(dir);
    if (!net) return { ready: false, reason: 'NetworkPluginNotReady', message: `no network config found in ${dir}` };
    const missing = net.list.plugins.map((p) => p.type).filter((t) => !existsSync(join(cniPath, t)));
    if (missing.length)
      return { ready: false, reason: 'NetworkPluginNotReady', message: `CNI plugins missing from ${cniPath}: ${missing.join(', ')}` };
    return { ready: true };
  } catch (err) {
    return { ready: false, reason: 'NetworkPluginNotReady', message: (err as Error).message };
  }
}

/** The netns key of a pod: its namespace is /run/netns/berth-pod-<id>, apart from any container's. */
const netnsKey = (sandboxId: string) => `pod-${sandboxId}`;

/** Where a pod's network namespace is bound. */
export const podNetnsPath = (sandboxId: string) => netnsPath(netnsKey(sandboxId));

function runtimeOf(sandboxId: string, netns: string, config: PodSandboxConfig) {
  const m = config.metadata ?? {};
  const ports = (config.port_mappings ?? [])
    .filter((p) => (p.host_port ?? 0) > 0)
    .map((p) => ({
      hostPort: p.host_port,
      containerPort: p.container_port,
      protocol: (p.protocol ?? 'TCP').toLowerCase(),
      hostIP: p.host_ip ?? '',
    }));
  return {
    containerId: sandboxId,
    netns,
    ifName: 'eth0',
    args: {
      IgnoreUnknown: '1',
      K8S_POD_NAMESPACE: m.namespace ?? '',
      K8S_POD_NAME: m.name ?? '',
      K8S_POD_INFRA_CONTAINER_ID: sandboxId,
      K8S_POD_UID: m.uid ?? '',
    },
    capabilityArgs: ports.length ? { portMappings: ports } : {},
  };
}

/** Makes the pod's namespace and attaches it (ADD); its address. On a failure nothing is left. */
export async function attachPod(
  dir: string,
  sandboxId: string,
  config: PodSandboxConfig,
): Promise<{ netns: string; ip: string; result: CniResult }> {
  const net = loadPodNetwork(dir);
  if (!net) throw new FailedPreconditionError(`no CNI network config in ${dir}: pods need one unless they use the host's network`);
  const netns = await createNetns(netnsKey(sandboxId));
  try {
    const result = await cniAdd(net.list, runtimeOf(sandboxId, netns, config));
    const ip = (result.ips?.[0]?.address ?? '').split('/')[0] ?? '';
    return { netns, ip, result };
  } catch (err) {
    await deleteNetns(netnsKey(sandboxId));
    throw err;
  }
}

/** DEL and the namespace's removal: releases the address, the port rules and the veth. Safe to repeat. */
export async function detachPod(dir: string, sandboxId: string, config: PodSandboxConfig): Promise<void> {
  const netns = podNetnsPath(sandboxId);
  const net = loadPodNetwork(dir);
  try {
    if (net) await cniDel(net.list, runtimeOf(sandboxId, existsSync(netns) ? netns : '', config));
  } finally {
    await deleteNetns(netnsKey(sandboxId));
  }
}
