// docker's create and run flags, and their translation into the containers service's options.
import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { type CreateContainerOpts, parseMountFlag } from '../containers/index.js';
import { InvalidArgumentError } from '../errdefs/index.js';
import { mergePorts, parsePublish } from '../network/index.js';
import { collect, parseKeyValues } from './output.js';

/** Commands whose arguments after the first operand belong to the container (docker's `run IMAGE CMD…`). */
export const commandSplitting = new WeakSet<Command>();

export interface CreateFlags {
  name?: string;
  env?: string[];
  envFile?: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  volume?: string[];
  mount?: string[];
  volumesFrom?: string[];
  tmpfs?: string[];
  hostname?: string;
  network?: string;
  networkAlias?: string[];
  ip?: string;
  publish?: string[];
  publishAll?: boolean;
  expose?: string[];
  addHost?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  ulimit?: string[];
  init?: boolean;
  privileged?: boolean;
  readOnly?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  securityOpt?: string[];
  groupAdd?: string[];
  label?: string[];
  stopSignal?: string;
  stopTimeout?: string;
  interactive?: boolean;
  tty?: boolean;
  rm?: boolean;
  pull: string;
}

export function createOptions(cmd: Command): Command {
  commandSplitting.add(cmd);
  return cmd
    .argument('<image>', 'the image (a reference or an image ID); pulled when missing')
    .argument('[command...]', "the command and its arguments (default: the image's Entrypoint and Cmd)")
    .option('--name <name>', 'a name for the container (default: a generated one)')
    .option('-i, --interactive', "keep the container's stdin open and forward ours")
    .option('-t, --tty', 'give the process a pseudo-terminal')
    .option('--rm', 'remove the container when it exits')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (KEY alone takes ours)', collect)
    .option('--env-file <file>', 'read environment variables from a file', collect)
    .option('-w, --workdir <dir>', 'the working directory inside the container')
    .option('-u, --user <user>', 'NAME|UID[:GROUP|GID]')
    .option('--entrypoint <command>', "replace the image's entrypoint")
    .option('-v, --volume <SOURCE:CONTAINER[:ro]>', 'bind-mount a host path, or mount a named volume (made when missing)', collect)
    .option('--mount <type=volume|bind|tmpfs,source=…,target=…>', 'a mount, docker --mount syntax', collect)
    .option('--volumes-from <container[:ro|rw]>', "mount another container's volumes", collect)
    .option('--tmpfs <path[:options]>', 'mount a tmpfs', collect)
    .option('--hostname <name>', 'the container host name')
    .option('--network <network>', "bridge (the default), a network's name, none, host or container:NAME|ID")
    .option('--network-alias <alias>', 'another name for the container on its user network', collect)
    .option('--ip <address>', 'a fixed IPv4 address on its user network')
    .option('-p, --publish <[ip:][hostPort:]containerPort[/proto]>', "publish a container's port on the host", collect)
    .option('-P, --publish-all', 'publish every exposed port on a random host port')
    .option('--expose <port[/proto]>', 'expose a port (for -P)', collect)
    .option('--add-host <host:ip>', 'add a line to /etc/hosts', collect)
    .option('--dns <ip>', 'a DNS server for /etc/resolv.conf', collect)
    .option('--dns-search <domain>', 'a DNS search domain', collect)
    .option('--dns-option <option>', 'a resolv.conf option', collect)
    .option('-m, --memory <bytes>', 'memory limit (b, k, m, g)')
    .option('--cpus <n>', 'number of CPUs (a fraction is fine)')
    .option('--pids-limit <n>', 'process limit')
    .option('--ulimit <type=soft[:hard]>', 'a resource limit, as nofile=1024:2048', collect)
    .option('--init', 'run tini as PID 1 to reap zombies and forward signals')
    .option('--privileged', 'all capabilities, no seccomp, no masked paths, all devices')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('--cap-add <cap>', 'add a capability (or ALL)', collect)
    .option('--cap-drop <cap>', 'drop a capability (or ALL)', collect)
    .option('--security-opt <opt>', 'seccomp=unconfined|PROFILE.json, no-new-privileges', collect)
    .option('--group-add <group>', 'an additional group', collect)
    .option('-l, --label <key=value>', 'set a label', collect)
    .option('--stop-signal <signal>', 'the signal that stops the container')
    .option('--stop-timeout <seconds>', 'seconds to wait before killing on stop')
    .addOption(
      new Option('--pull <policy>', 'pull the image: missing, always or never').choices(['missing', 'always', 'never']).default('missing'),
    );
}

const units: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** docker's memory sizes: `512m`, `1g`, `1048576`. */
export function parseMemory(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(s.trim());
  if (!m) throw new InvalidArgumentError(`invalid memory size "${s}" (want a number with b, k, m or g)`);
  const n = Math.floor(Number(m[1]) * (units[(m[2] as string).toLowerCase()] as number));
  if (n < 6 * 1024 * 1024) throw new InvalidArgumentError(`minimum memory limit allowed is 6MB (got "${s}")`);
  return n;
}

function positiveInt(s: string, what: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`invalid ${what} "${s}"`);
  return n;
}

function parseUlimit(s: string): { Name: string; Soft: number; Hard: number } {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(s);
  if (!m) throw new InvalidArgumentError(`invalid ulimit "${s}" (want type=soft[:hard])`);
  const soft = Number(m[2]);
  const hard = m[3] !== undefined ? Number(m[3]) : soft;
  if (soft > hard) throw new InvalidArgumentError(`invalid ulimit "${s}": soft limit is above the hard limit`);
  return { Name: m[1] as string, Soft: soft, Hard: hard };
}

function readEnvFile(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

export function createOpts(flags: CreateFlags, command: string[]): CreateContainerOpts {
  const tmpfs: Record<string, string> = {};
  for (const t of flags.tmpfs ?? []) {
    const i = t.indexOf(':');
    tmpfs[i < 0 ? t : t.slice(0, i)] = i < 0 ? '' : t.slice(i + 1);
  }
  const opts: CreateContainerOpts = {
    env: [...(flags.envFile ?? []).flatMap(readEnvFile), ...(flags.env ?? [])],
    tty: flags.tty ?? false,
    openStdin: flags.interactive ?? false,
    labels: parseKeyValues(flags.label ?? []),
    host: {
      Binds: flags.volume ?? [],
      ...(flags.mount?.length ? { Mounts: flags.mount.map(parseMountFlag) } : {}),
      ...(flags.volumesFrom?.length ? { VolumesFrom: flags.volumesFrom } : {}),
      Tmpfs: tmpfs,
      ...(flags.network !== undefined ? { NetworkMode: flags.network } : {}),
      ...(flags.publish?.length ? { PortBindings: mergePorts(...flags.publish.map(parsePublish)) } : {}),
      ...(flags.publishAll ? { PublishAllPorts: true } : {}),
      ...(flags.addHost?.length ? { ExtraHosts: flags.addHost } : {}),
      ...(flags.dns?.length ? { Dns: flags.dns } : {}),
      ...(flags.dnsSearch?.length ? { DnsSearch: flags.dnsSearch } : {}),
      ...(flags.dnsOption?.length ? { DnsOptions: flags.dnsOption } : {}),
      Memory: flags.memory ? parseMemory(flags.memory) : 0,
      NanoCpus: flags.cpus ? Math.round(Number(flags.cpus) * 1e9) : 0,
      PidsLimit: flags.pidsLimit ? positiveInt(flags.pidsLimit, '--pids-limit') : 0,
      Ulimits: (flags.ulimit ?? []).map(parseUlimit),
      Init: flags.init ?? false,
      Privileged: flags.privileged ?? false,
      ReadonlyRootfs: flags.readOnly ?? false,
      CapAdd: flags.capAdd ?? [],
      CapDrop: flags.capDrop ?? [],
      SecurityOpt: flags.securityOpt ?? [],
      AutoRemove: flags.rm ?? false,
      GroupAdd: flags.groupAdd ?? [],
    },
  };
  if (flags.cpus !== undefined && !(Number(flags.cpus) > 0)) throw new InvalidArgumentError(`invalid --cpus "${flags.cpus}"`);
  if (command.length) opts.cmd = command;
  const exposed = [...(flags.expose ?? []), ...Object.keys(opts.host?.PortBindings ?? {})];
  if (exposed.length) opts.exposedPorts = exposed;
  if (flags.networkAlias?.length || flags.ip) {
    const net = flags.network ?? 'bridge';
    opts.networks = {
      [net]: { ...(flags.networkAlias?.length ? { Aliases: flags.networkAlias } : {}), ...(flags.ip ? { IPv4Address: flags.ip } : {}) },
    };
  }
  if (flags.name !== undefined) opts.name = flags.name;
  if (flags.workdir !== undefined) opts.workingDir = flags.workdir;
  if (flags.user !== undefined) opts.user = flags.user;
  if (flags.entrypoint !== undefined) opts.entrypoint = flags.entrypoint === '' ? [] : [flags.entrypoint];
  if (flags.hostname !== undefined) opts.hostname = flags.hostname;
  if (flags.stopSignal !== undefined) opts.stopSignal = flags.stopSignal;
  if (flags.stopTimeout !== undefined) opts.stopTimeout = Number(flags.stopTimeout);
  return opts;
}
