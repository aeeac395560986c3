export { flock, futimes, lutimes, MS, mknod, mount, seqpacketConnect, shutdown, type Timespec, umount, xattr } from './native.js';
export { cliEntry, packageRoot } from './package-root.js';
