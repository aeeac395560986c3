export { type Driver, type SnapshotterName, snapshotterNames } from './driver.js';
export { isMountPoint, mountAll, overlaySupported, unmount } from './mount.js';
export { NativeDriver } from './native.js';
export { OverlayDriver } from './overlay.js';
export { type ApplyTarget, SnapshotService } from './service.js';
export {
  type CreateOpts,
  type Mount,
  SNAPSHOT_REF_LABEL,
  type SnapshotInfo,
  type SnapshotKind,
  type Snapshotter,
  type Usage,
} from './snapshotter.js';
export { diskUsage, storedUsage } from './usage.js';
