export { Berth, defaultRoot, type OpenBerthOpts, type SnapshotterName, snapshotterNames } from './berth.js';
