export { Berth, defaultRoot, type OpenBerthOpts, type SnapshotterName, snapshotterNames } from './berth.js';
export {
  type Container,
  type ContainerHostConfig,
  type ContainerRunConfig,
  Containers,
  type CreateContainerOpts,
  type ExecOpts,
  loadSeccompProfile,
  lookPath,
  parseBind,
  type StoredContainerConfig,
} from './containers.js';
export { defaultSettings, readSettings, type Settings, settingKeys, writeSetting } from './settings.js';
