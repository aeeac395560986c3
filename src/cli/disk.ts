import type { Command } from 'commander';
import { DataLossError, InvalidArgumentError } from '../errdefs/index.js';
import { type GCResult, listBlobs } from '../gc/index.js';
import { type ImageUsage, verifyImage } from '../images/index.js';
import { setSnapshotUsage } from '../metadata/index.js';
import { type Digest, digestHex, familiarName, parseReference } from '../oci/index.js';
import { parseDuration } from '../runtime/index.js';
import {
  type Berth,
  checkRoot,
  lookupImage,
  networkLeftovers,
  pruneContainers,
  pruneImages,
  settingKeys,
  volumeUsage,
  writeSetting,
} from '../services/index.js';
import { storedUsage } from '../snapshots/index.js';

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
  renderTable,
} from './output.js';
import { ProgressView } from './progress.js';

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
          `WARNING! This will remove:\n  - all stopped containers\n  - all ${flags.all ? 'images without at least one container associated to them' : 'dangling images'}\n  - content and snapshots no image, container or lease holds\n`,
        );
        const containers = await pruneContainers(b, g.namespace, flags.filter ?? []);
        const images = await pruneImages(b, g.namespace, { all: flags.all ?? false, filters: flags.filter ?? [] });
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

const displayName = (u: ImageUsage): { repo: string; tag: string } => {
  try {
    const r = parseReference(u.name);
    return { repo: familiarName(r), tag: r.tag ?? '<none>' };
  } catch {
    return { repo: u.name, tag: '<none>' };
  }
};
const shortId = (d: Digest | undefined) => (d ? digestHex(d).slice(0, 12) : '<missing>');
const pct = (part: number, whole: number) => (whole > 0 ? ` (${Math.round((part / whole) * 100)}%)` : '');

async function systemDf(b: Berth, g: Globals, flags: { verbose?: boolean; allNamespaces?: boolean }): Promise<void> {
  const usage = await b.imageUsage();
  const namespaces = flags.allNamespaces ? b.metadata.namespaces.list().map((n) => n.name) : [g.namespace];
  const reports = [];
  const volumes = await volumeUsage(b);
  const volumesUnused = volumes.filter((v) => v.RefCount === 0);
  const volumeTotals = {
    total: volumes.length,
    active: volumes.length - volumesUnused.length,
    size: volumes.reduce((n, v) => n + v.Size, 0),
    reclaimable: volumesUnused.reduce((n, v) => n + v.Size, 0),
    items: volumes.map((v) => ({ name: v.Name, links: v.RefCount, size: v.Size })),
  };
  for (const ns of namespaces) {
    const images = usage.images.filter((u) => u.namespace === ns);
    const unused = images.filter((u) => u.containers === 0);
    const containers = b.containers(ns);
    const list = await containers.list();
    const sized = [];
    for (const c of list) sized.push({ c, size: (await containers.usage(c)).writable });
    const stopped = sized.filter((x) => x.c.state.status !== 'running');
    reports.push({
      namespace: ns,
      images: {
        total: images.length,
        active: images.length - unused.length,
        size: usage.size(images),
        reclaimable: usage.reclaimable(unused),
        items: images,
      },
      containers: {
        total: list.length,
        active: list.length - stopped.length,
        size: sized.reduce((n, x) => n + x.size, 0),
        reclaimable: stopped.reduce((n, x) => n + x.size, 0),
        items: sized.map((x) => ({
          id: x.c.id,
          name: x.c.name,
          image: x.c.image,
          status: x.c.state.status,
          created: x.c.createdAt,
          size: x.size,
        })),
      },
      volumes: volumeTotals,
      buildCache: { total: 0, active: 0, size: 0, reclaimable: 0 },
    });
  }
  const dropped = new Map<string, number>();
  for (const u of usage.images) for (const l of u.layers) if (!l.stored) dropped.set(l.digest, l.compressed);
  const store = {
    ...(await storeTotals(b)),
    droppedLayers: { count: dropped.size, size: [...dropped.values()].reduce((n, x) => n + x, 0) },
  };
  if (g.format === 'json') {
    printJSON({ namespaces: reports, store });
    return;
  }
  const out: string[] = [];
  for (const r of reports) {
    if (flags.allNamespaces) out.push(`Namespace ${r.namespace}:`);
    out.push(
      renderTable(
        ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'],
        [
          ['Images', r.images, 'image'],
          ['Containers', r.containers, 'container'],
          ['Local Volumes', r.volumes, 'volume'],
          ['Build Cache', r.buildCache, 'build'],
        ].map(([name, x]) => {
          const v = x as { total: number; active: number; size: number; reclaimable: number };
          return [
            name as string,
            String(v.total),
            String(v.active),
            humanSize(v.size),
            `${humanSize(v.reclaimable)}${pct(v.reclaimable, v.size)}`,
          ];
        }),
      ).trimEnd(),
    );
    if (flags.verbose) {
      const now = Date.now();
      out.push(
        '',
        'Images space usage:',
        '',
        renderTable(
          ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS'],
          r.images.items.map((u) => {
            const { repo, tag } = displayName(u);
            const created = Date.parse(u.created ?? '');
            return [
              repo,
              tag,
              shortId(u.id),
              Number.isNaN(created) ? 'N/A' : `${humanDuration(now - created)} ago`,
              humanSize(u.total),
              humanSize(u.shared),
              humanSize(u.unique),
              String(u.containers),
            ];
          }),
        ).trimEnd(),
        '',
        'Containers space usage:',
        '',
        renderTable(
          ['CONTAINER ID', 'IMAGE', 'SIZE', 'CREATED', 'STATUS', 'NAMES'],
          r.containers.items.map((c) => [
            c.id.slice(0, 12),
            c.image,
            humanSize(c.size),
            `${humanDuration(now - c.created.getTime())} ago`,
            c.status,
            c.name,
          ]),
        ).trimEnd(),
        '',
        'Local Volumes space usage:',
        '',
        renderTable(
          ['VOLUME NAME', 'LINKS', 'SIZE'],
          r.volumes.items.map((v) => [v.name, String(v.links), humanSize(v.size)]),
        ).trimEnd(),
      );
    }
    out.push('');
  }
  out.push(
    'On disk (the whole root, every namespace; blobs and snapshots are stored once):',
    `  Content store:  ${store.blobs.count} blobs, ${humanSize(store.blobs.size)}`,
    `  Snapshots:      ${store.snapshots.count}, ${humanSize(store.snapshots.size)}`,
    `  Ingests:        ${store.ingests.count}, ${humanSize(store.ingests.size)}`,
    `  Garbage now:    ${humanSize(store.garbage)} (what "berth gc" frees: nothing references it)`,
  );
  if (store.droppedLayers.count > 0) {
    out.push(
      `  Not kept:       ${store.droppedLayers.count} compressed layers, ${humanSize(store.droppedLayers.size)}, dropped once unpacked (--discard-unpacked-layers)`,
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

/** Blobs and snapshots of the whole root, and what a collection would free now. */
async function storeTotals(b: Berth) {
  let blobs = 0;
  let blobBytes = 0;
  for (const d of listBlobs(b.content)) {
    const size = b.content.existsSync(d)?.size;
    if (size === undefined) continue;
    blobs++;
    blobBytes += size;
  }
  let snaps = 0;
  let snapBytes = 0;
  const db = b.metadata.db;
  for (const driver of b.drivers()) {
    for (const row of db.all<{ id: number; kind: string; size: number | null; inodes: number | null }>(
      'SELECT id, kind, size, inodes FROM snapshots WHERE driver = ?',
      driver.name,
    )) {
      snaps++;
      const u = await storedUsage(driver, row, (id, usage) => setSnapshotUsage(db, id, usage)).catch(() => ({ size: 0, inodes: 0 }));
      snapBytes += u.size;
    }
  }
  let ingests = 0;
  let ingestBytes = 0;
  for await (const s of b.content.listStatuses()) {
    ingests++;
    ingestBytes += s.offset;
  }
  const garbage = (await b.gc({ dryRun: true })).reclaimed;
  return {
    blobs: { count: blobs, size: blobBytes },
    snapshots: { count: snaps, size: snapBytes },
    ingests: { count: ingests, size: ingestBytes },
    garbage,
  };
}

async function imageSize(b: Berth, g: Globals, ref: string): Promise<void> {
  const { name } = await lookupImage(b.namespace(g.namespace), ref);
  const usage = await b.imageUsage();
  const u = usage.explain(usage.images.find((x) => x.namespace === g.namespace && x.name === name) as ImageUsage);
  if (g.format === 'json') {
    printJSON(u);
    return;
  }
  const size = (n: number | null) => (n === null ? '-' : humanSize(n));
  const docs = u.content - u.layers.reduce((n, l) => n + l.compressed, 0);
  const out = [
    `${name}  (namespace ${u.namespace})`,
    `  image ID ${u.id}`,
    `  manifest ${u.manifest?.digest}`,
    '',
    renderTable(
      ['LAYER', 'COMPRESSED', 'TAR', 'UNPACKED', 'ON DISK', 'SHARED WITH'],
      u.layers.map((l) => [
        `${shortId(l.digest)}${l.stored ? '' : ' (blob dropped)'}`,
        humanSize(l.compressed),
        size(l.tar),
        size(l.unpacked),
        size(l.onDisk),
        l.sharedWith?.length ? l.sharedWith.join(', ') : '-',
      ]),
    ).trimEnd(),
    '',
    `Content        ${humanSize(u.content).padEnd(8)} index/manifest/config (${humanSize(docs)}) + compressed layers: what ctr and crictl show, and what a pull transfers`,
    `Unpacked       ${size(u.unpacked).padEnd(8)} the files the layers hold: what docker images shows`,
    `Total on disk  ${humanSize(u.total).padEnd(8)} content stored (${humanSize(u.contentStored)}) + snapshots (${humanSize(u.snapshots)}, measured with du)`,
    `Unique         ${humanSize(u.unique).padEnd(8)} held by this image alone: removing it frees this much`,
    `Shared         ${humanSize(u.shared).padEnd(8)} held with other images, here or in other namespaces`,
    '',
    'Why they differ: a registry sends layers compressed, and berth keeps those blobs (to push, save and',
    'verify them) as containerd does; it also unpacks each layer once into a snapshot that containers',
    "run from. docker's classic store drops the compressed blob after unpacking, so it shows only the",
    'unpacked size; containerd and crictl show the compressed content. Here both are on disk, and a',
    'layer that another image also uses is counted once.',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}
