export { Engine, type EngineOpts, type WaitResult } from './engine.js';
export { type EngineEvent, EventLog } from './events.js';
export { maxAPIVersion, minAPIVersion } from './router.js';
export { engineServer } from './server.js';
