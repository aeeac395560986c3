// docker's views of a container: the ps columns, the inspect document, the filters of ps and prune.
import { type Container, type Containers, mountPoints } from '../containers/index.js';
import { hasCode, InvalidArgumentError } from '../errdefs/index.js';
import type { Berth } from './berth.js';
import { labelMatches, pruneMatches, splitFilter } from './filters.js';
import { networkSettings } from './networks.js';

export const exitCodeOf = (c: Container) => c.state.exitCode ?? 255;

export function statusText(c: Container, now = Date.now()): string {
  const s = c.state;
  if (s.status === 'running') return `Up ${humanDuration(now - Date.parse(s.startedAt ?? ''))}${s.paused ? ' (Paused)' : ''}`;
  if (s.status === 'created') return 'Created';
  const ago = s.finishedAt ? ` ${humanDuration(now - Date.parse(s.finishedAt))} ago` : '';
  return `Exited (${s.exitCode ?? 'unknown'})${ago}`;
}

export function commandText(c: Container): string {
  const args = [...(c.config.Config.Entrypoint ?? []), ...c.config.Config.Cmd].join(' ');
  return JSON.stringify(args.length > 20 ? `${args.slice(0, 19)}…` : args);
}

/** docker's `inspect` document for a container. */
export function inspectContainer(b: Berth, containers: Containers, c: Container): Record<string, unknown> {
  const p = containers.paths(c.id);
  const cfg = c.config.Config;
  const args = [...(cfg.Entrypoint ?? []), ...cfg.Cmd];
  return {
    Id: c.id,
    Created: c.createdAt.toISOString(),
    Path: args[0],
    Args: args.slice(1),
    State: {
      Status: c.state.paused ? 'paused' : c.state.status,
      Running: c.state.status === 'running',
      Paused: c.state.paused ?? false,
      Restarting: false,
      OOMKilled: c.state.oomKilled ?? false,
      Dead: false,
      Pid: c.state.pid ?? 0,
      ExitCode: c.state.status === 'exited' ? (c.state.exitCode ?? 255) : 0,
      Error: c.state.error ?? '',
      StartedAt: c.state.startedAt ?? '0001-01-01T00:00:00Z',
      FinishedAt: c.state.finishedAt ?? '0001-01-01T00:00:00Z',
    },
    Image: c.imageId,
    ResolvConfPath: `${p.dir}/resolv.conf`,
    HostnamePath: `${p.dir}/hostname`,
    HostsPath: `${p.dir}/hosts`,
    LogPath: containers.logPath(c),
    Name: `/${c.name}`,
    RestartCount: c.state.restartCount ?? 0,
    Driver: c.snapshotter,
    Platform: 'linux',
    HostConfig: c.config.HostConfig,
    GraphDriver: graphDriver(containers, c),
    Mounts: mountList(b, c),
    Config: cfg,
    NetworkSettings: networkSettings(b, c),
  };
}

/** docker's Mounts of a container (inspect and list). */
export function mountList(b: Berth, c: Container): Record<string, unknown>[] {
  return mountPoints(c).map((m) =>
    m.Type === 'volume'
      ? {
          Type: 'volume',
          Name: m.Name,
          Source: b.volumes.dataDir(m.Name as string),
          Destination: m.Destination,
          Driver: 'local',
          Mode: m.Mode,
          RW: m.RW,
          Propagation: '',
        }
      : {
          Type: m.Type,
          Source: m.Source,
          Destination: m.Destination,
          Mode: m.Mode,
          RW: m.RW,
          Propagation: m.Type === 'bind' ? 'rprivate' : '',
        },
  );
}

function graphDriver(containers: Containers, c: Container): Record<string, unknown> {
  return { Name: c.snapshotter, Data: containers.graphDriverData(c) };
}

/**
 * Removes the stopped containers of a namespace (`filters`: docker's `until=`, `label=`, `label!=`);
 * `reclaimed` is the disk space their writable layers and files took.
 */
export async function pruneContainers(b: Berth, namespace: string, filters: string[] = []): Promise<{ ids: string[]; reclaimed: number }> {
  const containers = b.containers(namespace);
  const out = { ids: [] as string[], reclaimed: 0 };
  for (const c of await containers.list()) {
    if (c.state.status === 'running') continue;
    if (!filters.every((f) => pruneMatches({ created: c.createdAt.getTime(), labels: c.labels }, f))) continue;
    const usage = await containers.usage(c);
    try {
      await containers.remove(c.id);
    } catch (err) {
      if (hasCode(err, 'NOT_FOUND') || hasCode(err, 'FAILED_PRECONDITION')) continue; // removed or started meanwhile
      throw err;
    }
    out.ids.push(c.id);
    out.reclaimed += usage.removable;
  }
  return out;
}

export function matchFilter(c: Container, f: string): boolean {
  const [k, v] = splitFilter(f);
  switch (k) {
    case 'status':
      return (c.state.paused ? 'paused' : c.state.status) === v;
    case 'name':
      return c.name.includes(v);
    case 'id':
      return c.id.startsWith(v);
    case 'label':
      return labelMatches(c.labels, v);
    case 'ancestor':
      return c.config.Config.Image === v || c.image === v || c.imageId === v || c.imageId.slice(7).startsWith(v);
    case 'exited':
      return c.state.status === 'exited' && String(c.state.exitCode) === v;
    default:
      throw new InvalidArgumentError(`invalid filter "${k}" (want status, name, id, label, ancestor or exited)`);
  }
}

/** Durations as docker prints them: "Less than a second", "5 seconds", "About a minute", "3 hours". */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.round(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.round(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.round(h / 24 / 30)} months`;
  return `${Math.round(h / 24 / 365)} years`;
}
