export { dockerTime, type LogRecord, parseDuration, parseLogTime, type ReadLogOpts, readLog } from './logs.js';
export {
  type Attachment,
  type AttachPacket,
  attach,
  exitStatus,
  type LaunchOpts,
  launchMonitor,
  type Monitor,
  type MonitorPaths,
  reopenLog,
  resize,
} from './monitor.js';
export { resolveInRoot } from './rootfs-path.js';
export { Runc, runcFor, runcMessage } from './runc.js';
export { defaultSeccomp } from './seccomp.js';
export {
  allCapabilities,
  buildSpec,
  capabilityName,
  capabilitySet,
  defaultCapabilities,
  defaultPath,
  maskedPaths,
  mergeEnv,
  overrideEnv,
  processArgs,
  readonlyPaths,
  type SpecInput,
} from './spec.js';
export type { LinuxDevice, LinuxSeccomp, Process, RuntimeSpec, SeccompSyscall, SpecMount } from './spec-types.js';
export { maxUserDbSize, type ResolvedUser, resolveUser } from './user.js';
