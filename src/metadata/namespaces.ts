import { AlreadyExistsError, FailedPreconditionError, NotFoundError } from '../errdefs/index.js';
import { type MetadataDB, parseLabels } from './db.js';
import { mergeLabels, validateIdentifier, validateLabels } from './identifiers.js';

export interface Namespace {
  name: string;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

interface Row {
  name: string;
  labels: string;
  created_at: number;
  updated_at: number;
}

const toNamespace = (r: Row): Namespace => ({
  name: r.name,
  labels: parseLabels(r.labels),
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
});

/** The tables that hold objects of a namespace; one with rows keeps the namespace from removal. */
const ownedTables = { images: 'image', blobs: 'blob', leases: 'lease', snapshot_refs: 'snapshot', containers: 'container' } as const;

/** Namespaces partition images, content references and leases, as in containerd. */
export class NamespaceStore {
  readonly #db: MetadataDB;
  constructor(db: MetadataDB) {
    this.#db = db;
  }

  /** @throws AlreadyExistsError, InvalidArgumentError */
  create(name: string, labels: Record<string, string> = {}): Namespace {
    validateIdentifier(name, 'namespace');
    validateLabels(labels);
    const now = Date.now();
    return this.#db.immediate(() => {
      const r = this.#db.sqlite
        .prepare('INSERT INTO namespaces (name, labels, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING')
        .run(name, JSON.stringify(labels), now, now);
      if (r.changes === 0) throw new AlreadyExistsError(`namespace "${name}": already exists`);
      return { name, labels, createdAt: new Date(now), updatedAt: new Date(now) };
    });
  }

  /** Creates the namespace when missing; call inside the transaction that writes into it. */
  ensureSync(name: string): void {
    validateIdentifier(name, 'namespace');
    const now = Date.now();
    this.#db.sqlite
      .prepare('INSERT INTO namespaces (name, created_at, updated_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING')
      .run(name, now, now);
  }

  /** @throws NotFoundError */
  get(name: string): Namespace {
    validateIdentifier(name, 'namespace');
    const r = this.#db.stmt('SELECT * FROM namespaces WHERE name = ?').get(name) as Row | undefined;
    if (!r) throw new NotFoundError(`namespace "${name}": not found`);
    return toNamespace(r);
  }

  exists(name: string): boolean {
    return this.#db.stmt('SELECT 1 FROM namespaces WHERE name = ?').get(name) !== undefined;
  }

  list(): Namespace[] {
    return (this.#db.stmt('SELECT * FROM namespaces ORDER BY name').all() as Row[]).map(toNamespace);
  }

  /** Sets labels (an empty value removes one). @throws NotFoundError */
  setLabels(name: string, changes: Record<string, string>): Namespace {
    return this.#db.immediate(() => {
      const ns = this.get(name);
      const labels = mergeLabels(ns.labels, changes);
      const now = Date.now();
      this.#db.stmt('UPDATE namespaces SET labels = ?, updated_at = ? WHERE name = ?').run(JSON.stringify(labels), now, name);
      return { ...ns, labels, updatedAt: new Date(now) };
    });
  }

  /**
   * Removes an empty namespace.
   * @throws NotFoundError; FailedPreconditionError while it holds images, content or leases
   */
  remove(name: string): void {
    this.#db.immediate(() => {
      this.get(name);
      const held = Object.entries(ownedTables)
        .map(
          ([t, noun]) =>
            [noun, (this.#db.stmt(`SELECT count(*) AS n FROM ${t} WHERE namespace = ?`).get(name) as { n: number }).n] as const,
        )
        .filter(([, n]) => n > 0);
      if (held.length > 0) {
        const what = held.map(([noun, n]) => `${n} ${noun}${n === 1 ? '' : 's'}`).join(', ');
        throw new FailedPreconditionError(`remove namespace "${name}": not empty (${what})`);
      }
      this.#db.stmt('DELETE FROM namespaces WHERE name = ?').run(name);
    });
  }
}
