export { allocated, collectGarbage, type GCOpts, type GCResult, type GCStores, listBlobs } from './collect.js';
export { BROKEN_LABEL, type Finding, type FindingKind, type FsckOpts, type FsckStores, fsck } from './fsck.js';
export { contentRefLabels, type Edges, GC_ROOT_LABEL, Graph, snapshotRefLabels } from './graph.js';
