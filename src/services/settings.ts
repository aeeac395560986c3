import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '../errdefs/index.js';
import { defaultBridge, formatSubnet, parseSubnet } from '../network/index.js';
import { writeFileAtomic } from '../sys/index.js';

/** A root's defaults, kept in `<root>/berth.json`. */
export interface Settings {
  /** Collect garbage after `rmi` and `rm`, as docker frees an image's layers at once. */
  gcAfterRemove: boolean;
  /** Keep a layer's compressed blob once it is unpacked (containerd's default); false drops it, as docker's classic store. */
  keepCompressedLayers: boolean;
  /** The default `bridge` network's IPv4 subnet (read when the network is first made). */
  bridgeSubnet: string;
}

export const defaultSettings: Readonly<Settings> = { gcAfterRemove: true, keepCompressedLayers: true, bridgeSubnet: defaultBridge.subnet };

export const settingKeys = Object.keys(defaultSettings) as (keyof Settings)[];

export async function readSettings(root: string): Promise<Settings> {
  let text: string;
  try {
    text = await readFile(join(root, 'berth.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ...defaultSettings };
    throw err;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError(`${join(root, 'berth.json')}: not valid JSON`);
  }
  const out: Settings = { ...defaultSettings };
  for (const k of settingKeys) {
    const x = (v as Record<string, unknown>)?.[k];
    if (typeof x === typeof out[k]) (out as unknown as Record<string, unknown>)[k] = x;
  }
  return out;
}

/** Sets one setting from its text form (`true`/`false`, or a subnet). @throws InvalidArgumentError */
export async function writeSetting(root: string, key: string, value: string): Promise<Settings> {
  if (!(settingKeys as string[]).includes(key)) throw new InvalidArgumentError(`unknown setting "${key}" (want ${settingKeys.join(', ')})`);
  const s = await readSettings(root);
  if (key === 'bridgeSubnet') {
    s.bridgeSubnet = formatSubnet(parseSubnet(value));
  } else {
    if (value !== 'true' && value !== 'false') throw new InvalidArgumentError(`setting "${key}": want true or false, not "${value}"`);
    (s as unknown as Record<string, boolean>)[key] = value === 'true';
  }
  await writeFileAtomic(join(root, 'berth.json'), `${JSON.stringify(s, null, 2)}\n`);
  return s;
}
