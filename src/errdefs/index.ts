export * from './errors.js';
export { exitCodes, httpStatuses } from './exit-codes.js';
