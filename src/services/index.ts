export { Berth, defaultRoot, type OpenBerthOpts } from './berth.js';
export { type BuildCacheItem, buildCacheUsage, buildHost, pruneBuildCache } from './build.js';
export {
  commandText,
  exitCodeOf,
  humanDuration,
  inspectContainer,
  matchFilter,
  pruneContainers,
  statusText,
} from './container-view.js';
export {
  filterImages,
  findImages,
  type HistoryItem,
  type ImageRow,
  imageCreated,
  imageHistory,
  imageIdOf,
  imageRows,
  inspectImage,
  lookupImage,
  type PrunedImages,
  pruneImages,
  type RemovedImage,
  removeImages,
  repoOf,
  resolvedRow,
  tagImage,
  untaggedName,
} from './image-catalog.js';
export { loadImages } from './load.js';
export { checkRoot, networkLeftovers } from './network-check.js';
export {
  createNetwork,
  listNetworks,
  networkView,
  portList,
  portsText,
  pruneNetworks,
  removeNetwork,
} from './networks.js';
export { defaultSettings, readSettings, type Settings, settingKeys, writeSetting } from './settings.js';
export { importStore, type StoreImportOpts } from './store-import.js';
export { listVolumes, pruneVolumes, removeVolume, volumeUsage, volumeView } from './volumes.js';
