import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

// A container's network namespace, made before the container so the CNI plugins can attach it
// while runc creates the rest: `ip netns add` (iproute2) binds it at /run/netns/berth-<id>, where
// `ip netns` and every CNI tool can see it.

const dir = '/run/netns';
const prefix = 'berth-';

export function netnsPath(containerId: string): string {
  return `${dir}/${prefix}${containerId}`;
}

/** Makes the namespace (lo is down: the loopback plugin brings it up). Safe to repeat. */
export async function createNetns(containerId: string): Promise<string> {
  const name = `${prefix}${containerId}`;
  if (!existsSync(netnsPath(containerId))) {
    await run('ip', ['netns', 'add', name]).catch((err) => {
      if (!/File exists/.test(String(err.stderr))) throw err;
    });
  }
  return netnsPath(containerId);
}

/** Unmounts and deletes the namespace (its veth ends go with it). Safe to repeat. */
export async function deleteNetns(containerId: string): Promise<void> {
  if (!existsSync(netnsPath(containerId))) return;
  await run('ip', ['netns', 'delete', `${prefix}${containerId}`]).catch((err) => {
    if (existsSync(netnsPath(containerId))) throw err;
  });
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
