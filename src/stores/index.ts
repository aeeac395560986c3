export { BoltBucket, BoltCorruptError, BoltDB, type BoltEntry, readBolt } from './bbolt.js';
export { type ContainerdReadOpts, containerdPaths, readContainerdMeta, readContainerdStore, readVarint } from './containerd.js';
export { type ClassicImage, type ClassicLayer, classicDriver, type DockerReadOpts, readClassicImages, readDockerStore } from './docker.js';
export { tarSplitStream } from './tar-split.js';
export type { StoreImage, StoreKind, StoreLayer, StoreReport, StoreTotals } from './types.js';
