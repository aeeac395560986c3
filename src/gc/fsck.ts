import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyBlob } from '../content/index.js';
import { mergeLabels } from '../metadata/index.js';
import { type Digest, isDigest, isLayer } from '../oci/index.js';
import { unmount } from '../snapshots/index.js';
import { type GCStores, isOrphanSnapshotDir, listBlobs, listDir } from './collect.js';
import { Graph } from './graph.js';

export type FindingKind =
  | 'corrupt-blob'
  | 'missing-blob'
  | 'broken-image'
  | 'missing-snapshot-dir'
  | 'container-snapshot-missing'
  | 'orphan-blob'
  | 'orphan-dir'
  | 'stale-mount'
  | 'network-leftover'
  | 'network-broken'
  | 'network-rules-missing'
  | 'orphan-volume';

/** One thing fsck found. Errors are damage (a corrupt blob, a dangling reference); orphans are leftovers gc removes. */
export interface Finding {
  kind: FindingKind;
  severity: 'error' | 'orphan';
  /** What it concerns: a digest, `namespace/image`, a path. */
  subject: string;
  message: string;
  /** Set when --repair dealt with it. */
  repaired?: string;
}

export interface FsckStores extends GCStores {
  /** `<root>/containers`: one directory per namespace, one per container. */
  containersDir: string;
}

export interface FsckOpts {
  signal?: AbortSignal;
  /** Remove orphans and corrupt blobs, drop dangling records, label broken images `berth.io/broken`; a healthy blob is never touched. */
  repair?: boolean;
  /** Called as blobs are re-hashed: bytes done of all the blobs' bytes. */
  onProgress?: (e: { done: number; total: number }) => void;
}

export const BROKEN_LABEL = 'berth.io/broken';

/**
 * Checks a root: re-hashes every blob, checks every reference in the metadata (namespaces → blobs on
 * disk, images → their documents and layers, snapshots → directories, containers → snapshots), and
 * looks for what no record names (blobs, snapshot and container directories, container mounts).
 * A layer blob may be missing when its layer is unpacked: berth drops compressed layers on request.
 */
export async function fsck(stores: FsckStores, opts: FsckOpts = {}): Promise<Finding[]> {
  const { db, content } = stores;
  const findings: Finding[] = [];
  /** Records a finding; with --repair, applies its fix first. */
  const report = async (f: Finding, fix?: { how: string; apply: () => unknown }) => {
    if (opts.repair && fix) {
      await fix.apply();
      f.repaired = fix.how;
    }
    findings.push(f);
  };

  // 1. Blobs: every file re-hashed against its name.
  const onDisk = listBlobs(content);
  const rows = db.read(() => db.all<{ digest: Digest }>('SELECT DISTINCT digest FROM blobs'));
  const referenced = new Set(rows.map((r) => r.digest));
  const corrupt = new Set<string>();
  const sizes = onDisk.map((d) => content.existsSync(d)?.size ?? 0);
  const total = sizes.reduce((n, x) => n + x, 0);
  let done = 0;
  for (const [i, digest] of onDisk.entries()) {
    opts.onProgress?.({ done, total });
    done += sizes[i] ?? 0;
    const r = await verifyBlob(content, { digest }, opts);
    if (r.ok || !content.existsSync(digest)) continue; // removed meanwhile
    corrupt.add(digest);
    await report(
      { kind: 'corrupt-blob', severity: 'error', subject: digest, message: `content does not match its digest: ${r.problem}` },
      {
        how: 'removed the blob and its references: pull the images that use it again',
        apply: () =>
          db.immediate(() => {
            db.stmt('DELETE FROM blobs WHERE digest = ?').run(digest);
            content.removeSync(digest);
          }),
      },
    );
  }
  const present = new Set(onDisk.filter((d) => !corrupt.has(d)));
  for (const d of onDisk) {
    if (referenced.has(d) || corrupt.has(d)) continue;
    await report(
      { kind: 'orphan-blob', severity: 'orphan', subject: d, message: 'no namespace references this blob' },
      {
        how: 'removed',
        apply: () =>
          db.immediate(() => {
            if (!db.stmt('SELECT 1 FROM blobs WHERE digest = ? LIMIT 1').get(d)) content.removeSync(d);
          }),
      },
    );
  }
  for (const d of referenced) {
    if (present.has(d) || corrupt.has(d)) continue;
    await report(
      { kind: 'missing-blob', severity: 'error', subject: d, message: 'a namespace references this blob, but it is not on disk' },
      {
        how: 'dropped the references',
        apply: () =>
          db.immediate(() => {
            if (!content.existsSync(d)) db.stmt('DELETE FROM blobs WHERE digest = ?').run(d);
          }),
      },
    );
  }

  // 2. Snapshots: every stored row has its directory.
  const snapshotRows = db.read(() =>
    db.all<{
      id: number;
      driver: string;
      name: string;
      kind: string;
      parent: number | null;
    }>('SELECT id, driver, name, kind, parent FROM snapshots'),
  );
  const missingDirs = new Set<string>();
  for (const s of snapshotRows) {
    const driver = stores.drivers.find((d) => d.name === s.driver);
    if (!driver || existsSync(driver.fsDir(s.id))) continue;
    missingDirs.add(`${s.driver}\0${s.id}`);
    // An unpack killed between recording its snapshot and making the directory leaves this: harmless.
    const interrupted = s.kind === 'active' && s.name.includes('/extract-');
    await report({
      kind: 'missing-snapshot-dir',
      severity: interrupted ? 'orphan' : 'error',
      subject: `${s.driver}/${s.id}`,
      message: `snapshot "${s.name}" (${s.kind}) has no directory ${driver.fsDir(s.id)}`,
    });
  }
  if (opts.repair && missingDirs.size > 0) await repairSnapshots(stores, snapshotRows, missingDirs, findings);

  // 3. Images: every document and layer they reach is referenced in their namespace and on disk.
  const graph = new Graph(content);
  const images = db.read(() =>
    db.all<{
      namespace: string;
      name: string;
      media_type: string;
      digest: Digest;
      labels: string;
    }>('SELECT namespace, name, media_type, digest, labels FROM images'),
  );
  const inNs = db.stmt('SELECT 1 FROM blobs WHERE namespace = ? AND digest = ?');
  const chainIn = db.stmt('SELECT 1 FROM snapshot_refs WHERE namespace = ? AND key = ? LIMIT 1');
  for (const img of images) {
    const problems: string[] = [];
    const have = (d: string) => present.has(d as Digest) && inNs.get(img.namespace, d) !== undefined;
    const visit = (desc: { digest: string; mediaType: string }, chain?: Digest) => {
      const what = isLayer(desc.mediaType) ? 'layer' : 'document';
      if (corrupt.has(desc.digest)) {
        problems.push(`${what} ${desc.digest} corrupt`);
        return;
      }
      if (!have(desc.digest)) {
        // A layer's compressed blob may have been dropped once the layer was unpacked.
        if (isLayer(desc.mediaType) && chain && chainIn.get(img.namespace, chain)) return;
        problems.push(`${what} ${desc.digest} missing`);
        return;
      }
      const e = graph.edges(desc);
      const config = e.children[0];
      const chainOf = config ? graph.edges(config).chain : undefined;
      e.children.forEach((c, i) => {
        // an index may list manifests of platforms that were not pulled
        if (desc.mediaType.includes('index') || desc.mediaType.includes('list')) {
          if (have(c.digest)) visit(c);
          return;
        }
        visit(c, i > 0 ? chainOf?.[i - 1] : undefined);
      });
    };
    visit({ digest: img.digest, mediaType: img.media_type });
    if (problems.length === 0) continue;
    const labels = mergeLabels(JSON.parse(img.labels) as Record<string, string>, { [BROKEN_LABEL]: problems[0] as string });
    await report(
      { kind: 'broken-image', severity: 'error', subject: `${img.namespace}/${img.name}`, message: problems.join('; ') },
      {
        how: `labelled ${BROKEN_LABEL}: pull it again`,
        apply: () =>
          db.immediate(() =>
            db.stmt('UPDATE images SET labels = ? WHERE namespace = ? AND name = ?').run(JSON.stringify(labels), img.namespace, img.name),
          ),
      },
    );
  }

  // 4. Containers: their writable snapshot exists; their directories have a record; no stale mounts.
  const containers = db.read(() =>
    db.all<{
      namespace: string;
      id: string;
      name: string;
      snapshotter: string;
      snapshot_key: string;
      state: string;
    }>('SELECT namespace, id, name, snapshotter, snapshot_key, state FROM containers'),
  );
  const refExists = db.stmt('SELECT 1 FROM snapshot_refs WHERE namespace = ? AND driver = ? AND key = ?');
  for (const c of containers) {
    if (!refExists.get(c.namespace, c.snapshotter, c.snapshot_key)) {
      await report({
        kind: 'container-snapshot-missing',
        severity: 'error',
        subject: `${c.namespace}/${c.name}`,
        message: `its writable snapshot "${c.snapshot_key}" is gone: remove the container`,
      });
    }
  }
  const known = new Set(containers.map((c) => `${c.namespace}/${c.id}`));
  const running = new Set(
    containers.filter((c) => (JSON.parse(c.state) as { status?: string }).status === 'running').map((c) => `${c.namespace}/${c.id}`),
  );
  for (const ns of listDir(stores.containersDir)) {
    for (const id of listDir(join(stores.containersDir, ns))) {
      if (known.has(`${ns}/${id}`)) continue;
      const path = join(stores.containersDir, ns, id);
      await report(
        { kind: 'orphan-dir', severity: 'orphan', subject: path, message: 'a container directory without a container' },
        {
          how: 'removed',
          apply: async () => {
            await unmount(join(path, 'rootfs')).catch(() => {});
            await rm(path, { recursive: true, force: true });
          },
        },
      );
    }
  }
  for (const mp of mountPoints()) {
    const rel = mp.startsWith(`${stores.containersDir}/`) ? mp.slice(stores.containersDir.length + 1).split('/') : [];
    if (rel.length !== 3 || rel[2] !== 'rootfs' || running.has(`${rel[0]}/${rel[1]}`)) continue;
    await report(
      { kind: 'stale-mount', severity: 'orphan', subject: mp, message: 'a container root still mounted, but the container is not running' },
      { how: 'unmounted', apply: () => unmount(mp) },
    );
  }

  // 5. Snapshot directories no record names (gc removes these too).
  const ids = new Set(snapshotRows.map((r) => `${r.driver}\0${r.id}`));
  for (const driver of stores.drivers) {
    for (const name of listDir(driver.root)) {
      if (!isOrphanSnapshotDir(name, (id) => ids.has(`${driver.name}\0${id}`))) continue;
      const path = join(driver.root, name);
      await report(
        { kind: 'orphan-dir', severity: 'orphan', subject: path, message: 'a snapshot directory without a snapshot' },
        { how: 'removed', apply: () => rm(path, { recursive: true, force: true }) },
      );
    }
  }
  return findings;
}

/**
 * A snapshot whose directory is gone cannot be trusted, nor can those built on it: their records go
 * (an unpack makes them again), unless a container or a snapshot made by hand builds on them.
 */
async function repairSnapshots(
  stores: FsckStores,
  rows: { id: number; driver: string; name: string; kind: string; parent: number | null }[],
  missing: Set<string>,
  findings: Finding[],
): Promise<void> {
  const { db } = stores;
  const children = new Map<number, number[]>();
  for (const r of rows) if (r.parent !== null) children.set(r.parent, [...(children.get(r.parent) ?? []), r.id]);
  for (const f of findings) {
    if (f.kind !== 'missing-snapshot-dir') continue;
    const [driver, idText] = f.subject.split('/') as [string, string];
    const doomed: number[] = [];
    const walk = (id: number) => {
      doomed.push(id);
      for (const c of children.get(id) ?? []) walk(c);
    };
    walk(Number(idText));
    const rowOf = new Map(rows.map((r) => [r.id, r]));
    const held = doomed.find((id) => {
      const r = rowOf.get(id);
      return r && !(r.kind === 'committed' && isDigest(r.name)) && !r.name.includes('/extract-');
    });
    if (held !== undefined) {
      f.repaired = undefined;
      continue;
    }
    db.immediate(() => {
      for (const id of [...doomed].reverse()) {
        db.stmt('DELETE FROM snapshot_refs WHERE snapshot = ?').run(id);
        db.stmt('DELETE FROM snapshots WHERE id = ?').run(id);
      }
    });
    const d = stores.drivers.find((x) => x.name === driver);
    for (const id of doomed) await d?.remove(id);
    missing.delete(`${driver}\0${idText}`);
    f.repaired = `dropped the snapshot${doomed.length > 1 ? ` and ${doomed.length - 1} built on it` : ''}: unpack the image again`;
  }
}

/** Mount points of this mount namespace, decoded from /proc/self/mountinfo. */
function mountPoints(): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
}
