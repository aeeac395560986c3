export { Berth, defaultRoot, type OpenBerthOpts } from './berth.js';
export { defaultSettings, readSettings, type Settings, settingKeys, writeSetting } from './settings.js';
