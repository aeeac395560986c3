// docker's volumes over berth's: the inspect document, listing filters, removal refused while a
// container (of any namespace) uses the volume, prune, and the sizes system df shows.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type Container, mountPoints } from '../containers/index.js';
import { FailedPreconditionError, InvalidArgumentError } from '../errdefs/index.js';
import type { VolumeRecord } from '../volumes/index.js';
import type { Berth } from './berth.js';
import { labelMatches, splitFilter } from './filters.js';

const run = promisify(execFile);

/** The containers (every namespace) whose mounts name each volume. */
export function volumeUsers(b: Berth): Map<string, Container[]> {
  const out = new Map<string, Container[]>();
  for (const ns of b.metadata.namespaces.list()) {
    for (const c of b.namespace(ns.name).containers.list<Container['config']>()) {
      for (const m of mountPoints(c)) if (m.Name) out.set(m.Name, [...(out.get(m.Name) ?? []), c]);
    }
  }
  return out;
}

/** docker's volume inspect document. */
export function volumeView(b: Berth, v: VolumeRecord): Record<string, unknown> {
  return {
    CreatedAt: v.CreatedAt,
    Driver: v.Driver,
    Labels: v.Labels,
    Mountpoint: b.volumes.dataDir(v.Name),
    Name: v.Name,
    Options: Object.keys(v.Options).length ? v.Options : null,
    Scope: 'local',
  };
}

function volumeMatches(v: VolumeRecord, filter: string, users: Map<string, Container[]>): boolean {
  const [k, val] = splitFilter(filter);
  switch (k) {
    case 'name':
      return v.Name.includes(val);
    case 'driver':
      return v.Driver === val;
    case 'dangling':
      return (val === 'true' || val === '1') === !users.has(v.Name);
    case 'label':
      return labelMatches(v.Labels, val);
    case 'label!':
      return !volumeMatches(v, `label=${val}`, users);
    case 'all':
      return true;
    default:
      throw new InvalidArgumentError(`invalid filter "${k}" (want name, driver, dangling or label)`);
  }
}

export function listVolumes(b: Berth, filters: string[] = []): VolumeRecord[] {
  const users = volumeUsers(b);
  return b.volumes.list().filter((v) => filters.every((f) => volumeMatches(v, f, users)));
}

/** Removes a volume. @throws FailedPreconditionError while a container uses it */
export async function removeVolume(b: Berth, name: string): Promise<void> {
  b.volumes.get(name);
  const users = volumeUsers(b).get(name);
  if (users?.length) {
    throw new FailedPreconditionError(`remove ${name}: volume is in use - [${users.map((c) => c.id).join(', ')}]`);
  }
  await b.volumes.remove(name);
}

/** Removes the volumes no container uses: anonymous ones only unless `all` (docker 23's rule). */
export async function pruneVolumes(
  b: Berth,
  opts: { all?: boolean; filters?: string[] } = {},
): Promise<{ removed: string[]; reclaimed: number }> {
  const users = volumeUsers(b);
  const filters = (opts.filters ?? []).filter((f) => !f.startsWith('all='));
  const all = opts.all || (opts.filters ?? []).some((f) => f === 'all=true' || f === 'all=1');
  const out = { removed: [] as string[], reclaimed: 0 };
  for (const v of b.volumes.list()) {
    if (users.has(v.Name) || (!all && !v.Anonymous)) continue;
    if (!filters.every((f) => volumeMatches(v, f, users))) continue;
    out.reclaimed += await volumeSize(b, v.Name);
    await b.volumes.remove(v.Name);
    out.removed.push(v.Name);
  }
  return out;
}

/** Bytes a volume's data takes on disk (du). */
export async function volumeSize(b: Berth, name: string): Promise<number> {
  try {
    const { stdout } = await run('du', ['-s', '-B1', b.volumes.dataDir(name)]);
    return Number(stdout.split(/\s/)[0]) || 0;
  } catch {
    return 0;
  }
}

/** system df's volume rows: size and how many containers use each. */
export async function volumeUsage(b: Berth): Promise<{ Name: string; Size: number; RefCount: number; Volume: VolumeRecord }[]> {
  const users = volumeUsers(b);
  return Promise.all(
    b.volumes
      .list()
      .map(async (v) => ({ Name: v.Name, Size: await volumeSize(b, v.Name), RefCount: users.get(v.Name)?.length ?? 0, Volume: v })),
  );
}
