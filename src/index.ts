// The library API of berth: everything a program embedding it needs, through each folder's index.

export * from './archive/index.js';
export * from './containers/index.js';
export * from './content/index.js';
export * from './errdefs/index.js';
export * from './gc/index.js';
export * from './images/index.js';
export * from './metadata/index.js';
export * from './oci/index.js';
export * from './remotes/index.js';
export * from './runtime/index.js';
export * from './services/index.js';
export * from './snapshots/index.js';
