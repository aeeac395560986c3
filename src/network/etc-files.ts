import { existsSync, readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../errdefs/index.js';

// The files docker writes for a container: /etc/hosts (with the containers it shares a user
// network with: berth's name resolution, kept in sync as they come and go) and /etc/resolv.conf.

/** A name that resolves in a container's /etc/hosts. */
export interface HostEntry {
  ip: string;
  names: string[];
}

const base = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

/** /etc/hosts: localhost, `--add-host` entries, the container itself, then its peers. */
export function hostsFile(self: HostEntry[], peers: HostEntry[], extra: HostEntry[]): string {
  const line = (e: HostEntry) => `${e.ip}\t${[...new Set(e.names)].join(' ')}`;
  return `${[...base, ...extra.map(line), ...self.map(line), ...peers.map(line)].join('\n')}\n`;
}

/** `--add-host name:ip` (docker also takes `name=ip`). @throws InvalidArgumentError */
export function parseExtraHost(s: string): HostEntry {
  const m = /^([^:=]+)[:=](.+)$/.exec(s);
  if (!m) throw new InvalidArgumentError(`invalid --add-host "${s}" (want NAME:IP)`);
  return { names: [m[1] as string], ip: (m[2] as string).replace(/^\[(.*)\]$/, '$1') };
}

export interface DnsOpts {
  servers?: string[];
  search?: string[];
  options?: string[];
}

/** The host's resolv.conf (or the one given), read once. */
function hostResolvConf(path = '/etc/resolv.conf'): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

const loopback = /^(127\.|::1$|0:0:0:0:0:0:0:1$)/;

/**
 * /etc/resolv.conf as docker writes it: the host's, without loopback nameservers when the container
 * has a network of its own (docker falls back to Google's public servers when none is left); the
 * flags' servers, search domains and options replace the host's.
 */
export function resolvConf(opts: DnsOpts & { hostNetwork: boolean; hostFile?: string }): string {
  const lines = hostResolvConf(opts.hostFile).split('\n');
  let servers = lines.flatMap((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1] ?? []);
  let search = lines.flatMap((l) => (/^\s*(?:search|domain)\s+(.+)/.exec(l)?.[1] ?? '').split(/\s+/).filter(Boolean));
  let options = lines.flatMap((l) => (/^\s*options\s+(.+)/.exec(l)?.[1] ?? '').split(/\s+/).filter(Boolean));
  if (!opts.hostNetwork) servers = servers.filter((s) => !loopback.test(s));
  if (opts.servers?.length) servers = opts.servers;
  else if (!opts.hostNetwork && servers.length === 0) servers = ['8.8.8.8', '8.8.4.4'];
  if (opts.search?.length) search = opts.search.filter((s) => s !== '.');
  if (opts.options?.length) options = opts.options;
  return [
    ...servers.map((s) => `nameserver ${s}`),
    ...(search.length ? [`search ${search.join(' ')}`] : []),
    ...(options.length ? [`options ${options.join(' ')}`] : []),
  ]
    .join('\n')
    .concat('\n');
}
