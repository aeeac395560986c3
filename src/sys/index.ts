export { flock, lutimes, mknod, type Timespec, xattr } from './native.js';
