export {
  type ProgressEvent,
  readBlob,
  type VerifyResult,
  verifyBlob,
  type WriteBlobOpts,
  type WriteBlobResult,
  writeBlob,
} from './helpers.js';
export { IngestLockedError, type LocalCommitOpts, LocalStore, LocalWriter, type PublishGuard } from './local-store.js';
export type * from './store.js';
