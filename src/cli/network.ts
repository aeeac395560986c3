import type { Command } from 'commander';
import { NotFoundError } from '../errdefs/index.js';
import { createNetwork, listNetworks, networkView, portList, pruneNetworks, removeNetwork } from '../services/index.js';
import { example, withBerth } from './context.js';
import { collect, confirm, parseKeyValues, printJSON, printListing, pruneOptions } from './output.js';

/** `berth network …` (docker's verbs) and `berth port`. */
export function registerNetworks(program: Command): void {
  const network = example(program.command('network').description('Manage networks'), 'berth network create app');
  example(
    network
      .command('create')
      .description('Create a bridge network')
      .argument('<name>')
      .option('-d, --driver <driver>', 'bridge (the only driver)', 'bridge')
      .option('--subnet <cidr>', 'an IPv4 subnet (default: a free /24 from 10.89.0.0/16)')
      .option('--gateway <ip>', 'the gateway address (default: the first in the subnet)')
      .option('--internal', 'no route out: containers reach only each other')
      .option('--label <key=value>', 'set a label', collect)
      .option('-o, --opt <key=value>', 'a driver option (recorded)', collect)
      .action(
        async (
          name: string,
          flags: { driver: string; subnet?: string; gateway?: string; internal?: boolean; label?: string[]; opt?: string[] },
          cmd: Command,
        ) =>
          withBerth(cmd, async (b) => {
            const net = createNetwork(b, name, {
              driver: flags.driver,
              ...(flags.subnet ? { subnet: flags.subnet } : {}),
              ...(flags.gateway ? { gateway: flags.gateway } : {}),
              internal: flags.internal ?? false,
              labels: parseKeyValues(flags.label ?? []),
              options: parseKeyValues(flags.opt ?? [], 'option'),
            });
            process.stdout.write(`${net.Id}\n`);
          }),
      ),
    'berth network create --subnet 10.89.7.0/24 app',
  );
  example(
    network
      .command('ls')
      .alias('list')
      .description('List networks')
      .option('-q, --quiet', 'print only IDs')
      .option('--no-trunc', 'do not truncate IDs')
      .option('-f, --filter <key=value>', 'name=, id=, driver=, label=, type=custom|builtin', collect)
      .action(async (flags: { quiet?: boolean; trunc: boolean; filter?: string[] }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const list = listNetworks(b, flags.filter ?? []);
          const id = (s: string) => (flags.trunc ? s.slice(0, 12) : s);
          if (flags.quiet) {
            process.stdout.write(list.map((n) => `${id(n.Id)}\n`).join(''));
            return;
          }
          printListing(
            g.format,
            list,
            ['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'],
            (n) => [id(n.Id), n.Name, n.Driver, 'local'],
            (n) => ({
              ID: n.Id,
              Name: n.Name,
              Driver: n.Driver,
              Scope: 'local',
              Internal: n.Internal,
              Labels: n.Labels,
              Subnet: n.Subnet ?? '',
            }),
          );
        }),
      ),
    'berth network ls --filter type=custom',
  );
  example(
    network
      .command('inspect')
      .description('Show networks in detail, with their running containers (docker-compatible JSON)')
      .argument('<network...>')
      .action(async (refs: string[], _f: unknown, cmd: Command) =>
        withBerth(cmd, async (b) => printJSON(refs.map((r) => networkView(b, b.network.store.find(r))))),
      ),
    'berth network inspect app',
  );
  example(
    network
      .command('rm')
      .alias('remove')
      .description('Remove networks (refused while containers run on them)')
      .argument('<network...>')
      .action(async (refs: string[], _f: unknown, cmd: Command) =>
        withBerth(cmd, async (b) => {
          for (const r of refs) {
            await removeNetwork(b, r);
            process.stdout.write(`${r}\n`);
          }
        }),
      ),
    'berth network rm app',
  );
  example(
    network
      .command('connect')
      .description('Connect a container to a network (now when it runs, and at its next starts)')
      .argument('<network>')
      .argument('<container>')
      .option('--alias <alias>', 'another name for it on this network', collect)
      .option('--ip <address>', 'a fixed IPv4 address')
      .action(async (net: string, ref: string, flags: { alias?: string[]; ip?: string }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          await b.containers(g.namespace).connect(ref, b.network.store.find(net), {
            ...(flags.alias?.length ? { Aliases: flags.alias } : {}),
            ...(flags.ip ? { IPv4Address: flags.ip } : {}),
          });
        }),
      ),
    'berth network connect --alias db app postgres',
  );
  example(
    network
      .command('disconnect')
      .description('Disconnect a container from a network')
      .argument('<network>')
      .argument('<container>')
      .option('-f, --force', 'accepted for docker compatibility')
      .action(async (net: string, ref: string, _f: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          await b.containers(g.namespace).disconnect(ref, b.network.store.find(net));
        }),
      ),
    'berth network disconnect app postgres',
  );
  example(
    pruneOptions(network.command('prune').description('Remove the user networks no running container is on')).action(
      async (flags: { force?: boolean; filter?: string[] }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          await confirm(flags.force, 'WARNING! This will remove all custom networks not used by at least one container.\n');
          const removed = await pruneNetworks(b, flags.filter ?? []);
          if (g.format === 'json') printJSON({ NetworksDeleted: removed });
          else if (removed.length) process.stdout.write(`Deleted Networks:\n${removed.map((n) => `${n}\n`).join('')}`);
        }),
    ),
    'berth network prune -f',
  );

  example(
    program
      .command('port')
      .description("List a container's published ports, or the host side of one")
      .argument('<container>')
      .argument('[port]', 'PORT[/PROTO]')
      .action(async (ref: string, want: string | undefined, _f: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const c = await b.containers(g.namespace).get(ref);
          let list = portList(c).filter((p) => p.PublicPort !== undefined);
          if (want !== undefined) {
            const [port, proto = 'tcp'] = want.split('/');
            list = list.filter((p) => String(p.PrivatePort) === port && p.Type === proto);
            if (list.length === 0) throw new NotFoundError(`no public port '${want}' published for ${c.name}`);
          }
          if (g.format === 'json') {
            printJSON(list);
            return;
          }
          const text = list.map((p) => `${want === undefined ? `${p.PrivatePort}/${p.Type} -> ` : ''}${p.IP}:${p.PublicPort}\n`).join('');
          process.stdout.write(text);
        }),
      ),
    'berth port web 80',
  );
}
