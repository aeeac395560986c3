export { flock, futimes, lutimes, mknod, type Timespec, xattr } from './native.js';
