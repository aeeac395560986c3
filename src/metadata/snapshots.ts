import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { isDigest } from '../oci/index.js';
import type { MetadataDB } from './db.js';
import { parseLabels } from './db.js';
import { mergeLabels, validateLabels } from './identifiers.js';
import type { NamespaceStore } from './namespaces.js';
import { ScopedStore } from './scoped.js';

export type SnapshotKind = 'active' | 'view' | 'committed';

/** A snapshot as a driver stores it, whichever namespaces see it. */
export interface SnapshotRow {
  id: number;
  driver: string;
  /** Committed stacks named by a digest (chainIDs) are global; everything else is `<namespace>/<key>`. */
  name: string;
  kind: SnapshotKind;
  parent: number | null;
  createdAt: Date;
  updatedAt: Date;
  /** Disk usage, measured the first time it is asked for (committed snapshots only). */
  size: number | null;
  inodes: number | null;
  /** Sum of the regular files' sizes of the layer applied to make it (docker's layer size). */
  unpackedSize: number | null;
  /** Bytes of the uncompressed layer tar applied to make it. */
  tarSize: number | null;
}

/** A snapshot as one namespace sees it: its key and labels. */
export interface SnapshotRef {
  key: string;
  snapshot: SnapshotRow;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

interface Row {
  id: number;
  driver: string;
  name: string;
  kind: SnapshotKind;
  parent: number | null;
  created_at: number;
  updated_at: number;
  size: number | null;
  inodes: number | null;
  unpacked_size: number | null;
  tar_size: number | null;
}

interface RefRow {
  key: string;
  labels: string;
  ref_created: number;
  ref_updated: number;
}

const toRow = (r: Row): SnapshotRow => ({
  id: r.id,
  driver: r.driver,
  name: r.name,
  kind: r.kind,
  parent: r.parent,
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
  size: r.size,
  inodes: r.inodes,
  unpackedSize: r.unpacked_size,
  tarSize: r.tar_size,
});

const toRef = (r: Row & RefRow): SnapshotRef => ({
  key: r.key,
  snapshot: toRow(r),
  labels: parseLabels(r.labels),
  createdAt: new Date(r.ref_created),
  updatedAt: new Date(r.ref_updated),
});

const REF_SELECT =
  'SELECT s.*, r.key, r.labels, r.created_at AS ref_created, r.updated_at AS ref_updated FROM snapshot_refs r JOIN snapshots s ON s.id = r.snapshot';

/** Validates a snapshot key: any non-empty string without NUL, as containerd allows. */
export function validateSnapshotKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1024 || key.includes('\0')) {
    throw new InvalidArgumentError(`invalid snapshot key ${JSON.stringify(key)}`);
  }
  return key;
}

/** Records the disk usage of a committed snapshot (by storage id, whichever namespace names it). */
export function setSnapshotUsage(db: MetadataDB, id: number, usage: { size: number; inodes: number }): void {
  db.immediate(() => {
    db.stmt("UPDATE snapshots SET size = ?, inodes = ? WHERE id = ? AND kind = 'committed'").run(usage.size, usage.inodes, id);
  });
}

/** Snapshot records of one namespace and one driver. Each method is one transaction. */
export class SnapshotRecords extends ScopedStore {
  constructor(
    db: MetadataDB,
    namespaces: NamespaceStore,
    namespace: string,
    readonly driver: string,
  ) {
    super(db, namespaces, namespace);
  }

  #storageName(kind: SnapshotKind, key: string): string {
    return kind === 'committed' && isDigest(key) ? key : `${this.namespace}/${key}`;
  }

  /** @throws NotFoundError */
  get(key: string): SnapshotRef {
    const r = this.db.stmt(`${REF_SELECT} WHERE r.namespace = ? AND r.driver = ? AND r.key = ?`).get(this.namespace, this.driver, key) as
      | (Row & RefRow)
      | undefined;
    if (!r) throw new NotFoundError(`snapshot "${key}": not found`);
    return toRef(r);
  }

  row(id: number): SnapshotRow {
    const r = this.db.stmt('SELECT * FROM snapshots WHERE id = ?').get(id) as Row | undefined;
    if (!r) throw new NotFoundError(`snapshot #${id}: not found`);
    return toRow(r);
  }

  /** The snapshot and its ancestors, nearest first. */
  chain(id: number): SnapshotRow[] {
    const out: SnapshotRow[] = [];
    for (let next: number | null = id; next !== null; ) {
      const row = this.row(next);
      out.push(row);
      next = row.parent;
    }
    return out;
  }

  /** The name this namespace knows the row by (its committed key), or the storage name. */
  visibleName(id: number): string {
    const r = this.db
      .stmt('SELECT key FROM snapshot_refs WHERE namespace = ? AND driver = ? AND snapshot = ?')
      .get(this.namespace, this.driver, id) as { key: string } | undefined;
    return r?.key ?? this.row(id).name;
  }

  /**
   * Records a new active or view snapshot on a committed parent.
   * @throws AlreadyExistsError for a taken key; NotFoundError or FailedPreconditionError for the parent
   */
  create(key: string, kind: 'active' | 'view', opts: { parent?: string; labels?: Record<string, string> }): SnapshotRow {
    validateSnapshotKey(key);
    const labels = validateLabels(opts.labels ?? {});
    return this.db.immediate(() => {
      this.namespaces.ensureSync(this.namespace);
      let parent: number | null = null;
      if (opts.parent !== undefined && opts.parent !== '') {
        const p = this.get(opts.parent).snapshot;
        if (p.kind !== 'committed') throw new FailedPreconditionError(`parent "${opts.parent}": not committed`);
        parent = p.id;
      }
      if (this.#refExists(key)) throw new AlreadyExistsError(`snapshot "${key}": already exists`);
      const now = Date.now();
      const r = this.db
        .stmt(
          'INSERT INTO snapshots (id, driver, name, kind, parent, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
        )
        .run(this.db.nextSequence('snapshots'), this.driver, this.#storageName(kind, key), kind, parent, now, now);
      if (r.changes === 0) throw new AlreadyExistsError(`snapshot "${key}": already exists`);
      const id = Number(r.lastInsertRowid);
      this.#insertRef(key, id, labels, now);
      return this.row(id);
    });
  }

  #refExists(key: string): boolean {
    return (
      this.db.stmt('SELECT 1 FROM snapshot_refs WHERE namespace = ? AND driver = ? AND key = ?').get(this.namespace, this.driver, key) !==
      undefined
    );
  }

  #insertRef(key: string, id: number, labels: Record<string, string>, now: number): void {
    this.db
      .stmt('INSERT INTO snapshot_refs (namespace, driver, key, snapshot, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(this.namespace, this.driver, key, id, JSON.stringify(labels), now, now);
  }

  /**
   * Makes a committed snapshot stored for another namespace (a chainID) visible here too, with its
   * ancestors. @returns false when no such snapshot is stored
   */
  adopt(name: string): boolean {
    if (!isDigest(name)) return false;
    return this.db.immediate(() => {
      const r = this.db.stmt("SELECT * FROM snapshots WHERE driver = ? AND name = ? AND kind = 'committed'").get(this.driver, name) as
        | Row
        | undefined;
      if (!r) return false;
      this.namespaces.ensureSync(this.namespace);
      const now = Date.now();
      for (const row of this.chain(r.id)) {
        const visible = this.db
          .stmt('SELECT 1 FROM snapshot_refs WHERE namespace = ? AND driver = ? AND snapshot = ?')
          .get(this.namespace, this.driver, row.id);
        if (!visible && !this.#refExists(row.name)) this.#insertRef(row.name, row.id, {}, now);
      }
      return true;
    });
  }

  /**
   * Turns active `key` into committed `name`, optionally on a new parent (rebase).
   * @throws NotFoundError; FailedPreconditionError when `key` is not active; AlreadyExistsError when
   * `name` is taken (when another namespace stored it, it becomes visible here and the caller drops `key`)
   */
  commit(
    name: string,
    key: string,
    opts: { parent?: string; labels?: Record<string, string>; unpackedSize?: number; tarSize?: number },
  ): SnapshotRow {
    validateSnapshotKey(name);
    const labels = validateLabels(opts.labels ?? {});
    const row = this.db.immediate(() => {
      const ref = this.get(key);
      if (ref.snapshot.kind !== 'active') throw new FailedPreconditionError(`commit "${key}": not an active snapshot`);
      if (this.#refExists(name)) throw new AlreadyExistsError(`snapshot "${name}": already exists`);
      const storage = this.#storageName('committed', name);
      const taken = this.db.stmt('SELECT 1 FROM snapshots WHERE driver = ? AND name = ?').get(this.driver, storage);
      if (taken) {
        this.adopt(storage);
        return undefined;
      }
      let parent = ref.snapshot.parent;
      if (opts.parent !== undefined) {
        const p = this.get(opts.parent).snapshot;
        if (p.kind !== 'committed') throw new FailedPreconditionError(`parent "${opts.parent}": not committed`);
        parent = p.id;
      }
      const now = Date.now();
      this.db
        .stmt("UPDATE snapshots SET name = ?, kind = 'committed', parent = ?, updated_at = ?, unpacked_size = ?, tar_size = ? WHERE id = ?")
        .run(storage, parent, now, opts.unpackedSize ?? null, opts.tarSize ?? null, ref.snapshot.id);
      this.db.stmt('DELETE FROM snapshot_refs WHERE namespace = ? AND driver = ? AND key = ?').run(this.namespace, this.driver, key);
      this.#insertRef(name, ref.snapshot.id, mergeLabels(ref.labels, labels), now);
      return this.row(ref.snapshot.id);
    });
    if (!row) throw new AlreadyExistsError(`snapshot "${name}": already exists`);
    return row;
  }

  /** Records the disk usage of a committed snapshot, measured once (it cannot change). */
  setUsage(id: number, usage: { size: number; inodes: number }): void {
    setSnapshotUsage(this.db, id, usage);
  }

  /** Sets labels (an empty value removes one). @throws NotFoundError */
  label(key: string, changes: Record<string, string>): SnapshotRef {
    return this.db.immediate(() => {
      const ref = this.get(key);
      const labels = validateLabels(mergeLabels(ref.labels, changes));
      this.db
        .stmt('UPDATE snapshot_refs SET labels = ?, updated_at = ? WHERE namespace = ? AND driver = ? AND key = ?')
        .run(JSON.stringify(labels), Date.now(), this.namespace, this.driver, key);
      return this.get(key);
    });
  }

  /**
   * Drops this namespace's name for `key`. Stored snapshots that no namespace names and no snapshot
   * builds on go too: they are returned so the driver removes their directories.
   * @throws NotFoundError; FailedPreconditionError while snapshots here build on it
   */
  remove(key: string): SnapshotRow[] {
    return this.db.immediate(() => {
      const ref = this.get(key);
      const children = this.db
        .stmt(
          'SELECT r.key FROM snapshot_refs r JOIN snapshots s ON s.id = r.snapshot WHERE r.namespace = ? AND r.driver = ? AND s.parent = ? LIMIT 1',
        )
        .get(this.namespace, this.driver, ref.snapshot.id) as { key: string } | undefined;
      if (children) throw new FailedPreconditionError(`remove snapshot "${key}": snapshot "${children.key}" builds on it`);
      this.db.stmt('DELETE FROM snapshot_refs WHERE namespace = ? AND driver = ? AND key = ?').run(this.namespace, this.driver, key);
      const gone: SnapshotRow[] = [];
      for (let id: number | null = ref.snapshot.id; id !== null; ) {
        const named = this.db.stmt('SELECT 1 FROM snapshot_refs WHERE snapshot = ? LIMIT 1').get(id);
        const built = this.db.stmt('SELECT 1 FROM snapshots WHERE parent = ? LIMIT 1').get(id);
        if (named || built) break;
        const row = this.row(id);
        this.db.stmt('DELETE FROM snapshots WHERE id = ?').run(id);
        gone.push(row);
        id = row.parent;
      }
      return gone;
    });
  }

  list(): SnapshotRef[] {
    return (
      this.db.stmt(`${REF_SELECT} WHERE r.namespace = ? AND r.driver = ? ORDER BY r.key`).all(this.namespace, this.driver) as (Row &
        RefRow)[]
    ).map(toRef);
  }

  /** Every stored row of this driver, whichever namespace names it (for usage accounting and fsck). */
  allRows(): SnapshotRow[] {
    return (this.db.stmt('SELECT * FROM snapshots WHERE driver = ? ORDER BY id').all(this.driver) as Row[]).map(toRow);
  }

  /** The namespaces and keys naming a stored row. */
  namesOf(id: number): { namespace: string; key: string }[] {
    return this.db.stmt('SELECT namespace, key FROM snapshot_refs WHERE snapshot = ? ORDER BY namespace, key').all(id) as {
      namespace: string;
      key: string;
    }[];
  }
}
