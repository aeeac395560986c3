export * from './errors.js';
export { exitCodes, grpcStatuses, httpStatuses } from './exit-codes.js';
