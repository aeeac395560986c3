import type { Command } from 'commander';
import { listVolumes, pruneVolumes, removeVolume, volumeView } from '../services/index.js';
import { example, withBerth } from './context.js';
import { collect, confirm, humanSize, parseKeyValues, printJSON, printListing, pruneOptions } from './output.js';

/** `berth volume …`, docker's verbs over the local driver. */
export function registerVolumes(program: Command): void {
  const volume = example(program.command('volume').description('Manage volumes'), 'berth volume create data');
  example(
    volume
      .command('create')
      .description('Create a volume (a name that exists is returned as it is)')
      .argument('[name]', 'default: a random one')
      .option('-d, --driver <driver>', 'local (the only driver)', 'local')
      .option('--label <key=value>', 'set a label', collect)
      .option('-o, --opt <key=value>', 'local driver options: type=, device=, o= (a mount made at first use)', collect)
      .action(async (name: string | undefined, flags: { driver: string; label?: string[]; opt?: string[] }, cmd: Command) =>
        withBerth(cmd, async (b) => {
          const v = b.volumes.create(name, {
            driver: flags.driver,
            labels: parseKeyValues(flags.label ?? []),
            options: parseKeyValues(flags.opt ?? [], 'option'),
          });
          process.stdout.write(`${v.Name}\n`);
        }),
      ),
    'berth volume create -o type=tmpfs -o device=tmpfs -o o=size=64m scratch',
  );
  example(
    volume
      .command('ls')
      .alias('list')
      .description('List volumes')
      .option('-q, --quiet', 'print only names')
      .option('-f, --filter <key=value>', 'name=, driver=, label=, dangling=true|false', collect)
      .action(async (flags: { quiet?: boolean; filter?: string[] }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const list = listVolumes(b, flags.filter ?? []);
          if (flags.quiet) {
            process.stdout.write(list.map((v) => `${v.Name}\n`).join(''));
            return;
          }
          printListing(
            g.format,
            list,
            ['DRIVER', 'VOLUME NAME'],
            (v) => [v.Driver, v.Name],
            (v) => volumeView(b, v),
          );
        }),
      ),
    'berth volume ls --filter dangling=true',
  );
  example(
    volume
      .command('inspect')
      .description('Show volumes in detail (docker-compatible JSON)')
      .argument('<volume...>')
      .action(async (names: string[], _f: unknown, cmd: Command) =>
        withBerth(cmd, async (b) => printJSON(names.map((n) => volumeView(b, b.volumes.get(n))))),
      ),
    'berth volume inspect data',
  );
  example(
    volume
      .command('rm')
      .alias('remove')
      .description('Remove volumes (refused while a container uses one)')
      .argument('<volume...>')
      .option('-f, --force', 'accepted for docker compatibility')
      .action(async (names: string[], _f: unknown, cmd: Command) =>
        withBerth(cmd, async (b) => {
          for (const n of names) {
            await removeVolume(b, n);
            process.stdout.write(`${n}\n`);
          }
        }),
      ),
    'berth volume rm data',
  );
  example(
    pruneOptions(volume.command('prune').description('Remove anonymous volumes no container uses (every unused one with -a)'))
      .option('-a, --all', 'named volumes too')
      .action(async (flags: { all?: boolean; force?: boolean; filter?: string[] }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          await confirm(flags.force, 'WARNING! This will remove anonymous local volumes not used by at least one container.\n');
          const r = await pruneVolumes(b, { all: flags.all ?? false, filters: flags.filter ?? [] });
          if (g.format === 'json') printJSON({ VolumesDeleted: r.removed, SpaceReclaimed: r.reclaimed });
          else {
            if (r.removed.length) process.stdout.write(`Deleted Volumes:\n${r.removed.map((n) => `${n}\n`).join('')}\n`);
            process.stdout.write(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
          }
        }),
      ),
    'berth volume prune -a -f',
  );
}
