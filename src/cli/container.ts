import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { type Command, Option } from 'commander';
import { type Container, type Containers, type CreateContainerOpts, parseBind } from '../containers/index.js';
import { codeOf, exitCodes, hasCode, InvalidArgumentError } from '../errdefs/index.js';
import { formatReference, parseReference } from '../oci/index.js';
import { dockerTime, exitStatus, parseLogTime, readLog, resize } from '../runtime/index.js';
import type { Berth } from '../services/index.js';
import { example, type Globals, withBerth } from './context.js';
import { lookupImage } from './images.js';
import { humanDuration, parseKeyValues, printJSON, printListing } from './output.js';
import { pullImage } from './registry.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Commands whose arguments after the first operand belong to the container (docker's `run IMAGE CMD…`). */
export const commandSplitting = new WeakSet<Command>();

interface CreateFlags {
  name?: string;
  env?: string[];
  envFile?: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  volume?: string[];
  tmpfs?: string[];
  hostname?: string;
  network: string;
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

function createOptions(cmd: Command): Command {
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
    .option('-v, --volume <HOST:CONTAINER[:ro]>', 'bind-mount a host path', collect)
    .option('--tmpfs <path[:options]>', 'mount a tmpfs', collect)
    .option('--hostname <name>', 'the container host name')
    .addOption(
      new Option('--network <mode>', 'none: a network namespace with only lo; host: the host network')
        .choices(['none', 'host'])
        .default('none'),
    )
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

function createOpts(flags: CreateFlags, command: string[]): CreateContainerOpts {
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
      Tmpfs: tmpfs,
      NetworkMode: flags.network as 'none' | 'host',
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
  if (flags.name !== undefined) opts.name = flags.name;
  if (flags.workdir !== undefined) opts.workingDir = flags.workdir;
  if (flags.user !== undefined) opts.user = flags.user;
  if (flags.entrypoint !== undefined) opts.entrypoint = flags.entrypoint === '' ? [] : [flags.entrypoint];
  if (flags.hostname !== undefined) opts.hostname = flags.hostname;
  if (flags.stopSignal !== undefined) opts.stopSignal = flags.stopSignal;
  if (flags.stopTimeout !== undefined) opts.stopTimeout = Number(flags.stopTimeout);
  return opts;
}

/** Finds the image, pulling it when the policy says so (docker's "Unable to find image locally"). */
async function imageFor(b: Berth, g: Globals, arg: string, policy: string) {
  const ns = b.namespace(g.namespace);
  if (policy !== 'always') {
    try {
      return await lookupImage(ns, arg);
    } catch (err) {
      if (!hasCode(err, 'NOT_FOUND') || policy === 'never') throw err;
    }
    process.stderr.write(`Unable to find image '${arg}' locally\n`);
  }
  const reference = parseReference(arg);
  await pullImage(b, g, reference, { out: process.stderr });
  return lookupImage(ns, formatReference(reference));
}

async function createContainer(b: Berth, g: Globals, image: string, command: string[], flags: CreateFlags): Promise<Container> {
  const opts = createOpts(flags, command);
  const img = await imageFor(b, g, image, flags.pull);
  return b.containers(g.namespace).create(img, opts);
}

/**
 * Runs a started container in the foreground: its output to ours (stdout and stderr apart, or the
 * terminal), our stdin to it with -i, signals forwarded; returns its exit code once it is recorded.
 */
async function attachAndWait(containers: Containers, id: string, opts: { stdin: boolean }): Promise<Container> {
  const rec = containers.ns.containers.find(id);
  const tty = (rec.config as { Config: { Tty: boolean } }).Config.Tty;
  const size = tty && process.stdout.isTTY ? { rows: process.stdout.rows, cols: process.stdout.columns } : undefined;
  const { monitor, attachment } = await containers.start(id, { attach: true, ...(size ? { size } : {}) });
  if (!monitor || !attachment) return containers.get(id);
  const bundle = containers.paths(id).dir;
  const forward = (sig: NodeJS.Signals) => void containers.runc.kill(id, sig.replace(/^SIG/, '')).catch(() => {});
  const signals: NodeJS.Signals[] = tty ? [] : ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  for (const s of signals) process.on(s, forward);
  const onResize = () => resize(bundle, { rows: process.stdout.rows, cols: process.stdout.columns });
  if (size) process.stdout.on('resize', onResize);
  const raw = tty && opts.stdin && process.stdin.isTTY;
  if (raw) process.stdin.setRawMode(true);
  const onData = (d: Buffer) => attachment.write(d);
  const onEnd = () => attachment.closeStdin();
  if (opts.stdin) {
    process.stdin.on('data', onData);
    process.stdin.on('end', onEnd);
  }
  try {
    for await (const p of attachment.output) {
      const out = p.stream === 1 ? process.stdout : process.stderr;
      if (!out.write(p.data)) await new Promise((r) => out.once('drain', r));
    }
    await monitor.exited;
  } finally {
    attachment.close();
    for (const s of signals) process.off(s, forward);
    process.stdout.off('resize', onResize);
    if (opts.stdin) {
      process.stdin.off('data', onData);
      process.stdin.off('end', onEnd);
      process.stdin.destroy();
    }
    if (raw) process.stdin.setRawMode(false);
  }
  return containers.cleanup(id);
}

/** docker's exit codes for `run` failures: 125 berth's own, 126 not executable, 127 not found. */
function runFailure(err: unknown, debug: boolean): never {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`berth: ${msg}\n`);
  if (debug && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  const code = /executable file not found|no such file or directory/.test(msg) ? 127 : /permission denied/i.test(msg) ? 126 : 125;
  process.exit(code);
}

const exitCodeOf = (c: Container) => c.state.exitCode ?? 255;

function statusText(c: Container, now = Date.now()): string {
  const s = c.state;
  if (s.status === 'running') return `Up ${humanDuration(now - Date.parse(s.startedAt ?? ''))}`;
  if (s.status === 'created') return 'Created';
  const ago = s.finishedAt ? ` ${humanDuration(now - Date.parse(s.finishedAt))} ago` : '';
  return `Exited (${s.exitCode ?? 'unknown'})${ago}`;
}

function commandText(c: Container): string {
  const args = [...(c.config.Config.Entrypoint ?? []), ...c.config.Config.Cmd].join(' ');
  return JSON.stringify(args.length > 20 ? `${args.slice(0, 19)}…` : args);
}

/** docker's `inspect` document for a container. */
export function inspectContainer(containers: Containers, c: Container): Record<string, unknown> {
  const p = containers.paths(c.id);
  const cfg = c.config.Config;
  const args = [...(cfg.Entrypoint ?? []), ...cfg.Cmd];
  return {
    Id: c.id,
    Created: c.createdAt.toISOString(),
    Path: args[0],
    Args: args.slice(1),
    State: {
      Status: c.state.status,
      Running: c.state.status === 'running',
      Paused: false,
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
    LogPath: p.log,
    Name: `/${c.name}`,
    RestartCount: c.state.restartCount ?? 0,
    Driver: c.snapshotter,
    Platform: 'linux',
    HostConfig: c.config.HostConfig,
    GraphDriver: graphDriver(containers, c),
    Mounts: c.config.HostConfig.Binds.map((b) => {
      const { source, destination, readOnly, mode } = parseBind(b);
      return { Type: 'bind', Source: source, Destination: destination, Mode: mode, RW: !readOnly, Propagation: 'rprivate' };
    }),
    Config: cfg,
    NetworkSettings: { Networks: { [c.config.HostConfig.NetworkMode]: {} } },
  };
}

function graphDriver(containers: Containers, c: Container): Record<string, unknown> {
  return { Name: c.snapshotter, Data: containers.graphDriverData(c) };
}

/** Adds the container verbs to `parent` (top level: `run`, `ps`…; under `container`: `ls`, `rm`…). */
function defineVerbs(parent: Command, group: boolean): void {
  example(
    createOptions(parent.command('run').description('Create and start a container from an image'))
      .option('-d, --detach', 'run in the background and print the container ID')
      .action(async (image: string, command: string[], flags: CreateFlags & { detach?: boolean }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          let c: Container | undefined;
          const containers = b.containers(g.namespace);
          try {
            c = await createContainer(b, g, image, command, flags);
            if (flags.detach) {
              await containers.start(c.id);
              process.stdout.write(`${c.id}\n`);
              return;
            }
            const done = await attachAndWait(containers, c.id, { stdin: flags.interactive ?? false });
            process.exitCode = exitCodeOf(done);
          } catch (err) {
            if (c && flags.rm) await containers.remove(c.id, { force: true }).catch(() => {});
            runFailure(err, g.debug);
          }
        }),
      ),
    'berth run --rm busybox echo hi',
    'berth run -d --name web -v /srv:/srv:ro busybox httpd -f',
    'berth run -it --rm busybox sh',
  );

  example(
    createOptions(parent.command('create').description('Create a container (without starting it)')).action(
      async (image: string, command: string[], flags: CreateFlags, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const c = await createContainer(b, g, image, command, flags);
          process.stdout.write(`${c.id}\n`);
        }),
    ),
    'berth create --name job busybox sh -c "date; sleep 5"',
  );

  example(
    parent
      .command('start')
      .description('Start one or more stopped containers')
      .argument('<container...>')
      .option('-a, --attach', "attach to the container's output and exit with its code")
      .option('-i, --interactive', "forward our stdin to the container's")
      .action(async (refs: string[], flags: { attach?: boolean; interactive?: boolean }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const containers = b.containers(g.namespace);
          if (flags.attach || flags.interactive) {
            if (refs.length > 1) throw new InvalidArgumentError('you cannot start and attach multiple containers at once');
            const id = containers.ns.containers.find(refs[0] as string).id;
            process.exitCode = exitCodeOf(await attachAndWait(containers, id, { stdin: flags.interactive ?? false }));
            return;
          }
          await eachContainer(refs, async (ref) => {
            await containers.start(ref);
            return undefined;
          });
        }),
      ),
    'berth start web',
  );

  const ps = (cmd: Command) =>
    cmd
      .description('List containers')
      .option('-a, --all', 'show all containers (default: only running ones)')
      .option('-q, --quiet', 'print only IDs')
      .option('--no-trunc', 'do not truncate IDs and commands')
      .option('-f, --filter <key=value>', 'status=, name=, id=, label=, ancestor=', collect)
      .action(async (flags: { all?: boolean; quiet?: boolean; trunc: boolean; filter?: string[] }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const containers = b.containers(g.namespace);
          let list = await containers.list();
          const filters = flags.filter ?? [];
          if (!flags.all && !filters.some((f) => f.startsWith('status='))) list = list.filter((c) => c.state.status === 'running');
          list = list.filter((c) => filters.every((f) => matchFilter(c, f)));
          const id = (c: Container) => (flags.trunc ? c.id.slice(0, 12) : c.id);
          if (flags.quiet) {
            process.stdout.write(list.map((c) => `${id(c)}\n`).join(''));
            return;
          }
          printListing(
            g.format,
            list,
            ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
            (c) => [
              id(c),
              c.config.Config.Image,
              commandText(c),
              `${humanDuration(Date.now() - c.createdAt.getTime())} ago`,
              statusText(c),
              '',
              c.name,
            ],
            (c) => ({
              ID: c.id,
              Image: c.config.Config.Image,
              ImageID: c.imageId,
              Command: [...(c.config.Config.Entrypoint ?? []), ...c.config.Config.Cmd],
              CreatedAt: c.createdAt.toISOString(),
              State: c.state.status,
              Status: statusText(c),
              ExitCode: c.state.status === 'exited' ? c.state.exitCode : null,
              Names: c.name,
              Labels: c.labels,
            }),
          );
        }),
      );
  if (group) {
    example(ps(parent.command('ls').alias('list').alias('ps')), 'berth container ls -a');
  } else {
    example(ps(parent.command('ps')), 'berth ps -a --filter status=exited');
  }

  example(
    parent
      .command('logs')
      .description("Show a container's output (stdout and stderr kept apart)")
      .argument('<container>')
      .option('-f, --follow', 'keep printing new output until the container stops')
      .option('--tail <n>', 'only the last n lines ("all" for every line)', 'all')
      .option('--since <time>', 'only lines since a time (RFC 3339, Unix time or a duration like 10m)')
      .option('--until <time>', 'only lines before a time')
      .option('-t, --timestamps', 'prefix each line with its time')
      .action(
        async (
          ref: string,
          flags: { follow?: boolean; tail: string; since?: string; until?: string; timestamps?: boolean },
          cmd: Command,
        ) =>
          withBerth(cmd, async (b, g) => {
            const containers = b.containers(g.namespace);
            const c = await containers.get(ref);
            const tail = flags.tail === 'all' || flags.tail === '-1' ? undefined : Number(flags.tail);
            if (tail !== undefined && !(Number.isInteger(tail) && tail >= 0))
              throw new InvalidArgumentError(`invalid --tail "${flags.tail}"`);
            let running = c.state.status === 'running';
            let lastCheck = Date.now();
            const follow = () => {
              if (!flags.follow || !running) return false;
              if (Date.now() - lastCheck > 250) {
                lastCheck = Date.now();
                running = containers.ns.containers.find(c.id).state.status === 'running' && !exitStatus(containers.paths(c.id).persist);
              }
              return true;
            };
            for await (const r of readLog(containers.paths(c.id).log, {
              ...(tail !== undefined ? { tail } : {}),
              ...(flags.since ? { since: parseLogTime(flags.since) } : {}),
              ...(flags.until ? { until: parseLogTime(flags.until) } : {}),
              follow,
            })) {
              const out = r.stream === 'stdout' ? process.stdout : process.stderr;
              const data = flags.timestamps ? Buffer.concat([Buffer.from(`${dockerTime(r.time)} `), r.data]) : r.data;
              if (!out.write(data)) await new Promise((res) => out.once('drain', res));
            }
          }),
      ),
    'berth logs -f --tail 10 web',
  );

  example(
    parent
      .command('stop')
      .description('Stop running containers: the stop signal, then SIGKILL after a timeout')
      .argument('<container...>')
      .option('-t, --time <seconds>', "seconds to wait before killing (default: the container's StopTimeout, else 10)")
      .option('-s, --signal <signal>', "the signal to send first (default: the image's StopSignal, else SIGTERM)")
      .action(
        perContainer<{ time?: string; signal?: string }>(async (containers, ref, flags) => {
          await containers.stop(ref, {
            ...(flags.time !== undefined ? { timeout: Number(flags.time) } : {}),
            ...(flags.signal ? { signal: flags.signal } : {}),
          });
          return undefined;
        }),
      ),
    'berth stop -t 2 web',
  );

  example(
    parent
      .command('kill')
      .description('Send a signal to running containers')
      .argument('<container...>')
      .option('-s, --signal <signal>', 'the signal', 'KILL')
      .action(
        perContainer<{ signal: string }>(async (containers, ref, flags) => {
          await containers.kill(ref, flags.signal);
          return undefined;
        }),
      ),
    'berth kill -s HUP web',
  );

  example(
    parent
      .command('wait')
      .description('Wait for containers to stop and print their exit codes')
      .argument('<container...>')
      .action(
        perContainer(async (containers, ref) => {
          const code = exitCodeOf(await containers.wait(ref));
          process.exitCode = code;
          return String(code);
        }),
      ),
    'berth wait job',
  );

  const rm = parent.command('rm');
  if (group) rm.alias('remove');
  example(
    rm
      .description('Remove containers and their writable layers')
      .argument('<container...>')
      .option('-f, --force', 'kill and remove running containers')
      .action(
        perContainer<{ force?: boolean }>(
          async (containers, ref, flags) => {
            await containers.remove(ref, { force: flags.force ?? false });
            return undefined;
          },
          (b) => (b.settings.gcAfterRemove ? b.gc().then(() => {}) : Promise.resolve()),
        ),
      ),
    'berth rm -f web',
  );

  const execCmd = parent
    .command('exec')
    .description('Run a command in a running container')
    .argument('<container>')
    .argument('<command...>')
    .option('-i, --interactive', 'forward our stdin')
    .option('-t, --tty', 'give the process a pseudo-terminal')
    .option('-d, --detach', 'run in the background')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable', collect)
    .option('-w, --workdir <dir>', 'the working directory')
    .option('-u, --user <user>', 'NAME|UID[:GROUP|GID]')
    .option('--privileged', 'all capabilities for this process')
    .action(
      async (
        ref: string,
        command: string[],
        flags: {
          interactive?: boolean;
          tty?: boolean;
          detach?: boolean;
          env?: string[];
          workdir?: string;
          user?: string;
          privileged?: boolean;
        },
        cmd: Command,
      ) =>
        withBerth(cmd, async (b, g) => {
          const containers = b.containers(g.namespace);
          const { runcArgs, cleanup } = await containers.execArgs(ref, {
            cmd: command,
            env: flags.env ?? [],
            tty: flags.tty ?? false,
            privileged: flags.privileged ?? false,
            ...(flags.workdir ? { workingDir: flags.workdir } : {}),
            ...(flags.user ? { user: flags.user } : {}),
          });
          try {
            process.exitCode = await runExec(containers.runc.bin, runcArgs, flags);
          } finally {
            cleanup();
          }
        }),
    );
  commandSplitting.add(execCmd);
  example(execCmd, 'berth exec web ls /', 'berth exec -it web sh');

  example(
    parent
      .command('inspect')
      .description('Show containers in detail (docker-compatible JSON)')
      .argument('<container...>')
      .action(async (refs: string[], _flags: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const containers = b.containers(g.namespace);
          const out: unknown[] = [];
          for (const ref of refs) out.push(inspectContainer(containers, await containers.get(ref)));
          printJSON(out);
        }),
      ),
    'berth container inspect web',
  );

  example(
    parent
      .command('top')
      .description("Show a container's processes (ps options may follow)")
      .argument('<container>')
      .argument('[ps-options...]')
      .action(async (ref: string, psArgs: string[], _flags: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          process.stdout.write(await b.containers(g.namespace).top(ref, psArgs.length ? psArgs : undefined));
        }),
      ),
    'berth top web',
  );

  example(
    parent
      .command('rename')
      .description('Rename a container')
      .argument('<container>')
      .argument('<new-name>')
      .action(async (ref: string, name: string, _flags: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => b.containers(g.namespace).rename(ref, name)),
      ),
    'berth rename web web-old',
  );

  example(
    parent
      .command('commit')
      .description("Create an image from a container's changes")
      .argument('<container>')
      .argument('[repository[:tag]]')
      .option(
        '-c, --change <instruction>',
        'apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL)',
        collect,
      )
      .option('-m, --message <text>', 'commit message')
      .option('-a, --author <name>', 'author')
      .action(
        async (ref: string, repo: string | undefined, flags: { change?: string[]; message?: string; author?: string }, cmd: Command) =>
          withBerth(cmd, async (b, g) => {
            const r = await b.containers(g.namespace).commit(ref, {
              ...(repo ? { name: formatReference(parseReference(repo)) } : {}),
              changes: flags.change ?? [],
              ...(flags.message ? { comment: flags.message } : {}),
              ...(flags.author ? { author: flags.author } : {}),
            });
            process.stdout.write(`${r.imageId}\n`);
          }),
      ),
    'berth commit web web:patched',
    'berth commit --change \'CMD ["httpd","-f"]\' web web:2',
  );
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
    if (!filters.every((f) => pruneFilter(c, f))) continue;
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

function pruneFilter(c: Container, f: string): boolean {
  const i = f.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`invalid filter "${f}" (want key=value)`);
  const k = f.slice(0, i);
  const v = f.slice(i + 1);
  if (k === 'until') return c.createdAt.getTime() < parseLogTime(v);
  if (k === 'label') return matchFilter(c, f);
  if (k === 'label!') return !matchFilter(c, `label=${v}`);
  throw new InvalidArgumentError(`invalid filter "${k}" (want until, label or label!)`);
}

function matchFilter(c: Container, f: string): boolean {
  const i = f.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`invalid filter "${f}" (want key=value)`);
  const k = f.slice(0, i);
  const v = f.slice(i + 1);
  switch (k) {
    case 'status':
      return c.state.status === v;
    case 'name':
      return c.name.includes(v);
    case 'id':
      return c.id.startsWith(v);
    case 'label': {
      const j = v.indexOf('=');
      return j < 0 ? v in c.labels : c.labels[v.slice(0, j)] === v.slice(j + 1);
    }
    case 'ancestor':
      return c.config.Config.Image === v || c.image === v || c.imageId === v || c.imageId.slice(7).startsWith(v);
    case 'exited':
      return c.state.status === 'exited' && String(c.state.exitCode) === v;
    default:
      throw new InvalidArgumentError(`invalid filter "${k}" (want status, name, id, label, ancestor or exited)`);
  }
}

/**
 * Runs `fn` for each reference and prints what it returns (the reference, by default), docker's
 * manner: one failure is reported on its own line and the rest go on; the last failure's kind is
 * the exit code.
 */
async function eachContainer(refs: string[], fn: (ref: string) => Promise<string | undefined>): Promise<void> {
  let failed: unknown;
  for (const ref of refs) {
    try {
      process.stdout.write(`${(await fn(ref)) ?? ref}\n`);
    } catch (err) {
      if (refs.length === 1) throw err;
      process.stderr.write(`berth: ${(err as Error).message}\n`);
      failed = err;
    }
  }
  if (failed) process.exitCode = exitCodes[codeOf(failed)];
}

/** An action over the containers its arguments name (start, stop, kill, rm, wait). */
function perContainer<F>(
  fn: (containers: Containers, ref: string, flags: F) => Promise<string | undefined>,
  after?: (b: Berth) => Promise<void>,
) {
  return (refs: string[], flags: F, cmd: Command) =>
    withBerth(cmd, async (b, g) => {
      const containers = b.containers(g.namespace);
      try {
        await eachContainer(refs, (ref) => fn(containers, ref, flags));
      } finally {
        await after?.(b);
      }
    });
}

/**
 * Runs `runc exec` in the foreground. With -t and a terminal of ours, runc drives it; with -t and
 * no terminal, script(1) lends runc a pseudo-terminal, as a terminal would.
 */
function runExec(runc: string, args: string[], flags: { interactive?: boolean; tty?: boolean; detach?: boolean }): Promise<number> {
  let file = runc;
  let argv = flags.detach ? [...args.slice(0, -1), '--detach', args.at(-1) as string] : args;
  let stdin: 'inherit' | 'ignore' | 'pipe' = flags.interactive ? 'inherit' : 'ignore';
  if (flags.tty && !process.stdin.isTTY && !flags.detach) {
    const quoted = [runc, ...argv].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    file = 'script';
    argv = ['-q', '-e', '-f', '-E', 'never', '-c', quoted, '/dev/null'];
    // script passes an end of its input on as a NUL byte: without -i, its input stays open, empty.
    if (!flags.interactive) stdin = 'pipe';
  }
  const child = spawn(file, argv, { stdio: [stdin, 'inherit', 'inherit'] });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, forward);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      for (const s of signals) process.off(s, forward);
      resolve(code ?? 128 + (signal ? (osSignals[signal] ?? 1) : 1));
    });
  });
}

const osSignals = constants.signals as Record<string, number>;

export function registerContainers(program: Command): void {
  defineVerbs(program, false);
  const group = program.command('container').description('Manage containers');
  example(group, 'berth container ls -a', 'berth container run --rm busybox echo hi');
  defineVerbs(group, true);
  group
    .command('cleanup', { hidden: true })
    .description("Record a container's exit and release what it held (the monitor runs this)")
    .argument('<container>')
    .action(async (ref: string, _flags: unknown, cmd: Command) =>
      withBerth(cmd, async (b, g) => {
        try {
          await b.containers(g.namespace).cleanup(ref);
        } catch (err) {
          if (!hasCode(err, 'NOT_FOUND')) throw err;
        }
      }),
    );
}
