import type { LocalStore } from '../content/index.js';
import { ContainerStore } from './containers.js';
import { NamespacedContentStore } from './content.js';
import { MetadataDB, type OpenOpts } from './db.js';
import { validateIdentifier } from './identifiers.js';
import { ImageStore } from './images.js';
import { LeaseManager } from './leases.js';
import { NamespaceStore } from './namespaces.js';
import { SnapshotRecords } from './snapshots.js';

/** The stores of one namespace; nothing is ambient: every call names its namespace through this. */
export interface NamespaceScope {
  readonly name: string;
  readonly images: ImageStore;
  readonly content: NamespacedContentStore;
  readonly leases: LeaseManager;
  readonly containers: ContainerStore;
  /** The snapshot records of one snapshotter (driver) in this namespace. */
  snapshots(driver: string): SnapshotRecords;
}

/** The metadata of one root: namespaces, images, content references and leases. */
export class Metadata {
  readonly db: MetadataDB;
  readonly namespaces: NamespaceStore;
  readonly #local: LocalStore;

  constructor(path: string, local: LocalStore, opts?: OpenOpts) {
    this.db = new MetadataDB(path, opts);
    this.namespaces = new NamespaceStore(this.db);
    this.#local = local;
  }

  /** The stores scoped to `name`; the namespace is created by the first write into it. @throws InvalidArgumentError */
  namespace(name: string): NamespaceScope {
    validateIdentifier(name, 'namespace');
    return {
      name,
      images: new ImageStore(this.db, this.namespaces, name),
      content: new NamespacedContentStore(this.db, this.#local, this.namespaces, name),
      leases: new LeaseManager(this.db, this.namespaces, name),
      containers: new ContainerStore(this.db, this.namespaces, name),
      snapshots: (driver) => new SnapshotRecords(this.db, this.namespaces, name, driver),
    };
  }

  close(): void {
    this.db.close();
  }
}
