export { criProto } from './cri/index.js';
export { type Daemon, type DaemonOpts, defaultCriSocket, defaultHost, parseHost, startDaemon } from './daemon.js';
export { Engine, type EngineEvent, type EngineOpts, engineServer, maxAPIVersion, minAPIVersion } from './engine/index.js';
