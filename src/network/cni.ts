import { spawn } from 'node:child_process';
import { UnavailableError } from '../errdefs/index.js';

// The CNI plugins from Debian's containernetworking-plugins, called as the CNI spec (1.0) says:
// the command and the container in CNI_* variables, the network config on stdin, the result (or
// an error object) as JSON on stdout. A list runs ADD in order, each plugin given the previous
// result; DEL in reverse.

export const cniVersion = '1.0.0';
/** Where Debian installs the plugins; `BERTH_CNI_PATH` overrides. */
export const cniPath = process.env.BERTH_CNI_PATH ?? '/usr/lib/cni';

export interface CniPlugin {
  type: string;
  [key: string]: unknown;
}

export interface CniConfList {
  cniVersion: string;
  name: string;
  plugins: CniPlugin[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { interface?: number; address: string; gateway?: string }[];
  routes?: { dst: string; gw?: string }[];
  dns?: Record<string, unknown>;
}

export interface CniRuntime {
  containerId: string;
  /** The network namespace's path; empty on a DEL once it is gone. */
  netns: string;
  ifName: string;
  /** CNI_ARGS pairs (host-local reads `IP`). */
  args?: Record<string, string>;
  /** Per-plugin runtimeConfig, given to the plugins that declare the capability. */
  capabilityArgs?: Record<string, unknown>;
}

type Command = 'ADD' | 'DEL' | 'CHECK';

/** Runs one plugin. @throws UnavailableError with the plugin's message */
async function execPlugin(command: Command, conf: object & CniPlugin, rt: CniRuntime): Promise<CniResult | undefined> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: rt.containerId,
    CNI_NETNS: rt.netns,
    CNI_IFNAME: rt.ifName,
    CNI_PATH: cniPath,
    // short-lived Go programs started beside runc on every start: one thread and no collector
    GOMAXPROCS: '1',
    GOGC: 'off',
  };
  if (rt.args && Object.keys(rt.args).length) {
    env.CNI_ARGS = Object.entries(rt.args)
      .map(([k, v]) => `${k}=${v}`)
      .join(';');
  }
  const child = spawn(`${cniPath}/${conf.type}`, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  child.stdin.end(JSON.stringify(conf));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', (e) => reject(new UnavailableError(`CNI plugin ${conf.type}: ${e.message} (install containernetworking-plugins)`)));
    child.on('close', resolve);
  });
  const text = Buffer.concat(out).toString('utf8').trim();
  if (code !== 0) {
    let msg = Buffer.concat(err).toString('utf8').trim() || `exit ${code}`;
    try {
      const e = JSON.parse(text) as { msg?: string; details?: string };
      msg = [e.msg, e.details].filter(Boolean).join(': ') || msg;
    } catch {}
    throw new UnavailableError(`CNI ${conf.type} ${command}: ${msg}`);
  }
  return command === 'ADD' && text ? (JSON.parse(text) as CniResult) : undefined;
}

/** The config one plugin of a list sees: the list's name and version, its runtimeConfig, the previous result. */
function pluginConf(list: CniConfList, plugin: CniPlugin, rt: CniRuntime, prevResult?: CniResult): CniPlugin {
  const caps = (plugin.capabilities ?? {}) as Record<string, boolean>;
  const runtimeConfig = Object.fromEntries(Object.entries(rt.capabilityArgs ?? {}).filter(([k]) => caps[k]));
  return {
    ...plugin,
    cniVersion: list.cniVersion,
    name: list.name,
    ...(Object.keys(runtimeConfig).length ? { runtimeConfig } : {}),
    ...(prevResult ? { prevResult } : {}),
  };
}

/** ADD: attaches the container; the last plugin's result. A failure undoes what was added. */
export async function cniAdd(list: CniConfList, rt: CniRuntime): Promise<CniResult> {
  let result: CniResult | undefined;
  try {
    for (const p of list.plugins) result = (await execPlugin('ADD', pluginConf(list, p, rt, result), rt)) ?? result;
  } catch (err) {
    await cniDel(list, rt).catch(() => {});
    throw err;
  }
  return result ?? { cniVersion: list.cniVersion };
}

/** DEL: releases what ADD made (addresses, rules, interfaces); safe to repeat, and with the namespace gone. */
export async function cniDel(list: CniConfList, rt: CniRuntime, prevResult?: CniResult): Promise<void> {
  let first: unknown;
  for (const p of [...list.plugins].reverse()) {
    await execPlugin('DEL', pluginConf(list, p, rt, prevResult), rt).catch((err) => {
      first ??= err;
    });
  }
  if (first) throw first;
}

/** CHECK: the plugins confirm the attachment ADD reported is still in place. @throws UnavailableError */
export async function cniCheck(list: CniConfList, rt: CniRuntime, prevResult: CniResult): Promise<void> {
  for (const p of list.plugins) await execPlugin('CHECK', pluginConf(list, p, rt, prevResult), rt);
}
