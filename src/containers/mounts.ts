import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { hasCode, InvalidArgumentError } from '../errdefs/index.js';
import { resolveInRoot } from '../runtime/index.js';
import type { ContainerContext } from './context.js';
import type { Container, ContainerHostConfig, MountPoint, MountRequest } from './types.js';

const run = promisify(execFile);

// A container's mounts as docker resolves them at create: `-v` binds and named volumes, `--mount`
// (the Engine API's Mounts), `--volumes-from`, and an anonymous volume for each of the image's
// VOLUMEs left uncovered. Volumes are filled from the image's content at the first start, as
// docker fills an empty volume.

function absolute(p: string, what: string, spec: string): string {
  if (!p.startsWith('/')) throw new InvalidArgumentError(`invalid ${what} "${p}" in "${spec}": it must be an absolute path`);
  return posix.normalize(p);
}

/** `-v SRC:DST[:OPTS]`: SRC an absolute host path (a bind) or a volume's name; `-v DST` alone an anonymous volume. */
export function parseVolumeFlag(spec: string): MountPoint {
  const parts = spec.split(':');
  if (parts.length === 1)
    return { Type: 'volume', Source: '', Destination: absolute(spec, 'mount target', spec), RW: true, Mode: '', Anonymous: true };
  if (parts.length > 3) throw new InvalidArgumentError(`invalid volume specification "${spec}" (want SOURCE:TARGET[:ro])`);
  const [source = '', target = '', mode = ''] = parts;
  const opts = mode ? mode.split(',') : [];
  const known = ['ro', 'rw', 'z', 'Z', 'nocopy', 'rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave'];
  for (const o of opts) if (!known.includes(o)) throw new InvalidArgumentError(`invalid volume mode "${o}" in "${spec}"`);
  const dest = absolute(target, 'mount target', spec);
  const rw = !opts.includes('ro');
  if (source.startsWith('/'))
    return { Type: 'bind', Source: posix.normalize(source), Destination: dest, RW: rw, Mode: mode, CreateSource: true };
  if (source === '' || source.startsWith('.'))
    throw new InvalidArgumentError(`invalid volume specification "${spec}": a host path must be absolute`);
  return {
    Type: 'volume',
    Name: source,
    Source: '',
    Destination: dest,
    RW: rw,
    Mode: mode,
    ...(opts.includes('nocopy') ? { NoCopy: true } : {}),
  };
}

/** `--mount type=volume,source=NAME,target=/p,readonly,volume-nocopy` (and bind, tmpfs) as the API's Mounts entry. */
export function parseMountFlag(spec: string): MountRequest {
  const kv: Record<string, string> = {};
  for (const field of spec.split(',')) {
    const i = field.indexOf('=');
    kv[(i < 0 ? field : field.slice(0, i)).trim().toLowerCase()] = i < 0 ? 'true' : field.slice(i + 1);
  }
  const type = (kv.type ?? 'volume') as MountRequest['Type'];
  if (!['bind', 'volume', 'tmpfs'].includes(type))
    throw new InvalidArgumentError(`invalid mount type "${type}" (want bind, volume or tmpfs)`);
  const target = kv.target ?? kv.destination ?? kv.dst;
  if (!target) throw new InvalidArgumentError(`invalid --mount "${spec}": target is required`);
  const ro = kv.readonly ?? kv.ro;
  const m: MountRequest = { Type: type, Target: target, ReadOnly: ro === 'true' || ro === '1' };
  const source = kv.source ?? kv.src;
  if (source !== undefined) m.Source = source;
  if (type === 'volume' && (kv['volume-nocopy'] === 'true' || kv['volume-nocopy'] === '1')) m.VolumeOptions = { NoCopy: true };
  if (type === 'tmpfs') {
    m.TmpfsOptions = {};
    if (kv['tmpfs-size']) m.TmpfsOptions.SizeBytes = Number(kv['tmpfs-size']);
    if (kv['tmpfs-mode']) m.TmpfsOptions.Mode = Number.parseInt(kv['tmpfs-mode'], 8);
  }
  return m;
}

function fromRequest(m: MountRequest): MountPoint {
  const spec = `${m.Type} mount on ${m.Target}`;
  const dest = absolute(m.Target, 'mount target', spec);
  const rw = !m.ReadOnly;
  if (m.Type === 'bind') {
    if (!m.Source) throw new InvalidArgumentError(`invalid ${spec}: a bind needs a source`);
    return { Type: 'bind', Source: absolute(m.Source, 'bind source', spec), Destination: dest, RW: rw, Mode: '' };
  }
  if (m.Type === 'tmpfs') {
    if (m.Source) throw new InvalidArgumentError(`invalid ${spec}: a tmpfs takes no source`);
    const o = m.TmpfsOptions ?? {};
    const opts = [...(o.SizeBytes ? [`size=${o.SizeBytes}`] : []), ...(o.Mode !== undefined ? [`mode=${o.Mode.toString(8)}`] : [])];
    return { Type: 'tmpfs', Source: '', Destination: dest, RW: rw, Mode: '', TmpfsOptions: opts };
  }
  return {
    Type: 'volume',
    ...(m.Source ? { Name: m.Source } : { Anonymous: true }),
    Source: '',
    Destination: dest,
    RW: rw,
    Mode: '',
    ...(m.VolumeOptions?.NoCopy ? { NoCopy: true } : {}),
  };
}

/**
 * A new container's mounts: binds and volumes from `-v` (Binds), `--mount` (Mounts) and
 * `--volumes-from`, then anonymous volumes for the image's VOLUMEs not covered. Named volumes
 * missing are created, as docker does. @throws InvalidArgumentError for two mounts on one target
 */
export function resolveMounts(ctx: ContainerContext, host: ContainerHostConfig, imageVolumes: string[]): MountPoint[] {
  const wanted: MountPoint[] = [];
  for (const ref of host.VolumesFrom ?? []) {
    const [name = '', mode = ''] = ref.split(':');
    if (mode && mode !== 'ro' && mode !== 'rw') throw new InvalidArgumentError(`invalid --volumes-from mode "${mode}" (want ro or rw)`);
    const from = ctx.find(name);
    for (const m of mountPoints(from)) {
      if (m.Type === 'tmpfs') continue;
      const { Anonymous: _, ...shared } = m;
      wanted.push({ ...shared, RW: mode ? mode === 'rw' : m.RW });
    }
  }
  const own = [...host.Binds.map(parseVolumeFlag), ...(host.Mounts ?? []).map(fromRequest)];
  const seen = new Set<string>();
  for (const m of own) {
    if (seen.has(m.Destination)) throw new InvalidArgumentError(`duplicate mount point: ${m.Destination}`);
    seen.add(m.Destination);
  }
  const all = [...wanted.filter((m) => !seen.has(m.Destination)), ...own];
  for (const v of imageVolumes) {
    const dest = posix.normalize(v);
    if (!all.some((m) => m.Destination === dest))
      all.push({ Type: 'volume', Source: '', Destination: dest, RW: true, Mode: '', Anonymous: true });
  }
  const volumes = ctx.host.volumes;
  for (const m of all) {
    if (m.Type !== 'volume') continue;
    if (m.Anonymous && !m.Name) {
      m.Name = volumes.create(undefined, { labels: { 'com.docker.volume.anonymous': '' } }).Name;
    } else if (m.Name) {
      volumes.create(m.Name);
    }
  }
  return all;
}

/** A container's mounts; records from before volumes have only binds. */
export function mountPoints(rec: Container): MountPoint[] {
  return rec.config.MountPoints ?? rec.config.HostConfig.Binds.map(parseVolumeFlag);
}

/**
 * Gets a starting container's volumes ready: mounted when they have driver options, and an empty
 * one filled with what the image has at its path (unless nocopy), as docker fills them.
 * Returns each volume's host directory.
 */
export async function prepareVolumes(ctx: ContainerContext, rec: Container, rootfs: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const m of mountPoints(rec)) {
    if (m.Type !== 'volume' || !m.Name) continue;
    const dir = await ctx.host.volumes.mountpoint(m.Name);
    out.set(m.Name, dir);
    if (m.NoCopy || readdirSync(dir).length > 0) continue;
    let from: string;
    try {
      from = resolveInRoot(rootfs, m.Destination);
    } catch (err) {
      if (hasCode(err, 'INVALID_ARGUMENT')) continue;
      throw err;
    }
    if (!existsSync(from) || !statSync(from).isDirectory() || readdirSync(from).length === 0) continue;
    await run('cp', ['-a', `${from}/.`, `${dir}/`]);
  }
  return out;
}
