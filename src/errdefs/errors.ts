/** The kinds of failure berth reports; stable across releases, mapped to exit codes at the edges. */
export type ErrorCode =
  | 'UNKNOWN'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'UNAVAILABLE'
  | 'ABORTED'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED'
  | 'NOT_IMPLEMENTED'
  | 'DATA_LOSS'
  | 'DEADLINE_EXCEEDED'
  | 'INTERNAL';

/** Base of every error berth throws on purpose. Branch on `code` (see {@link hasCode}), never on the message. */
export class BerthError extends Error {
  readonly code: ErrorCode = 'UNKNOWN';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A missing object: blob, image, namespace, ingest. */
export class NotFoundError extends BerthError {
  override readonly code = 'NOT_FOUND';
}
/** A key that is already taken. */
export class AlreadyExistsError extends BerthError {
  override readonly code = 'ALREADY_EXISTS';
}
/** A bad reference, digest, identifier, manifest or tar entry. */
export class InvalidArgumentError extends BerthError {
  override readonly code = 'INVALID_ARGUMENT';
}
/** The world is not in the state the call needs: a digest or size mismatch, a non-empty namespace. */
export class FailedPreconditionError extends BerthError {
  override readonly code = 'FAILED_PRECONDITION';
}
/** Retryable: a locked ingest, a busy database, a registry 5xx or 429. */
export class UnavailableError extends BerthError {
  override readonly code = 'UNAVAILABLE';
}
/** The call was cancelled (an AbortSignal fired). */
export class AbortedError extends BerthError {
  override readonly code = 'ABORTED';
}
export class UnauthenticatedError extends BerthError {
  override readonly code = 'UNAUTHENTICATED';
}
export class PermissionDeniedError extends BerthError {
  override readonly code = 'PERMISSION_DENIED';
}
export class ResourceExhaustedError extends BerthError {
  override readonly code = 'RESOURCE_EXHAUSTED';
}
export class NotImplementedError extends BerthError {
  override readonly code = 'NOT_IMPLEMENTED';
}
/** Stored bytes are damaged: a blob whose content no longer matches its digest. */
export class DataLossError extends BerthError {
  override readonly code = 'DATA_LOSS';
}
/** The work did not finish in the time it was given (an exec's timeout). */
export class DeadlineExceededError extends BerthError {
  override readonly code = 'DEADLINE_EXCEEDED';
}
export class InternalError extends BerthError {
  override readonly code = 'INTERNAL';
}

function ownCode(err: unknown): ErrorCode | undefined {
  if (err instanceof BerthError) return err.code;
  if (err instanceof Error && err.name === 'AbortError') return 'ABORTED';
  return undefined;
}

/** `err` and the errors of its `cause` chain, outermost first. */
function* causeChain(err: unknown): Iterable<unknown> {
  const seen = new Set<unknown>();
  for (let e = err; e !== undefined && e !== null && !seen.has(e); e = (e as Error).cause) {
    seen.add(e);
    yield e;
  }
}

/** The first berth code found walking `err` and its `cause` chain, or 'UNKNOWN'. */
export function codeOf(err: unknown): ErrorCode {
  for (const e of causeChain(err)) {
    const code = ownCode(e);
    if (code !== undefined) return code;
  }
  return 'UNKNOWN';
}

/**
 * Whether `err` or any error in its `cause` chain carries `code`.
 * @example if (hasCode(err, 'NOT_FOUND')) return undefined;
 */
export function hasCode(err: unknown, code: ErrorCode): boolean {
  for (const e of causeChain(err)) if (ownCode(e) === code) return true;
  return false;
}

/** Throws AbortedError when `signal` has fired; call between steps of long work. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError('operation aborted', { cause: signal.reason });
}

/** The same kind of error with context in front, e.g. `unpack layer sha256:…: <message>`; the original is the cause. */
export function withContext(err: unknown, context: string): Error {
  if (err instanceof BerthError) {
    const Kind = err.constructor as new (message: string, options?: ErrorOptions) => BerthError;
    return new Kind(`${context}: ${err.message}`, { cause: err });
  }
  const e = new Error(`${context}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === undefined ? e : Object.assign(e, { code });
}
