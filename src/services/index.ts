export { Berth, defaultRoot, type OpenBerthOpts } from './berth.js';
export {
  commandText,
  exitCodeOf,
  humanDuration,
  inspectContainer,
  matchFilter,
  mountList,
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
  networkSettings,
  networkView,
  portList,
  portSettings,
  portsText,
  pruneNetworks,
  removeNetwork,
} from './networks.js';
export { defaultSettings, readSettings, type Settings, settingKeys, writeSetting } from './settings.js';
export { listVolumes, pruneVolumes, removeVolume, volumeSize, volumeUsage, volumeUsers, volumeView } from './volumes.js';
