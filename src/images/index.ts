export {
  applyChange,
  type CommitOpts,
  type CommitResult,
  commitImage,
  configInGoOrder,
  goTime,
  scratchConfig,
  usesDockerTypes,
  type WrittenLayer,
  writeImage,
  writeLayer,
} from './commit.js';
export { type ConvertOpts, type ConvertResult, convertImage } from './convert.js';
export {
  contentSize,
  imageId,
  matchingManifests,
  type ResolvedImage,
  readConfig,
  readIndex,
  readManifest,
  resolveImage,
} from './image.js';
export { type ArchiveEntry, type LoadedImage, type LoadOpts, loadArchive } from './load.js';
export { type PullOpts, type PullResult, pull } from './pull.js';
export { type PushOpts, type PushResult, push } from './push.js';
export { type ArchiveFile, archiveFiles, type SaveOpts, tarFiles } from './save.js';
export {
  distributionSourceLabel,
  doneStatus,
  fetchInto,
  mapLimit,
  shortLayerId,
  type TransferEvent,
  type TransferOpts,
} from './transfer.js';
export { snapshotResource, type UnpackEvent, type UnpackOpts, type UnpackResult, unpack, unpackedTop, unpackUnderLease } from './unpack.js';
export { type ImageUsage, imageUsage, type LayerUsage, type StoreUsage, type UsageStores } from './usage.js';
export { type ChainLink, verifyImage } from './verify.js';
