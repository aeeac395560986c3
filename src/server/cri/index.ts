export type { CriContext } from './context.js';
export { criProto, startCriServer } from './server.js';
export { StreamingServer, type StreamRequest } from './streaming.js';
