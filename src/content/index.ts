export {
  type ProgressEvent,
  readBlob,
  type VerifyResult,
  verifyBlob,
  type WriteBlobOpts,
  type WriteBlobResult,
  writeBlob,
} from './helpers.js';
export { IngestLockedError, type LocalCommitOpts, LocalWriter, type PublishGuard } from './ingest.js';
export { LocalStore } from './local-store.js';
export type * from './store.js';
