import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { InternalError, UnavailableError } from '../errdefs/index.js';

/**
 * Schema versions, applied in order inside one IMMEDIATE transaction each, so that several
 * processes opening one root at once agree on the result. Never edit a released step: add one.
 */
const migrations: readonly string[] = [
  `
  CREATE TABLE namespaces (
    name TEXT PRIMARY KEY,
    labels TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE images (
    namespace TEXT NOT NULL REFERENCES namespaces(name),
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    annotations TEXT,
    labels TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
  ) STRICT;
  CREATE INDEX images_digest ON images(digest);
  CREATE TABLE blobs (
    namespace TEXT NOT NULL REFERENCES namespaces(name),
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, digest)
  ) STRICT;
  CREATE INDEX blobs_digest ON blobs(digest);
  CREATE TABLE leases (
    namespace TEXT NOT NULL REFERENCES namespaces(name),
    id TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (namespace, id)
  ) STRICT;
  CREATE TABLE lease_resources (
    namespace TEXT NOT NULL,
    lease_id TEXT NOT NULL,
    type TEXT NOT NULL,
    resource TEXT NOT NULL,
    PRIMARY KEY (namespace, lease_id, type, resource),
    FOREIGN KEY (namespace, lease_id) REFERENCES leases(namespace, id) ON DELETE CASCADE
  ) STRICT;
  INSERT INTO namespaces (name, created_at, updated_at) VALUES ('default', unixepoch('subsec') * 1000, unixepoch('subsec') * 1000);
  `,
  // Snapshots: one row per snapshot a driver stores (committed layer stacks are named by chainID and
  // shared by all namespaces); snapshot_refs are the names under which each namespace sees them.
  `
  CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY,
    driver TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
    parent INTEGER REFERENCES snapshots(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    size INTEGER,
    inodes INTEGER,
    unpacked_size INTEGER,
    UNIQUE (driver, name)
  ) STRICT;
  CREATE INDEX snapshots_parent ON snapshots(parent);
  CREATE TABLE snapshot_refs (
    namespace TEXT NOT NULL REFERENCES namespaces(name),
    driver TEXT NOT NULL,
    key TEXT NOT NULL,
    snapshot INTEGER NOT NULL REFERENCES snapshots(id),
    labels TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, driver, key)
  ) STRICT;
  CREATE INDEX snapshot_refs_snapshot ON snapshot_refs(snapshot);
  `,
  // Containers: what was asked (config, JSON) and what happened (state, JSON), per namespace.
  `
  CREATE TABLE containers (
    namespace TEXT NOT NULL REFERENCES namespaces(name),
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    image TEXT NOT NULL,
    image_id TEXT NOT NULL,
    snapshotter TEXT NOT NULL,
    snapshot_key TEXT NOT NULL,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, id),
    UNIQUE (namespace, name)
  ) STRICT;
  `,
  // Snapshot ids are never reused: a directory named by a removed id may still be on its way out
  // when a new snapshot is made. The uncompressed tar size of an applied layer is kept for the size views.
  `
  CREATE TABLE sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
  INSERT INTO sequences (name, value) SELECT 'snapshots', coalesce(max(id), 0) FROM snapshots;
  ALTER TABLE snapshots ADD COLUMN tar_size INTEGER;
  `,
];

export const schemaVersion = migrations.length;

export interface OpenOpts {
  /** How long to wait for another process's write transaction, in ms. */
  busyTimeout?: number;
  readonly?: boolean;
}

/** The metadata database file: SQLite in WAL mode, shared safely by several processes. */
export class MetadataDB {
  readonly path: string;
  readonly sqlite: Database.Database;

  constructor(path: string, opts: OpenOpts = {}) {
    this.path = path;
    if (!opts.readonly) mkdirSync(dirname(path), { recursive: true });
    try {
      const timeout = opts.busyTimeout ?? 15000;
      this.sqlite = new Database(path, { timeout, readonly: opts.readonly ?? false });
      if (!opts.readonly) this.#enableWAL(timeout);
      this.sqlite.pragma('synchronous = NORMAL');
      this.sqlite.pragma('foreign_keys = ON');
      if (!opts.readonly) this.#migrate();
    } catch (err) {
      throw wrapSqliteError(err, `open metadata "${path}"`);
    }
  }

  /**
   * Switches a fresh file to WAL. SQLite answers SQLITE_BUSY at once, without the busy handler,
   * while another process opening the same fresh file holds it: retried here until `timeout`.
   */
  #enableWAL(timeout: number): void {
    const deadline = Date.now() + timeout;
    for (;;) {
      try {
        this.sqlite.pragma('journal_mode = WAL');
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
    }
  }

  #migrate(): void {
    const version = () => this.sqlite.pragma('user_version', { simple: true }) as number;
    if (version() === migrations.length) return;
    this.immediate(() => {
      const from = version();
      if (from > migrations.length) {
        throw new InternalError(`metadata schema version ${from} is newer than this berth knows (${migrations.length}); upgrade berth`);
      }
      for (let v = from; v < migrations.length; v++) this.sqlite.exec(migrations[v] as string);
      this.sqlite.pragma(`user_version = ${migrations.length}`);
    });
  }

  readonly #statements = new Map<string, Database.Statement>();

  /** A prepared statement for `sql`, prepared once per connection. */
  stmt(sql: string): Database.Statement {
    let st = this.#statements.get(sql);
    if (!st) {
      st = this.sqlite.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  /** Every row `sql` selects, typed by the caller. */
  all<T>(sql: string, ...params: unknown[]): T[] {
    return this.stmt(sql).all(...params) as T[];
  }

  /** Runs `fn` in a write transaction taken at once (BEGIN IMMEDIATE): serialised across processes. */
  immediate<T>(fn: () => T): T {
    try {
      return this.sqlite.transaction(fn).immediate();
    } catch (err) {
      throw wrapSqliteError(err, 'metadata transaction');
    }
  }

  /** Runs `fn` in a read transaction: one consistent snapshot. */
  read<T>(fn: () => T): T {
    try {
      return this.sqlite.transaction(fn).deferred();
    } catch (err) {
      throw wrapSqliteError(err, 'metadata read');
    }
  }

  /** The next value of a sequence that never goes back; call inside a write transaction. */
  nextSequence(name: string): number {
    const r = this.stmt('UPDATE sequences SET value = value + 1 WHERE name = ? RETURNING value').get(name) as { value: number } | undefined;
    if (!r) throw new InternalError(`no sequence "${name}"`);
    return r.value;
  }

  close(): void {
    if (this.sqlite.open) this.sqlite.close();
  }
}

function wrapSqliteError(err: unknown, what: string): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new UnavailableError(`${what}: database is locked by another process`, { cause: err });
  }
  return err;
}

export function parseLabels(json: string | null | undefined): Record<string, string> {
  return json ? (JSON.parse(json) as Record<string, string>) : {};
}
