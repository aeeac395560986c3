export { type VolumeRecord, VolumeStore } from './store.js';
