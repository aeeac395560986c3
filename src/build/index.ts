export { build } from './builder.js';
export { BuildCache, CACHE_LEASE_PREFIX, type CachedStep, cacheEntries } from './cache.js';
export { classicText, shortId } from './output.js';
export { SourceTree } from './sources.js';
export type { BuildEvent, BuildHost, BuildOpts, BuildResult } from './types.js';
export { contextDockerfile, extractArchive, freshDir } from './workdirs.js';
