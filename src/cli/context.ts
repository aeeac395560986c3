import type { Command } from 'commander';
import { Session, type SessionOpts } from '../remotes/index.js';
import { Berth, defaultRoot } from '../services/index.js';
import type { SnapshotterName } from '../snapshots/index.js';
import { type Format, parseFormat } from './output.js';
import { berthVersion } from './version.js';

/** The global flags every command sees. */
export interface Globals {
  root: string;
  namespace: string;
  format: Format;
  debug: boolean;
  snapshotter?: SnapshotterName;
}

/**
 * The global flags. A command whose own `--format` means something else (`save --format docker|oci`)
 * names its values in `ownFormats`: commander gives every `--format` to the global flag.
 */
export function globalsOf(cmd: Command, opts: { ownFormats?: readonly string[] } = {}): Globals {
  const o = cmd.optsWithGlobals() as { root?: string; namespace?: string; format?: string; debug?: boolean; snapshotter?: SnapshotterName };
  const own = o.format !== undefined && opts.ownFormats?.includes(o.format);
  const g: Globals = {
    root: o.root || defaultRoot(),
    namespace: o.namespace || 'default',
    format: own ? 'table' : parseFormat(o.format ?? 'table', opts.ownFormats),
    debug: o.debug ?? false,
  };
  if (o.snapshotter) g.snapshotter = o.snapshotter;
  return g;
}

/** Opens the root for the duration of one command. */
export async function withBerth<T>(
  cmd: Command,
  fn: (berth: Berth, g: Globals) => Promise<T>,
  opts: { ownFormats?: readonly string[] } = {},
): Promise<T> {
  const g = globalsOf(cmd, opts);
  const berth = await Berth.open({ root: g.root, ...(g.snapshotter ? { snapshotter: g.snapshotter } : {}) });
  try {
    return await fn(berth, g);
  } finally {
    berth.close();
  }
}

/** Adds an "Example" section to a command's help. */
export function example(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText('after', `\nExample:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

/** Registry session options from the flags and environment: hosts directories, insecure hosts, plain HTTP. */
export function sessionOpts(flags: { plainHttp?: boolean; hostsDir?: string } = {}): SessionOpts {
  const insecure = (process.env.BERTH_INSECURE_REGISTRIES ?? '').split(',').filter(Boolean);
  return {
    userAgent: `berth/${berthVersion}`,
    hosts: { insecure, ...(flags.plainHttp ? { plainHttp: true } : {}), ...(flags.hostsDir ? { configDirs: [flags.hostsDir] } : {}) },
  };
}

export function sessionFor(flags: { plainHttp?: boolean; hostsDir?: string } = {}): Session {
  return new Session(sessionOpts(flags));
}
