// Test support: what the host holds for a container's networking.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
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
