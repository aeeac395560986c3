import { lstatSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { IngestLockedError, type LocalStore } from '../content/index.js';
import { hasCode } from '../errdefs/index.js';
import type { MetadataDB } from '../metadata/index.js';
import { type Digest, digestAlgorithms, isDigest } from '../oci/index.js';
import { type Driver, diskUsage } from '../snapshots/index.js';
import { contentRefLabels, GC_ROOT_LABEL, Graph, snapshotRefLabels } from './graph.js';

/** What a collection works on: the metadata, the blobs and each snapshotter's directories. */
export interface GCStores {
  db: MetadataDB;
  content: LocalStore;
  drivers: readonly Driver[];
}

export interface GCOpts {
  signal?: AbortSignal;
  /** Find what would go, remove nothing. */
  dryRun?: boolean;
  /** An interrupted ingest (no writer holds it, no lease names it) untouched this long is stale; default 1 hour. */
  ingestMaxAge?: number;
  /** The time leases expire against (tests); default now. */
  now?: Date;
}

export interface GCResult {
  /** Blob files removed (no namespace references them any longer), with the disk space each took. */
  blobs: { digest: Digest; size: number }[];
  /** Namespace references to content dropped (a blob other namespaces still use stays). */
  contentRefs: { namespace: string; digest: Digest }[];
  /** Snapshot names dropped from namespaces. */
  snapshotRefs: { namespace: string; driver: string; key: string }[];
  /** Snapshot directories removed, with the disk space each took. */
  snapshots: { driver: string; id: number; name: string; size: number }[];
  leases: { namespace: string; id: string }[];
  ingests: { ref: string; size: number }[];
  /** Directories and files no record names (left by crashes), with their disk space. */
  orphans: { path: string; size: number }[];
  /** Disk space freed, in bytes (allocated blocks, as du counts). */
  reclaimed: number;
}

const ingestMaxAgeDefault = 3_600_000;
const sep = '\0';

/** Thrown inside the transaction of a dry run to roll it back with what it found. */
class Rollback {
  constructor(readonly plan: Plan) {}
}

interface Plan {
  contentRefs: { namespace: string; digest: Digest }[];
  snapshotRefs: { namespace: string; driver: string; key: string }[];
  snapshots: { driver: string; id: number; name: string }[];
  leases: { namespace: string; id: string }[];
  /** Digests no namespace references any longer: their files go in a second transaction. */
  unreferenced: Digest[];
  /** Leased ingests (`<namespace>/<ref>`), kept whatever their age. */
  leasedIngests: Set<string>;
  orphanSnapshotDirs: string[];
}

/**
 * Mark and sweep, as containerd's garbage collector: from every namespace's roots — images,
 * containers, unexpired leases, content and snapshots labelled `containerd.io/gc.root`, and the
 * snapshots people made by hand (active and view snapshots, committed ones not named by a chainID) —
 * through the references (index → manifests, manifest → config and layers, config → its unpacked
 * layer stack by chainID, snapshot → parent, `containerd.io/gc.ref.*` labels), then removes what is
 * not marked. Records go in one write transaction; files after it, so a crash leaves orphans (swept
 * by the next run), never a record without its file. Work in progress elsewhere holds a lease.
 */
export async function collectGarbage(stores: GCStores, opts: GCOpts = {}): Promise<GCResult> {
  const { db, content } = stores;
  const now = (opts.now ?? new Date()).getTime();
  // Listed before the records are read: a directory made after this is not looked at.
  const dirsBefore = stores.drivers.map((d) => ({ driver: d, names: listDir(d.root) }));
  const ingests: { ref: string; size: number; updatedAt: number }[] = [];
  for await (const st of content.listStatuses(opts)) ingests.push({ ref: st.ref, size: st.offset, updatedAt: st.updatedAt.getTime() });

  let plan: Plan;
  try {
    plan = db.immediate(() => {
      const p = sweepRecords(db, new Graph(content), now, dirsBefore);
      if (opts.dryRun) throw new Rollback(p);
      return p;
    });
  } catch (err) {
    if (!(err instanceof Rollback)) throw err;
    plan = err.plan;
  }

  const result: GCResult = {
    blobs: [],
    contentRefs: plan.contentRefs,
    snapshotRefs: plan.snapshotRefs,
    snapshots: [],
    leases: plan.leases,
    ingests: [],
    orphans: [],
    reclaimed: 0,
  };

  // Blob files: a second transaction checks again that nothing references them (a writer in another
  // process may have just taken one up), then unlinks. Orphans on disk (no row at all) go too.
  const candidates = new Set<string>(plan.unreferenced);
  for (const d of listBlobs(content)) candidates.add(d);
  const dropped = new Set<string>(plan.unreferenced);
  const unlink = () => {
    const gone: { digest: Digest; size: number }[] = [];
    const referenced = db.stmt('SELECT 1 FROM blobs WHERE digest = ? LIMIT 1');
    for (const digest of candidates) {
      // A dry run kept the records: what the sweep would have dropped counts as unreferenced.
      if (!(opts.dryRun && dropped.has(digest)) && referenced.get(digest)) continue;
      const size = allocated(content.blobPath(digest as Digest));
      if (size === undefined) continue;
      if (!opts.dryRun) content.removeSync(digest as Digest);
      gone.push({ digest: digest as Digest, size });
    }
    return gone;
  };
  result.blobs = opts.dryRun ? db.read(unlink) : db.immediate(unlink);

  for (const s of plan.snapshots) {
    const driver = stores.drivers.find((d) => d.name === s.driver);
    if (!driver) continue;
    const size = await usageOf(join(driver.root, String(s.id)));
    if (!opts.dryRun) await driver.remove(s.id);
    result.snapshots.push({ ...s, size });
  }
  for (const path of plan.orphanSnapshotDirs) {
    const size = await usageOf(path);
    if (!opts.dryRun) await rm(path, { recursive: true, force: true });
    result.orphans.push({ path, size });
  }

  const maxAge = opts.ingestMaxAge ?? ingestMaxAgeDefault;
  for (const ing of ingests) {
    if (plan.leasedIngests.has(ing.ref) || now - ing.updatedAt < maxAge) continue;
    const size = await usageOf(content.ingestPath(ing.ref));
    try {
      if (!opts.dryRun) await content.abort(ing.ref, opts);
    } catch (err) {
      if (err instanceof IngestLockedError || hasCode(err, 'NOT_FOUND')) continue; // a writer took it up
      throw err;
    }
    result.ingests.push({ ref: ing.ref, size });
  }

  result.reclaimed = [...result.blobs, ...result.snapshots, ...result.ingests, ...result.orphans].reduce((n, x) => n + x.size, 0);
  return result;
}

interface RefRow {
  namespace: string;
  driver: string;
  key: string;
  snapshot: number;
  labels: string;
  kind: string;
}

/** Marks from the roots and deletes the unmarked records; runs inside the write transaction. */
function sweepRecords(db: MetadataDB, graph: Graph, now: number, dirsBefore: { driver: Driver; names: string[] }[]): Plan {
  const leases = db.all<{ namespace: string; id: string }>(
    'SELECT namespace, id FROM leases WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY namespace, id',
    now,
  );
  for (const l of leases) db.stmt('DELETE FROM leases WHERE namespace = ? AND id = ?').run(l.namespace, l.id);

  const parents = new Map<number, number | null>();
  for (const r of db.all<{ id: number; parent: number | null }>('SELECT id, parent FROM snapshots')) parents.set(r.id, r.parent);
  const refs = db.all<RefRow>(
    'SELECT r.namespace, r.driver, r.key, r.snapshot, r.labels, s.kind FROM snapshot_refs r JOIN snapshots s ON s.id = r.snapshot',
  );

  const plan: Plan = {
    contentRefs: [],
    snapshotRefs: [],
    snapshots: [],
    leases,
    unreferenced: [],
    leasedIngests: new Set(),
    orphanSnapshotDirs: [],
  };

  for (const { name: ns } of db.all<{ name: string }>('SELECT name FROM namespaces ORDER BY name')) {
    const blobLabels = new Map<string, Record<string, string>>();
    for (const b of db.all<{ digest: string; labels: string }>(
      "SELECT digest, labels FROM blobs WHERE namespace = ? AND labels != '{}'",
      ns,
    )) {
      blobLabels.set(b.digest, JSON.parse(b.labels) as Record<string, string>);
    }
    const nsRefs = refs.filter((r) => r.namespace === ns);
    const refByKey = new Map(nsRefs.map((r) => [`${r.driver}${sep}${r.key}`, r]));

    // Snapshots: marked by stored row; every name this namespace has for a marked row is kept.
    const markedRows = new Set<number>();
    const markSnapshot = (driver: string | undefined, key: string) => {
      const matches = driver === undefined ? nsRefs.filter((r) => r.key === key) : [refByKey.get(`${driver}${sep}${key}`)];
      for (const r of matches) {
        if (!r) continue;
        for (let id: number | null | undefined = r.snapshot; id !== null && id !== undefined && !markedRows.has(id); id = parents.get(id)) {
          markedRows.add(id);
        }
      }
    };

    const marked = new Set<string>();
    const queue: { digest: string; mediaType?: string }[] = [];
    const markContent = (digest: string, mediaType?: string) => {
      if (!marked.has(digest)) queue.push(mediaType === undefined ? { digest } : { digest, mediaType });
    };

    for (const i of db.all<{ digest: string; media_type: string }>('SELECT digest, media_type FROM images WHERE namespace = ?', ns)) {
      markContent(i.digest, i.media_type);
    }
    for (const [digest, labels] of blobLabels) if (labels[GC_ROOT_LABEL] !== undefined) markContent(digest);
    for (const c of db.all<{ snapshotter: string; snapshot_key: string; config: string }>(
      'SELECT snapshotter, snapshot_key, config FROM containers WHERE namespace = ?',
      ns,
    )) {
      markSnapshot(c.snapshotter, c.snapshot_key);
      const m = (JSON.parse(c.config) as { Manifest?: { digest?: string; mediaType?: string } }).Manifest;
      if (m?.digest) markContent(m.digest, m.mediaType);
    }
    for (const r of db.all<{ type: string; resource: string }>(
      `SELECT r.type, r.resource FROM lease_resources r JOIN leases l ON l.namespace = r.namespace AND l.id = r.lease_id
       WHERE r.namespace = ? AND (l.expires_at IS NULL OR l.expires_at > ?)`,
      ns,
      now,
    )) {
      if (r.type === 'content') markContent(r.resource);
      else if (r.type === 'ingest') plan.leasedIngests.add(`${ns}/${r.resource}`);
      else if (r.type.startsWith('snapshots/')) markSnapshot(r.type.slice('snapshots/'.length), r.resource);
    }
    for (const r of nsRefs) {
      const labels = JSON.parse(r.labels) as Record<string, string>;
      const byHand = r.kind !== 'committed' ? !r.key.startsWith('extract-') : !isDigest(r.key);
      if (byHand || labels[GC_ROOT_LABEL] !== undefined) markSnapshot(r.driver, r.key);
    }

    while (queue.length > 0) {
      const d = queue.pop() as { digest: string; mediaType?: string };
      if (marked.has(d.digest)) continue;
      marked.add(d.digest);
      const edges = graph.edges(d);
      for (const c of edges.children) markContent(c.digest, c.mediaType);
      if (edges.chainTop) markSnapshot(undefined, edges.chainTop);
      const labels = blobLabels.get(d.digest);
      if (labels) {
        for (const c of contentRefLabels(labels)) markContent(c);
        for (const s of snapshotRefLabels(labels)) markSnapshot(s.driver, s.key);
      }
    }
    // Snapshot labels may name content and more snapshots; one pass over the marked ones is enough for berth's own.
    for (const r of nsRefs) {
      if (!markedRows.has(r.snapshot)) continue;
      const labels = JSON.parse(r.labels) as Record<string, string>;
      for (const c of contentRefLabels(labels)) if (!marked.has(c)) marked.add(c);
      for (const s of snapshotRefLabels(labels)) markSnapshot(s.driver, s.key);
    }

    for (const b of db.all<{ digest: Digest }>('SELECT digest FROM blobs WHERE namespace = ?', ns)) {
      if (marked.has(b.digest)) continue;
      db.stmt('DELETE FROM blobs WHERE namespace = ? AND digest = ?').run(ns, b.digest);
      plan.contentRefs.push({ namespace: ns, digest: b.digest });
    }
    for (const r of nsRefs) {
      if (markedRows.has(r.snapshot)) continue;
      db.stmt('DELETE FROM snapshot_refs WHERE namespace = ? AND driver = ? AND key = ?').run(ns, r.driver, r.key);
      plan.snapshotRefs.push({ namespace: ns, driver: r.driver, key: r.key });
    }
  }

  for (const { digest } of plan.contentRefs) {
    if (!db.stmt('SELECT 1 FROM blobs WHERE digest = ? LIMIT 1').get(digest)) plan.unreferenced.push(digest);
  }
  plan.unreferenced = [...new Set(plan.unreferenced)];

  // Stored snapshots no namespace names and none builds on go, leaves first.
  for (;;) {
    const gone = db.all<{ id: number; driver: string; name: string }>(
      `DELETE FROM snapshots WHERE id NOT IN (SELECT snapshot FROM snapshot_refs)
       AND id NOT IN (SELECT parent FROM snapshots WHERE parent IS NOT NULL) RETURNING id, driver, name`,
    );
    if (gone.length === 0) break;
    plan.snapshots.push(...gone);
  }

  const ids = new Set(db.all<{ id: number; driver: string }>('SELECT id, driver FROM snapshots').map((r) => `${r.driver}${sep}${r.id}`));
  for (const { driver, names } of dirsBefore) {
    for (const name of names) {
      if (
        isOrphanSnapshotDir(name, (id) => ids.has(`${driver.name}${sep}${id}`)) &&
        !plan.snapshots.some((s) => s.driver === driver.name && String(s.id) === name)
      ) {
        plan.orphanSnapshotDirs.push(join(driver.root, name));
      }
    }
  }
  return plan;
}

/** Whether an entry of a snapshotter's directory belongs to no snapshot: a removal a crash interrupted, or an id without a record. */
export function isOrphanSnapshotDir(name: string, recorded: (id: string) => boolean): boolean {
  return name.startsWith('.removing-') || (/^[0-9]+$/.test(name) && !recorded(name));
}

export function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Every blob file in the store (synchronous, few syscalls: one readdir per algorithm). */
export function listBlobs(content: LocalStore): Digest[] {
  const out: Digest[] = [];
  for (const alg of Object.keys(digestAlgorithms)) {
    for (const hex of listDir(join(content.root, 'blobs', alg))) {
      const d = `${alg}:${hex}`;
      if (isDigest(d)) out.push(d);
    }
  }
  return out;
}

/** Allocated bytes of one file, as du counts them; undefined when it is gone. */
export function allocated(path: string): number | undefined {
  try {
    return Number(lstatSync(path, { bigint: true }).blocks) * 512;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function usageOf(path: string): Promise<number> {
  try {
    return (await diskUsage(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}
