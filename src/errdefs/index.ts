export * from './errors.js';
export { exitCodes } from './exit-codes.js';
