import type { Command } from 'commander';
import { example, withBerth } from './context.js';
import { formatLabels, parseKeyValues, printListing } from './output.js';

export function registerNamespace(program: Command): void {
  const ns = program.command('namespace').alias('namespaces').alias('ns').description('Manage namespaces');
  example(ns, 'berth namespace create k8s.io', 'berth namespace ls');

  example(
    ns
      .command('ls')
      .alias('list')
      .description('List namespaces')
      .option('-q, --quiet', 'print only names')
      .action(async (opts: { quiet?: boolean }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const list = b.metadata.namespaces.list();
          if (opts.quiet) {
            for (const n of list) process.stdout.write(`${n.name}\n`);
            return;
          }
          printListing(
            g.format,
            list,
            ['NAME', 'LABELS'],
            (n) => [n.name, formatLabels(n.labels)],
            (n) => ({ name: n.name, labels: n.labels, createdAt: n.createdAt, updatedAt: n.updatedAt }),
          );
        }),
      ),
    'berth namespace ls --format json',
  );

  example(
    ns
      .command('create')
      .description('Create a namespace, with optional labels')
      .argument('<name>')
      .argument('[labels...]', 'key=value labels')
      .action(async (name: string, labels: string[], _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b) => {
          b.metadata.namespaces.create(name, parseKeyValues(labels));
          process.stdout.write(`${name}\n`);
        }),
      ),
    'berth namespace create k8s.io team=platform',
  );

  example(
    ns
      .command('rm')
      .alias('remove')
      .description('Remove empty namespaces')
      .argument('<names...>')
      .action(async (names: string[], _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b) => {
          for (const name of names) {
            b.metadata.namespaces.remove(name);
            process.stdout.write(`${name}\n`);
          }
        }),
      ),
    'berth namespace rm scratch',
  );

  example(
    ns
      .command('label')
      .description('Set labels on a namespace (key= removes a label)')
      .argument('<name>')
      .argument('<labels...>', 'key=value labels')
      .action(async (name: string, labels: string[], _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b) => {
          const n = b.metadata.namespaces.setLabels(name, parseKeyValues(labels));
          process.stdout.write(`${formatLabels(n.labels)}\n`);
        }),
      ),
    'berth namespace label k8s.io owner=ops',
  );
}
