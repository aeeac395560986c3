export type { CriContext } from './context.js';
export { criProto, startCriServer } from './server.js';
