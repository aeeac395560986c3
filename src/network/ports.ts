import { createServer } from 'node:net';
import { InvalidArgumentError } from '../errdefs/index.js';
import type { PortBinding } from './types.js';

// docker's port publishing: `-p [ip:][hostPort:]containerPort[/proto]`, PortBindings in the
// Engine API's shape (`{"80/tcp": [{HostIp, HostPort}]}`), and random host ports from docker's
// range for the ones left open.

/** docker's `PortBindings`. */
export type PortMap = Record<string, { HostIp?: string; HostPort?: string }[] | null>;

function port(s: string, what: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1 || n > 65535) throw new InvalidArgumentError(`invalid ${what} "${s}" in port specification`);
  return n;
}

/** One `-p` value as PortBindings entries (a range `8000-8001:80-81` gives several). @throws InvalidArgumentError */
export function parsePublish(spec: string): PortMap {
  const [addr, proto = 'tcp'] = spec.split('/') as [string, string?];
  if (proto !== 'tcp' && proto !== 'udp') throw new InvalidArgumentError(`invalid protocol "${proto}" in "${spec}" (want tcp or udp)`);
  const parts = addr.split(':');
  if (parts.length > 3) throw new InvalidArgumentError(`invalid port specification "${spec}"`);
  const containerPart = parts.at(-1) as string;
  const hostPart = parts.length >= 2 ? (parts.at(-2) as string) : '';
  const hostIp = parts.length === 3 ? (parts[0] as string) : '';
  const range = (s: string, what: string): number[] => {
    const [a, b] = s.split('-');
    const lo = port(a as string, what);
    const hi = b === undefined ? lo : port(b, what);
    if (hi < lo) throw new InvalidArgumentError(`invalid ${what} range "${s}"`);
    return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  };
  const cports = range(containerPart, 'container port');
  const hports = hostPart === '' ? cports.map(() => 0) : range(hostPart, 'host port');
  if (hports.length !== cports.length) throw new InvalidArgumentError(`port ranges differ in length in "${spec}"`);
  const out: PortMap = {};
  cports.forEach((c, i) => {
    const key = `${c}/${proto}`;
    out[key] = [...(out[key] ?? []), { HostIp: hostIp, HostPort: hports[i] ? String(hports[i]) : '' }];
  });
  return out;
}

/** Merges PortBindings maps (several `-p` for one container port publish it several times). */
export function mergePorts(...maps: PortMap[]): PortMap {
  const out: PortMap = {};
  for (const m of maps) for (const [k, v] of Object.entries(m)) out[k] = [...(out[k] ?? []), ...(v ?? [])];
  return out;
}

/** `80/tcp` → [80, 'tcp']. @throws InvalidArgumentError */
export function parsePortKey(key: string): { port: number; protocol: 'tcp' | 'udp' } {
  const [p, proto = 'tcp'] = key.split('/');
  if (proto !== 'tcp' && proto !== 'udp') throw new InvalidArgumentError(`invalid port "${key}"`);
  return { port: port(p as string, 'port'), protocol: proto };
}

/** The bindings as the CNI portmap plugin takes them, random host ports still 0. */
export function portBindings(map: PortMap | undefined): PortBinding[] {
  const out: PortBinding[] = [];
  for (const [key, list] of Object.entries(map ?? {})) {
    const { port: containerPort, protocol } = parsePortKey(key);
    for (const b of list ?? []) {
      out.push({ hostIP: b.HostIp ?? '', hostPort: b.HostPort ? port(b.HostPort, 'host port') : 0, containerPort, protocol });
    }
  }
  return out;
}

/** docker's ephemeral range for published ports. */
const ephemeral = { lo: 32768, hi: 60999 };

/** Whether nothing listens on the port here (DNAT'd ports are not bound: `taken` lists those). */
function bindable(p: number, protocol: 'tcp' | 'udp'): Promise<boolean> {
  if (protocol === 'udp') return Promise.resolve(true);
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port: p, host: '0.0.0.0', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** Gives each binding without a host port a free one from docker's range, avoiding `taken`. */
export async function assignHostPorts(bindings: PortBinding[], taken: Set<string>): Promise<PortBinding[]> {
  const out: PortBinding[] = [];
  for (const b of bindings) {
    if (b.hostPort !== 0) {
      out.push(b);
      continue;
    }
    for (let tries = 0; ; tries++) {
      if (tries > 200) throw new InvalidArgumentError('no free host port in 32768-60999');
      const p = ephemeral.lo + Math.floor(Math.random() * (ephemeral.hi - ephemeral.lo + 1));
      if (taken.has(`${p}/${b.protocol}`) || !(await bindable(p, b.protocol))) continue;
      taken.add(`${p}/${b.protocol}`);
      out.push({ ...b, hostPort: p });
      break;
    }
  }
  return out;
}
