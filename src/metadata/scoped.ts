import type { MetadataDB } from './db.js';
import type { NamespaceStore } from './namespaces.js';

/** What every per-namespace store holds: the database, the namespace table, and its namespace. */
export abstract class ScopedStore {
  readonly namespace: string;
  protected readonly db: MetadataDB;
  protected readonly namespaces: NamespaceStore;
  constructor(db: MetadataDB, namespaces: NamespaceStore, namespace: string) {
    this.db = db;
    this.namespaces = namespaces;
    this.namespace = namespace;
  }
}
