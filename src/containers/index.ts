export type { Change, PathStat } from './archive.js';
export { Containers } from './containers.js';
export type { ExecProcess } from './exec.js';
export type { ContainerUpdate, StartOpts, StartResult } from './lifecycle.js';
export { mountPoints, parseMountFlag } from './mounts.js';
export { loadSeccompProfile } from './spec.js';
export type { CgroupStats } from './stats.js';
export type {
  Container,
  ContainerHost,
  ContainerHostConfig,
  ContainerObserver,
  ContainerRunConfig,
  CreateContainerOpts,
  ExecOpts,
  MountPoint,
  MountRequest,
  RestartPolicy,
  StoredContainerConfig,
} from './types.js';
