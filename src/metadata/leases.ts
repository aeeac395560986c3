import { randomBytes } from 'node:crypto';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errdefs/index.js';
import { parseLabels } from './db.js';
import { validateIdentifier, validateLabels } from './identifiers.js';
import { ScopedStore } from './scoped.js';

/** Holds resources (content, ingests, snapshots) against garbage collection while work is in progress. */
export interface Lease {
  id: string;
  labels: Record<string, string>;
  createdAt: Date;
  /** When garbage collection may drop the lease; never when absent. */
  expiresAt?: Date;
}

/** A resource a lease holds: `content` (a digest), `ingest` (a ref), `snapshots/<driver>` (a key). */
export interface LeaseResource {
  type: string;
  id: string;
}

interface Row {
  id: string;
  labels: string;
  created_at: number;
  expires_at: number | null;
}

function toLease(r: Row): Lease {
  const l: Lease = { id: r.id, labels: parseLabels(r.labels), createdAt: new Date(r.created_at) };
  if (r.expires_at !== null) l.expiresAt = new Date(r.expires_at);
  return l;
}

/** Leases of one namespace. */
export class LeaseManager extends ScopedStore {
  /** @throws AlreadyExistsError, InvalidArgumentError */
  create(opts: { id?: string; labels?: Record<string, string>; expiresAt?: Date } = {}): Lease {
    const id = validateIdentifier(opts.id ?? `lease-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`, 'lease id');
    const labels = validateLabels(opts.labels ?? {});
    if (opts.expiresAt !== undefined && Number.isNaN(opts.expiresAt.getTime())) throw new InvalidArgumentError('invalid lease expiry');
    const now = Date.now();
    return this.db.immediate(() => {
      this.namespaces.ensureSync(this.namespace);
      const r = this.db.sqlite
        .prepare('INSERT INTO leases (namespace, id, labels, created_at, expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
        .run(this.namespace, id, JSON.stringify(labels), now, opts.expiresAt?.getTime() ?? null);
      if (r.changes === 0) throw new AlreadyExistsError(`lease "${id}": already exists`);
      return toLease({ id, labels: JSON.stringify(labels), created_at: now, expires_at: opts.expiresAt?.getTime() ?? null });
    });
  }

  /** @throws NotFoundError */
  get(id: string): Lease {
    const r = this.db.stmt('SELECT * FROM leases WHERE namespace = ? AND id = ?').get(this.namespace, id) as Row | undefined;
    if (!r) throw new NotFoundError(`lease "${id}": not found`);
    return toLease(r);
  }

  list(): Lease[] {
    return (this.db.stmt('SELECT * FROM leases WHERE namespace = ? ORDER BY created_at, id').all(this.namespace) as Row[]).map(toLease);
  }

  /** Removes the lease and releases what it held. @throws NotFoundError */
  delete(id: string): void {
    this.db.immediate(() => {
      const r = this.db.stmt('DELETE FROM leases WHERE namespace = ? AND id = ?').run(this.namespace, id);
      if (r.changes === 0) throw new NotFoundError(`lease "${id}": not found`);
    });
  }

  /** @throws NotFoundError when the lease does not exist */
  addResource(id: string, resource: LeaseResource): void {
    this.db.immediate(() => {
      this.get(id);
      this.db.sqlite
        .prepare('INSERT INTO lease_resources (namespace, lease_id, type, resource) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING')
        .run(this.namespace, id, resource.type, resource.id);
    });
  }

  deleteResource(id: string, resource: LeaseResource): void {
    this.db.immediate(() => {
      this.get(id);
      this.db.sqlite
        .prepare('DELETE FROM lease_resources WHERE namespace = ? AND lease_id = ? AND type = ? AND resource = ?')
        .run(this.namespace, id, resource.type, resource.id);
    });
  }

  listResources(id: string): LeaseResource[] {
    return this.db.read(() => {
      this.get(id);
      return (
        this.db.sqlite
          .prepare('SELECT type, resource FROM lease_resources WHERE namespace = ? AND lease_id = ? ORDER BY type, resource')
          .all(this.namespace, id) as { type: string; resource: string }[]
      ).map((r) => ({ type: r.type, id: r.resource }));
    });
  }

  /**
   * Runs `fn` under a new lease, deleted when `fn` settles: what `fn` records in the lease is kept
   * from garbage collection until then. The expiry bounds how long a crashed process holds things.
   * @example await leases.withLease((l) => pull(ref, { lease: l.id }), { expiresIn: 3_600_000 })
   */
  async withLease<T>(fn: (lease: Lease) => Promise<T>, opts: { expiresIn?: number; labels?: Record<string, string> } = {}): Promise<T> {
    const lease = this.create({ labels: opts.labels ?? {}, expiresAt: new Date(Date.now() + (opts.expiresIn ?? 24 * 3_600_000)) });
    try {
      return await fn(lease);
    } finally {
      this.delete(lease.id);
    }
  }
}
