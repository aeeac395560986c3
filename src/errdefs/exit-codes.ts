import type { ErrorCode } from './errors.js';

/**
 * Process exit status per error kind: the one place the CLI maps codes to numbers.
 * 2 is also what a usage error (unknown flag, missing argument) exits with.
 */
export const exitCodes: Readonly<Record<ErrorCode, number>> = {
  UNKNOWN: 1,
  INTERNAL: 1,
  INVALID_ARGUMENT: 2,
  NOT_FOUND: 3,
  ALREADY_EXISTS: 4,
  FAILED_PRECONDITION: 5,
  UNAVAILABLE: 6,
  ABORTED: 7,
  UNAUTHENTICATED: 8,
  PERMISSION_DENIED: 8,
  RESOURCE_EXHAUSTED: 9,
  NOT_IMPLEMENTED: 10,
  DATA_LOSS: 11,
  DEADLINE_EXCEEDED: 12,
};

/** HTTP status per error kind, as dockerd's errdefs map them: the one place the daemon maps codes. */
export const httpStatuses: Readonly<Record<ErrorCode, number>> = {
  UNKNOWN: 500,
  INTERNAL: 500,
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  FAILED_PRECONDITION: 409,
  UNAVAILABLE: 503,
  ABORTED: 409,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 413,
  NOT_IMPLEMENTED: 501,
  DATA_LOSS: 500,
  DEADLINE_EXCEEDED: 504,
};

/** gRPC status per error kind (CRI): the one place the CRI server maps codes. */
export const grpcStatuses: Readonly<Record<ErrorCode, number>> = {
  UNKNOWN: 2,
  INTERNAL: 13,
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  FAILED_PRECONDITION: 9,
  UNAVAILABLE: 14,
  ABORTED: 10,
  UNAUTHENTICATED: 16,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  NOT_IMPLEMENTED: 12,
  DATA_LOSS: 15,
  DEADLINE_EXCEEDED: 4,
};
