// The size views as the CLI prints them: `system df` and `image size`.
import { listBlobs } from '../gc/index.js';
import type { ImageUsage, StoreUsage } from '../images/index.js';
import { setSnapshotUsage } from '../metadata/index.js';
import { type Digest, digestHex, familiarName, parseReference } from '../oci/index.js';
import { type Berth, buildCacheUsage, lookupImage, volumeUsage } from '../services/index.js';
import { storedUsage } from '../snapshots/index.js';
import type { Globals } from './context.js';
import { humanDuration, humanSize, printJSON, renderTable } from './output.js';

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

/** `system df`'s Build Cache row: every entry; active ones are those an image's layers include. */
async function buildCacheTotals(b: Berth, ns: string, usage: StoreUsage) {
  const items = await buildCacheUsage(b, ns, usage);
  const size = items.reduce((n, i) => n + i.size, 0);
  return {
    total: items.length,
    active: items.filter((i) => i.shared).length,
    size,
    reclaimable: items.filter((i) => !i.shared).reduce((n, i) => n + i.size, 0),
  };
}

export async function systemDf(b: Berth, g: Globals, flags: { verbose?: boolean; allNamespaces?: boolean }): Promise<void> {
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
      buildCache: await buildCacheTotals(b, ns, usage),
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

export async function imageSize(b: Berth, g: Globals, ref: string): Promise<void> {
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
    `Content        ${humanSize(u.content).padEnd(8)} index/manifest/config (${humanSize(docs)}) + compressed layers: what ctr shows, what a pull transfers, and CRI's Image.size (crictl images) on containerd and on berth`,
    `Unpacked       ${size(u.unpacked).padEnd(8)} the files the layers hold: what docker images shows, and CRI's Image.size on CRI-O`,
    `Total on disk  ${humanSize(u.total).padEnd(8)} content stored (${humanSize(u.contentStored)}) + snapshots (${humanSize(u.snapshots)}, measured with du)`,
    `Unique         ${humanSize(u.unique).padEnd(8)} held by this image alone: removing it frees this much`,
    `Shared         ${humanSize(u.shared).padEnd(8)} held with other images, here or in other namespaces`,
    '',
    'Why they differ: a registry sends layers compressed, and berth keeps those blobs (to push, save and',
    'verify them) as containerd does; it also unpacks each layer once into a snapshot that containers',
    "run from. docker's classic store drops the compressed blob after unpacking, so it shows only the",
    'unpacked size; containerd, and crictl against containerd or berth, show the compressed content',
    '(CRI-O reports the unpacked size). Here both are on disk, and a layer that another image also',
    'uses is counted once.',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}
