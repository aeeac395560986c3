import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { flock } from '../sys/index.js';
import { contains, firstHost, formatSubnet, hostRoutes, overlaps, parseIPv4, parseSubnet, type Subnet } from './subnet.js';
import type { NetworkRecord } from './types.js';

// The networks of a root, one JSON file each under `<root>/networks` (docker's model: global to
// the root, not per namespace). `host` and `none` are built in; the default `bridge` is written
// the first time it is needed, with the subnet berth.json names.

export const defaultBridge = { name: 'bridge', device: 'berth0', subnet: '10.88.0.0/16' } as const;
/** Where subnets for new networks come from: 10.89.0.0/24, 10.89.1.0/24, … (podman's pool). */
const pool = { base: parseIPv4('10.89.0.0'), count: 256, prefix: 24 };

const builtin = (name: 'host' | 'none'): NetworkRecord => ({
  Id: createHash('sha256').update(`berth-network-${name}`).digest('hex'),
  Name: name,
  Driver: name === 'host' ? 'host' : 'null',
  Created: new Date(0).toISOString(),
  Internal: false,
  Labels: {},
  Options: {},
});
/** `host` and `none`, made once. */
let builtins: NetworkRecord[] | undefined;

export interface CreateNetworkOpts {
  driver?: string;
  subnet?: string;
  gateway?: string;
  internal?: boolean;
  labels?: Record<string, string>;
  options?: Record<string, string>;
}

const validName = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export class NetworkStore {
  readonly dir: string;
  readonly #bridgeSubnet: string;

  constructor(root: string, opts: { bridgeSubnet?: string } = {}) {
    this.dir = join(root, 'networks');
    this.#bridgeSubnet = opts.bridgeSubnet ?? defaultBridge.subnet;
  }

  /** Every network, the built-in ones first. */
  list(): NetworkRecord[] {
    builtins ??= [builtin('host'), builtin('none')];
    const stored = this.#stored();
    const bridge = stored.find((n) => n.Name === defaultBridge.name) ?? this.#defaultBridge();
    return [bridge, ...builtins, ...stored.filter((n) => n.Name !== defaultBridge.name)];
  }

  /** By exact name, exact ID or unique ID prefix. @throws NotFoundError */
  find(ref: string): NetworkRecord {
    const all = this.list();
    const exact = all.find((n) => n.Name === ref || n.Id === ref);
    if (exact) return exact;
    const byPrefix = ref.length > 0 ? all.filter((n) => n.Id.startsWith(ref)) : [];
    if (byPrefix.length === 1) return byPrefix[0] as NetworkRecord;
    if (byPrefix.length > 1) throw new InvalidArgumentError(`network ID prefix "${ref}" is ambiguous`);
    throw new NotFoundError(`network ${ref} not found`);
  }

  /** A new bridge network; a free subnet from the pool unless given. @throws AlreadyExistsError, InvalidArgumentError */
  create(name: string, opts: CreateNetworkOpts = {}): NetworkRecord {
    if (!validName.test(name)) throw new InvalidArgumentError(`invalid network name "${name}"`);
    const driver = opts.driver || 'bridge';
    if (driver !== 'bridge') throw new InvalidArgumentError(`network driver "${driver}" is not supported (berth has bridge)`);
    this.#defaultBridge(); // written first: it takes the same lock, which is not reentrant
    return this.#locked(() => {
      const all = this.list();
      if (all.some((n) => n.Name === name)) throw new AlreadyExistsError(`network with name ${name} already exists`);
      const taken = [...all.flatMap((n) => (n.Subnet ? [parseSubnet(n.Subnet)] : [])), ...hostRoutes()];
      let subnet: Subnet;
      if (opts.subnet) {
        subnet = parseSubnet(opts.subnet);
        const clash = taken.find((t) => overlaps(t, subnet));
        if (clash) throw new InvalidArgumentError(`subnet ${formatSubnet(subnet)} overlaps ${formatSubnet(clash)}, in use on this host`);
      } else {
        const free = Array.from({ length: pool.count }, (_, i) => ({ base: pool.base + i * 256, prefix: pool.prefix })).find(
          (s) => !taken.some((t) => overlaps(t, s)),
        );
        if (!free) throw new FailedPreconditionError('no free subnet left in 10.89.0.0/16: name one with --subnet');
        subnet = free;
      }
      const gateway = opts.gateway ?? firstHost(subnet);
      if (!contains(subnet, parseIPv4(gateway)))
        throw new InvalidArgumentError(`gateway ${gateway} is not in subnet ${formatSubnet(subnet)}`);
      const id = randomBytes(32).toString('hex');
      const rec: NetworkRecord = {
        Id: id,
        Name: name,
        Driver: 'bridge',
        Created: new Date().toISOString(),
        Internal: opts.internal ?? false,
        Labels: opts.labels ?? {},
        Options: opts.options ?? {},
        Subnet: formatSubnet(subnet),
        Gateway: gateway,
        Bridge: `berth-${id.slice(0, 9)}`,
      };
      this.#write(rec);
      return rec;
    });
  }

  /** Deletes a network's record. @throws FailedPreconditionError for a built-in one */
  remove(rec: NetworkRecord): void {
    if (isPredefined(rec)) throw new FailedPreconditionError(`${rec.Name} is a pre-defined network and cannot be removed`);
    rmSync(join(this.dir, `${rec.Id}.json`), { force: true });
  }

  /** The default bridge, written on first use. */
  #defaultBridge(): NetworkRecord {
    const kept = this.#stored().find((n) => n.Name === defaultBridge.name);
    if (kept) return kept;
    return this.#locked(() => {
      const again = this.#stored().find((n) => n.Name === defaultBridge.name);
      if (again) return again;
      const subnet = parseSubnet(this.#bridgeSubnet);
      const rec: NetworkRecord = {
        Id: randomBytes(32).toString('hex'),
        Name: defaultBridge.name,
        Driver: 'bridge',
        Created: new Date().toISOString(),
        Internal: false,
        Labels: {},
        Options: { 'com.docker.network.bridge.default_bridge': 'true' },
        Subnet: formatSubnet(subnet),
        Gateway: firstHost(subnet),
        Bridge: defaultBridge.device,
      };
      this.#write(rec);
      return rec;
    });
  }

  #stored(): NetworkRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => /^[0-9a-f]{64}\.json$/.test(n));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: NetworkRecord[] = [];
    for (const n of names) {
      try {
        out.push(JSON.parse(readFileSync(join(this.dir, n), 'utf8')) as NetworkRecord);
      } catch {} // removed meanwhile, or half-written by a crash before the rename: fsck reports it
    }
    return out.sort((a, b) => (a.Created < b.Created ? -1 : a.Created > b.Created ? 1 : 0));
  }

  #write(rec: NetworkRecord): void {
    const file = join(this.dir, `${rec.Id}.json`);
    writeFileSync(`${file}.tmp`, `${JSON.stringify(rec, null, 2)}\n`);
    renameSync(`${file}.tmp`, file);
  }

  /** Creation under `<dir>/lock`: names stay unique across processes. */
  #locked<T>(fn: () => T): T {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const fd = openSync(join(this.dir, 'lock'), 'a');
    try {
      flock(fd, 'ex');
      return fn();
    } finally {
      closeSync(fd);
    }
  }
}

/** `bridge`, `host` and `none`: docker's pre-defined networks. */
export function isPredefined(rec: NetworkRecord): boolean {
  return rec.Name === defaultBridge.name || rec.Name === 'host' || rec.Name === 'none';
}
