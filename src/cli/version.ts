import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../sys/index.js';

/** The package version, read once from package.json. */
export const berthVersion: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();
