import type { Command } from 'commander';
import { DataLossError, InvalidArgumentError } from '../errdefs/index.js';
import type { GCResult } from '../gc/index.js';
import { verifyImage } from '../images/index.js';
import { parseDuration } from '../runtime/index.js';
import {
  checkRoot,
  lookupImage,
  networkLeftovers,
  pruneBuildCache,
  pruneContainers,
  pruneImages,
  settingKeys,
  writeSetting,
} from '../services/index.js';

import { example, type Globals, withBerth } from './context.js';
import {
  collect,
  confirm,
  formatLabels,
  humanDuration,
  humanSize,
  parseKeyValues,
  printJSON,
  printListing,
  pruneOptions,
} from './output.js';
import { ProgressView } from './progress.js';
import { imageSize, systemDf } from './sizes.js';

/** gc, lease, system df/prune/config, image prune/size, container prune. */
export function registerDisk(program: Command): void {
  example(
    program
      .command('gc')
      .description(
        'Collect garbage: content, snapshots, leases and ingests nothing references any more, and network attachments of containers that do not run',
      )
      .option('--dry-run', 'show what would be removed, remove nothing')
      .action(async (flags: { dryRun?: boolean }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const r = await b.gc({ dryRun: flags.dryRun ?? false });
          const networks = (await networkLeftovers(b, { repair: !flags.dryRun })).map((f) => f.subject);
          if (g.format === 'json') printJSON({ ...r, networks });
          else {
            printGC(r, flags.dryRun ?? false);
            if (networks.length)
              process.stdout.write(`${flags.dryRun ? 'Would release' : 'Released'} what crashes left: ${networks.join(', ')}\n`);
          }
        }),
      ),
    'berth gc --dry-run',
  );

  registerLeases(program);

  const system = example(program.command('system').description('Disk usage, pruning and settings of the whole root'), 'berth system df -v');
  example(
    system
      .command('df')
      .description('Show disk usage: images (shared parts once), containers, content store, snapshots')
      .option('-v, --verbose', 'show every image and container')
      .option('-A, --all-namespaces', 'every namespace, each on its own')
      .action(async (flags: { verbose?: boolean; allNamespaces?: boolean }, cmd: Command) =>
        withBerth(cmd, async (b, g) => systemDf(b, g, flags)),
      ),
    'berth system df -v',
  );
  example(
    pruneOptions(
      system
        .command('prune')
        .description('Remove stopped containers, dangling images (all unused with -a) and garbage')
        .option('-a, --all', 'remove every image no container uses, not only dangling ones'),
    ).action(async (flags: { all?: boolean; force?: boolean; filter?: string[] }, cmd: Command) =>
      withBerth(cmd, async (b, g) => {
        await confirm(
          flags.force,
          `WARNING! This will remove:\n  - all stopped containers\n  - all ${flags.all ? 'images without at least one container associated to them' : 'dangling images'}\n  - all build cache\n  - content and snapshots no image, container or lease holds\n`,
        );
        const containers = await pruneContainers(b, g.namespace, flags.filter ?? []);
        const images = await pruneImages(b, g.namespace, { all: flags.all ?? false, filters: flags.filter ?? [] });
        await pruneBuildCache(b, g.namespace, { collect: false });
        const gc = await b.gc();
        printPrune(g, { containers: containers.ids, images, gc, reclaimed: containers.reclaimed + gc.reclaimed });
      }),
    ),
    'berth system prune -a -f',
  );
  example(
    system
      .command('config')
      .description(`Show or change the root's settings (${settingKeys.join(', ')})`)
      .argument('[key]')
      .argument('[value]', 'true or false')
      .action(async (key: string | undefined, value: string | undefined, _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          let s = b.settings;
          if (key !== undefined && value !== undefined) s = await writeSetting(b.root, key, value);
          else if (key !== undefined && !(settingKeys as string[]).includes(key)) {
            throw new InvalidArgumentError(`unknown setting "${key}" (want ${settingKeys.join(', ')})`);
          }
          const shown = key !== undefined ? { [key]: s[key as keyof typeof s] } : s;
          if (g.format === 'json') printJSON(shown);
          else for (const [k, v] of Object.entries(shown)) process.stdout.write(`${k}=${v}\n`);
        }),
      ),
    'berth system config keepCompressedLayers false',
  );

  example(
    program
      .command('fsck')
      .description('Check the store: re-hash every blob, check every reference, find orphans and stale mounts')
      .option('--repair', 'remove orphans and corrupt blobs, drop dangling records, label broken images (never a healthy blob)')
      .action(async (flags: { repair?: boolean }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const progress = new ProgressView();
          let total = 0;
          const findings = await checkRoot(b, {
            repair: flags.repair ?? false,
            onProgress: (e) => {
              total = e.total;
              progress.update({ ref: 'fsck', offset: e.done, total }, 'Re-hashing blobs');
            },
          });
          progress.update({ ref: 'fsck', offset: total, total }, 'Re-hashing blobs');
          const errors = findings.filter((f) => f.severity === 'error' && !f.repaired);
          if (g.format === 'json') printJSON(findings);
          else {
            for (const f of findings) {
              process.stdout.write(
                `${f.severity.padEnd(6)}  ${f.kind.padEnd(26)}  ${f.subject}: ${f.message}${f.repaired ? ` [repaired: ${f.repaired}]` : ''}\n`,
              );
            }
            const orphans = findings.filter((f) => f.severity === 'orphan').length;
            process.stdout.write(
              `${findings.length - orphans} errors, ${orphans} orphans${flags.repair ? `, ${findings.filter((f) => f.repaired).length} repaired` : orphans ? ' (berth gc or fsck --repair removes them)' : ''}\n`,
            );
          }
          if (errors.length > 0) throw new DataLossError(`fsck: ${errors.length} error${errors.length === 1 ? '' : 's'} found`);
        }),
      ),
    'berth fsck --repair',
  );

  const image = program.commands.find((c) => c.name() === 'image') as Command;
  example(
    image
      .command('verify')
      .description("Walk an image's hash chain: manifest → config (image ID) → layers → diffIDs → unpacked snapshots")
      .argument('<image>')
      .action(async (ref: string, _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const ns = b.namespace(g.namespace);
          const { name, resolved } = await lookupImage(ns, ref);
          const links = await verifyImage(ns.content, resolved, { snapshots: b.snapshotter(g.namespace) });
          if (g.format === 'json') printJSON({ name, id: resolved.config.digest, links });
          else {
            for (const l of links) {
              const what = l.layer === undefined ? l.link : `${l.link} ${l.layer + 1}`;
              process.stdout.write(`${l.ok ? 'ok    ' : 'FAILED'}  ${what.padEnd(10)}  ${l.digest}  ${l.detail}\n`);
            }
          }
          const bad = links.filter((l) => !l.ok);
          if (bad.length > 0)
            throw new DataLossError(`image ${name}: ${bad.length} link${bad.length === 1 ? '' : 's'} of the hash chain broken`);
          if (g.format !== 'json') process.stdout.write(`${name}: every link holds; image ID ${resolved.config.digest}\n`);
        }),
      ),
    'berth image verify busybox',
  );
  example(
    pruneOptions(
      image
        .command('prune')
        .description('Remove dangling images (every image no container uses with -a), then collect garbage')
        .option('-a, --all', 'remove every image no container uses'),
    ).action(async (flags: { all?: boolean; force?: boolean; filter?: string[] }, cmd: Command) =>
      withBerth(cmd, async (b, g) => {
        await confirm(
          flags.force,
          flags.all
            ? 'WARNING! This will remove all images without at least one container associated to them.\n'
            : 'WARNING! This will remove all dangling images.\n',
        );
        const images = await pruneImages(b, g.namespace, { all: flags.all ?? false, filters: flags.filter ?? [] });
        const gc = await b.gc();
        printPrune(g, { images, gc, reclaimed: gc.reclaimed });
      }),
    ),
    'berth image prune -a --filter until=24h',
  );
  example(
    image
      .command('size')
      .description('Explain the sizes of one image: content, unpacked, on disk, unique and shared, layer by layer')
      .argument('<image>')
      .action(async (ref: string, _o: unknown, cmd: Command) => withBerth(cmd, async (b, g) => imageSize(b, g, ref))),
    'berth image size busybox',
  );

  const container = program.commands.find((c) => c.name() === 'container') as Command;
  example(
    pruneOptions(container.command('prune').description('Remove all stopped containers')).action(
      async (flags: { force?: boolean; filter?: string[] }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          await confirm(flags.force, 'WARNING! This will remove all stopped containers.\n');
          const r = await pruneContainers(b, g.namespace, flags.filter ?? []);
          printPrune(g, { containers: r.ids, reclaimed: r.reclaimed });
        }),
    ),
    'berth container prune -f',
  );
}

/** The flags every prune takes. */
function printGC(r: GCResult, dryRun: boolean): void {
  const verb = dryRun ? 'Would remove' : 'Removed';
  const n = (count: number, one: string) => `${count} ${one}${count === 1 ? '' : 's'}`;
  const sum = (xs: { size: number }[]) => humanSize(xs.reduce((a, x) => a + x.size, 0));
  for (const x of r.blobs) process.stdout.write(`${dryRun ? 'would delete' : 'deleted'}: ${x.digest}\n`);
  for (const x of r.snapshots) process.stdout.write(`${dryRun ? 'would delete' : 'deleted'}: snapshot ${x.driver}/${x.id} (${x.name})\n`);
  process.stdout.write(
    `${verb} ${n(r.blobs.length, 'blob')} (${sum(r.blobs)}), ${n(r.snapshots.length, 'snapshot')} (${sum(r.snapshots)}), ` +
      `${n(r.leases.length, 'expired lease')}, ${n(r.ingests.length, 'stale ingest')} (${sum(r.ingests)}), ` +
      `${n(r.orphans.length, 'orphaned directory')} (${sum(r.orphans)}); ` +
      `${n(r.contentRefs.length, 'content reference')} and ${n(r.snapshotRefs.length, 'snapshot name')} dropped\n`,
  );
  process.stdout.write(`Total ${dryRun ? 'reclaimable' : 'reclaimed'} space: ${humanSize(r.reclaimed)}\n`);
}

function printPrune(
  g: Globals,
  r: { containers?: string[]; images?: { untagged: string[]; deleted: string[] }; gc?: GCResult; reclaimed: number },
): void {
  if (g.format === 'json') {
    printJSON({
      ...(r.containers ? { containersDeleted: r.containers } : {}),
      ...(r.images ? { imagesUntagged: r.images.untagged, imagesDeleted: r.images.deleted } : {}),
      ...(r.gc ? { blobsDeleted: r.gc.blobs.map((b) => b.digest), snapshotsDeleted: r.gc.snapshots.length } : {}),
      spaceReclaimed: r.reclaimed,
    });
    return;
  }
  const out: string[] = [];
  if (r.containers?.length) out.push('Deleted Containers:', ...r.containers, '');
  const deleted = [...(r.images?.deleted ?? []), ...(r.gc?.blobs.map((b) => b.digest) ?? [])];
  if (r.images && (r.images.untagged.length || deleted.length)) {
    out.push(
      'Deleted Images:',
      ...r.images.untagged.map((u) => `untagged: ${u}`),
      ...[...new Set(deleted)].map((d) => `deleted: ${d}`),
      '',
    );
  }
  out.push(`Total reclaimed space: ${humanSize(r.reclaimed)}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

function registerLeases(program: Command): void {
  const lease = example(
    program.command('lease').alias('leases').description('Leases: hold content and snapshots against garbage collection'),
    'berth lease ls',
  );
  example(
    lease
      .command('ls')
      .alias('list')
      .description('List leases')
      .option('-q, --quiet', 'print only IDs')
      .action(async (flags: { quiet?: boolean }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const leases = b.namespace(g.namespace).leases;
          const list = leases.list();
          if (flags.quiet) {
            for (const l of list) process.stdout.write(`${l.id}\n`);
            return;
          }
          const now = Date.now();
          printListing(
            g.format,
            list.map((l) => ({ ...l, resources: leases.listResources(l.id) })),
            ['ID', 'CREATED', 'EXPIRES', 'RESOURCES', 'LABELS'],
            (l) => [
              l.id,
              `${humanDuration(now - l.createdAt.getTime())} ago`,
              l.expiresAt ? (l.expiresAt.getTime() > now ? `in ${humanDuration(l.expiresAt.getTime() - now)}` : 'expired') : 'never',
              String(l.resources.length),
              formatLabels(l.labels),
            ],
            (l) => ({
              id: l.id,
              createdAt: l.createdAt.toISOString(),
              expiresAt: l.expiresAt?.toISOString() ?? null,
              labels: l.labels,
              resources: l.resources,
            }),
          );
        }),
      ),
    'berth lease ls',
  );
  example(
    lease
      .command('create')
      .description('Create a lease; what is recorded in it stays until it is removed or expires')
      .option('--id <id>', 'the lease ID (default: generated)')
      .option('--expires <duration>', 'expire after this long (10m, 24h); 0 never', '24h')
      .option('-l, --label <key=value>', 'a label (repeatable)', collect)
      .action(async (flags: { id?: string; expires: string; label?: string[] }, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          const ms = flags.expires === '0' ? 0 : parseDuration(flags.expires);
          if (ms === undefined)
            throw new InvalidArgumentError(`invalid --expires "${flags.expires}" (want a duration like 10m or 24h, or 0)`);
          const l = b.namespace(g.namespace).leases.create({
            ...(flags.id ? { id: flags.id } : {}),
            labels: parseKeyValues(flags.label ?? []),
            ...(ms > 0 ? { expiresAt: new Date(Date.now() + ms) } : {}),
          });
          process.stdout.write(`${l.id}\n`);
        }),
      ),
    'berth lease create --expires 1h',
  );
  example(
    lease
      .command('rm')
      .alias('delete')
      .description('Remove leases; what only they held goes with the next garbage collection')
      .argument('<id...>')
      .action(async (ids: string[], _o: unknown, cmd: Command) =>
        withBerth(cmd, async (b, g) => {
          for (const id of ids) {
            b.namespace(g.namespace).leases.delete(id);
            process.stdout.write(`${id}\n`);
          }
          if (b.settings.gcAfterRemove) await b.gc();
        }),
      ),
    'berth lease rm my-lease',
  );
}
