import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lstatOrUndefined } from '../archive/index.js';
import { FailedPreconditionError } from '../errdefs/index.js';
import { createNetns, deleteNetns, hostsFile, type NetworkService, resolvConf } from '../network/index.js';
import { buildSpec, mergeEnv, type Runc, resolveInRoot, resolveUser, type SpecMount } from '../runtime/index.js';

export interface RunStepInput {
  /** The step's ID: runc's container ID and the namespace's name. */
  id: string;
  rootfs: string;
  /** A directory of this step's own (the bundle: config.json, /etc files, secrets). */
  bundle: string;
  args: string[];
  env: string[];
  cwd: string;
  user: string;
  network: 'none' | 'host' | 'bridge';
  /** `RUN --mount` mounts, by destination in the container. */
  mounts: SpecMount[];
  signal?: AbortSignal;
  onOutput?: (chunk: Buffer) => void;
}

export const buildHostname = 'buildkitsandbox';

/**
 * Runs one RUN step's process in the step's rootfs under runc, confined as `run` confines a
 * container (default capabilities, seccomp, masked paths), in a network namespace of its own on
 * the default bridge (or the host's, or none). Mount points runc had to make in the rootfs are
 * taken away again, so they do not end up in the layer. Resolves with the exit code.
 */
export async function runStep(runc: Runc, network: NetworkService, s: RunStepInput): Promise<number> {
  mkdirSync(s.bundle, { recursive: true, mode: 0o700 });
  const etc: SpecMount[] = [];
  const etcFile = (name: string, text: string) => {
    const file = join(s.bundle, name);
    writeFileSync(file, text, { mode: 0o644 });
    etc.push({ destination: `/etc/${name}`, type: 'bind', source: file, options: ['rbind', 'ro'] });
  };
  etcFile('hosts', s.network === 'host' ? hostsOfHost() : hostsFile([{ ip: '127.0.0.1', names: [buildHostname] }], [], []));
  etcFile('resolv.conf', resolvConf({ hostNetwork: s.network === 'host' }));
  const mounts = [...etc, ...s.mounts];
  // Mount points runc would create: the first missing component of each, removed afterwards.
  const made = new Set<string>();
  for (const dest of ['/proc', '/dev', '/sys', ...mounts.map((m) => m.destination)]) {
    const missing = firstMissing(s.rootfs, dest);
    if (missing) made.add(missing);
  }
  resolveInRoot(s.rootfs, s.cwd, { mkdir: true }); // as docker's WORKDIR would have made it
  const user = resolveUser(s.rootfs, s.user || '0');
  let netns: string | undefined;
  let attached: Parameters<NetworkService['detach']>[2] | undefined;
  try {
    if (s.network === 'bridge') {
      netns = await createNetns(s.id);
      const a = { network: network.store.find('bridge'), request: {}, ports: [], ifName: 'eth0' };
      await network.attach(s.id, netns, a);
      attached = a;
    }
    const spec = buildSpec({
      args: s.args,
      env: mergeEnv(s.env, [], { hostname: buildHostname, home: user.home }),
      cwd: s.cwd,
      user,
      rootfs: s.rootfs,
      hostname: buildHostname,
      network: s.network === 'host' ? 'host' : netns ? { path: netns } : 'none',
      mounts,
      cgroupsPath: `/berth/${s.id}`,
    });
    writeFileSync(join(s.bundle, 'config.json'), JSON.stringify(spec));
    return await runc.run(s.id, s.bundle, {
      ...(s.onOutput ? { onOutput: s.onOutput } : {}),
      ...(s.signal ? { signal: s.signal } : {}),
    });
  } finally {
    await runc.delete(s.id, { force: true }).catch(() => {});
    if (attached && netns) await network.detach(s.id, netns, attached).catch(() => {});
    if (netns) await deleteNetns(s.id).catch(() => {});
    for (const p of made) rmSync(p, { recursive: true, force: true });
  }
}

/** The host path of the first component of `path` that does not exist in `rootfs`, if any. */
function firstMissing(rootfs: string, path: string): string | undefined {
  const parts = path.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    let host: string;
    try {
      host = resolveInRoot(rootfs, `/${parts.slice(0, i).join('/')}`);
    } catch {
      return undefined;
    }
    if (!lstatOrUndefined(host)) return host;
  }
  return undefined;
}

function hostsOfHost(): string {
  return existsSync('/etc/hosts') ? readFileSync('/etc/hosts', 'utf8') : hostsFile([], [], []);
}

/** A secret's file for `RUN --mount=type=secret`: a copy in the step's bundle (tmpfs), with its mode and owner. */
export function secretFile(bundle: string, id: string, source: string, mode: number, uid: number, gid: number): string {
  const dir = join(bundle, 'secrets');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, id.replace(/[^\w.-]/g, '_'));
  try {
    copyFileSync(source, file);
  } catch (err) {
    throw new FailedPreconditionError(`secret ${id}: ${(err as Error).message}`, { cause: err });
  }
  chmodSync(file, mode);
  chownSync(file, uid, gid);
  return file;
}
