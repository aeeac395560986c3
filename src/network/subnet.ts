import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../errdefs/index.js';

// IPv4 subnets: parsing, overlap, and the routes the host already has.

export interface Subnet {
  /** The network address as a number. */
  base: number;
  prefix: number;
}

export function parseIPv4(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) < 256)) {
    throw new InvalidArgumentError(`invalid IPv4 address "${s}"`);
  }
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function formatIPv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** `10.89.0.0/24`. @throws InvalidArgumentError */
export function parseSubnet(cidr: string): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  const prefix = Number(m?.[2]);
  if (!m || prefix > 30 || prefix < 8)
    throw new InvalidArgumentError(`invalid subnet "${cidr}" (want an IPv4 CIDR such as 10.89.0.0/24, /8 to /30)`);
  const size = 2 ** (32 - prefix);
  return { base: Math.floor(parseIPv4(m[1] as string) / size) * size, prefix };
}

export function formatSubnet(s: Subnet): string {
  return `${formatIPv4(s.base)}/${s.prefix}`;
}

export function contains(s: Subnet, ip: number): boolean {
  return ip >= s.base && ip < s.base + 2 ** (32 - s.prefix);
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  return contains(a, b.base) || contains(b, a.base);
}

/** The first usable address, docker's and CNI's default gateway. */
export function firstHost(s: Subnet): string {
  return formatIPv4(s.base + 1);
}

/** The destinations the host routes to other than through the default route, from /proc/net/route. */
export function hostRoutes(): Subnet[] {
  let text: string;
  try {
    text = readFileSync('/proc/net/route', 'utf8');
  } catch {
    return [];
  }
  const le = (hex: string) => Buffer.from(hex, 'hex').readUInt32LE(0);
  const out: Subnet[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const mask = le(f[7] as string);
    if (mask === 0) continue;
    out.push({ base: le(f[1] as string), prefix: mask.toString(2).replace(/0/g, '').length });
  }
  return out;
}
