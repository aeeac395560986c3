import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { netnsCreate, netnsDelete } from '../sys/index.js';

// A container's network namespace, made before the container so the CNI plugins can attach it
// while runc creates the rest. It is bound at /run/netns/berth-<id>, where `ip netns add` binds
// its own (so `ip netns` and every CNI tool see it), by the addon, which also brings lo up as runc
// does in a namespace it makes: no process to start (`ip netns add` and the loopback plugin cost
// two, on the path of every start).

const dir = '/run/netns';
const prefix = 'berth-';

export function netnsPath(containerId: string): string {
  return `${dir}/${prefix}${containerId}`;
}

/** Makes a fresh namespace, lo up; one left by a crash is replaced. */
export async function createNetns(containerId: string): Promise<string> {
  const path = netnsPath(containerId);
  if (existsSync(path)) netnsDelete(path);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  closeSync(openSync(path, 'wx', 0o444));
  try {
    netnsCreate(path);
  } catch (err) {
    rmSync(path, { force: true });
    throw err;
  }
  return path;
}

/** Lets go of the namespace (its veth ends go with it once nothing else holds it). Safe to repeat. */
export async function deleteNetns(containerId: string): Promise<void> {
  netnsDelete(netnsPath(containerId));
}

/** The container IDs that have a namespace here (fsck looks for ones no running container owns). */
export function listNetns(): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => n.startsWith(prefix))
      .map((n) => n.slice(prefix.length));
  } catch {
    return [];
  }
}

/**
 * Whether a namespace berth made is a leftover: no process is in it (none of /proc/<pid>/ns/net is
 * it) and it is older than `minAgeMs` (a start in another process makes it a moment before runc
 * puts the container in).
 */
export function netnsAbandoned(containerId: string, minAgeMs = 60_000): boolean {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(netnsPath(containerId));
  } catch {
    return false;
  }
  if (Date.now() - st.mtimeMs < minAgeMs) return false;
  const want = `net:[${st.ino}]`;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readlinkSync(`/proc/${pid}/ns/net`) === want) return false;
    } catch {} // gone, or not ours to read
  }
  return true;
}
