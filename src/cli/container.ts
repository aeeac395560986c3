import type { Command } from 'commander';
import type { Container, Containers } from '../containers/index.js';
import { codeOf, exitCodes, hasCode, InvalidArgumentError } from '../errdefs/index.js';
import { formatReference, parseReference } from '../oci/index.js';
import { dockerTime, parseLogTime } from '../runtime/index.js';
import { type Berth, commandText, exitCodeOf, inspectContainer, matchFilter, portList, portsText, statusText } from '../services/index.js';
import { type CreateFlags, commandSplitting, createOptions, createOpts } from './container-flags.js';

import { example, type Globals, withBerth } from './context.js';
import { attachAndWait, runExec, runFailure } from './foreground.js';
import { collect, humanDuration, printJSON, printListing } from './output.js';
import { imageFor } from './registry.js';

async function createContainer(b: Berth, g: Globals, image: string, command: string[], flags: CreateFlags): Promise<Container> {
  const opts = createOpts(flags, command);
  const img = await imageFor(b, g, image, flags.pull);
  return b.containers(g.namespace).create(img, opts);
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
            if (c && flags.rm) await containers.remove(c.id, { force: true, volumes: true }).catch(() => {});
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
              portsText(c),
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
              Ports: portList(c),
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
            for await (const r of containers.logs(c, {
              ...(tail !== undefined ? { tail } : {}),
              ...(flags.since ? { since: parseLogTime(flags.since) } : {}),
              ...(flags.until ? { until: parseLogTime(flags.until) } : {}),
              follow: flags.follow ?? false,
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

  for (const verb of ['pause', 'unpause'] as const) {
    example(
      parent
        .command(verb)
        .description(verb === 'pause' ? 'Freeze every process of running containers' : 'Thaw paused containers')
        .argument('<container...>')
        .action(
          perContainer(async (containers, ref) => {
            await containers[verb](ref);
            return undefined;
          }),
        ),
      `berth ${verb} web`,
    );
  }

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
      .option('-v, --volumes', 'remove their anonymous volumes too')
      .action(
        perContainer<{ force?: boolean; volumes?: boolean }>(
          async (containers, ref, flags) => {
            await containers.remove(ref, { force: flags.force ?? false, volumes: flags.volumes ?? false });
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
          for (const ref of refs) out.push(inspectContainer(b, containers, await containers.get(ref)));
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
