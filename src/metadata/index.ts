export {
  type ContainerRecord,
  type ContainerState,
  type ContainerStatus,
  ContainerStore,
  validateContainerName,
} from './containers.js';
export { NamespacedContentStore } from './content.js';
export { MetadataDB, type OpenOpts, schemaVersion } from './db.js';
export { maxIdentifierLength, mergeLabels, validateIdentifier, validateLabels } from './identifiers.js';
export { type Image, ImageStore } from './images.js';
export { type Lease, LeaseManager, type LeaseResource } from './leases.js';
export { Metadata, type NamespaceScope } from './metadata.js';
export { type Namespace, NamespaceStore } from './namespaces.js';
export {
  type SnapshotKind,
  SnapshotRecords,
  type SnapshotRef,
  type SnapshotRow,
  setSnapshotUsage,
  validateSnapshotKey,
} from './snapshots.js';
