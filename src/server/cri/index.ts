export { type CriContext, criProto, startCriServer } from './server.js';
