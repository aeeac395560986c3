export { readFileChunks, readFileHead, readFileUpTo, syncDirSync, writeFileAtomic } from './fs.js';
export { withFileLock } from './lock.js';
export { lookPath } from './look-path.js';
export {
  flock,
  futimes,
  lutimes,
  MS,
  mknod,
  mount,
  netnsConnect,
  netnsCreate,
  netnsDelete,
  seqpacketConnect,
  shutdown,
  type Timespec,
  umount,
  xattr,
} from './native.js';
export { cliEntry, packageRoot } from './package-root.js';
