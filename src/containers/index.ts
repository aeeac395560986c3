export { Containers } from './containers.js';
export { loadSeccompProfile, parseBind } from './spec.js';
export type {
  Container,
  ContainerHost,
  ContainerHostConfig,
  ContainerRunConfig,
  CreateContainerOpts,
  ExecOpts,
  StoredContainerConfig,
} from './types.js';
