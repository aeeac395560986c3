export {
  type ApplyOpts,
  type ApplyResult,
  applyLayer,
  entryComponents,
  OPAQUE_MARKER,
  OVERLAY_OPAQUE_XATTR,
  WHITEOUT_PREFIX,
} from './apply.js';
export {
  type ArchiveCompression,
  compress,
  decompress,
  decompressArchive,
  detectArchiveCompression,
  detectCompression,
  isTarArchive,
} from './compression.js';
export { type DiffOpts, diffOverlay, diffTrees, pathTar } from './diff.js';
export { canChown, copyEntry, deviceNumbers, isWhiteout, lstatOrUndefined, SMALL_FILE, timesOf, xattrsOf } from './fs-meta.js';
export { type EntryType, headerOf, type SparseSegment, type TarHeader } from './tar/header.js';
export { parsePaxTime, type ReadTarOpts, readTar, type TarEntry } from './tar/reader.js';
export { encodeHeader, TAR_END, tarPadding } from './tar/writer.js';
