// Test support: what the host holds for a container's networking.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const leases = '/var/lib/cni/networks';

/** A container's traces on the host: its namespace, host-local leases, nat rules naming it. */
export function hostTraces(id: string): string[] {
  const out: string[] = [];
  if (existsSync(`/run/netns/berth-${id}`)) out.push('netns');
  for (const net of existsSync(leases) ? readdirSync(leases) : []) {
    for (const f of readdirSync(join(leases, net))) {
      if (/^[\d.]+$/.test(f) && readFileSync(join(leases, net, f), 'utf8').startsWith(id)) out.push(`lease ${net}/${f}`);
    }
  }
  if (execFileSync('iptables', ['-w', '-t', 'nat', '-S']).toString().includes(id)) out.push('nat rules');
  return out;
}

/** Removes an empty cgroup and its empty parents up to the top, in every hierarchy (runc leaves a container's parents behind). */
export function removeCgroupTree(top: string): void {
  const roots = existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? ['/sys/fs/cgroup']
    : readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c));
  for (const root of roots) {
    const dir = join(root, top);
    if (!existsSync(dir)) continue;
    // children first
    const walk = (d: string): string[] => {
      let subs: string[] = [];
      try {
        subs = readdirSync(d, { withFileTypes: true })
          .filter((e) => e.isDirectory())
          .flatMap((e) => walk(join(d, e.name)));
      } catch {}
      return [...subs, d];
    };
    for (const d of walk(dir)) {
      try {
        rmdirSync(d);
      } catch {} // busy: a process still in it
    }
  }
}

/** Writes a pods' CNI config as kubelet's network plugin would (bridge, host-local, portmap) into `dir`. */
export async function writePodNetwork(dir: string, net: { name: string; bridge: string; subnet: string }): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, '10-pods.conflist'),
    JSON.stringify({
      cniVersion: '0.4.0',
      name: net.name,
      plugins: [
        {
          type: 'bridge',
          bridge: net.bridge,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: net.subnet }]], routes: [{ dst: '0.0.0.0/0' }] },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    }),
  );
}
