export {
  type CriAuth,
  type CriImage,
  criCredentials,
  imageFsInfo,
  imageStatus,
  listImages,
  normalizeImage,
  pullImage,
  removeImage,
} from './images.js';
export { ensurePauseImage, pauseImageName } from './pause-image.js';
export {
  createPodContainer,
  execSync,
  podContainer,
  removePodContainer,
  startPodContainer,
  statusMounts,
  stopPodContainer,
  updatePodContainer,
} from './pod-containers.js';
export { defaultCniConfDir, loadPodNetwork } from './pod-network.js';
export { criNamespace, type PodContainer, type PodEvent, Pods, type PodsOpts, type Sandbox } from './pods.js';
export { containerStats, podStats } from './stats.js';
export type { ContainerConfig, LinuxContainerResources, PodSandboxConfig } from './types.js';
