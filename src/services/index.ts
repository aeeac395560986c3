export { Berth, defaultRoot, type OpenBerthOpts } from './berth.js';
