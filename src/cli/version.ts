import { readFileSync } from 'node:fs';

/** The package version, read once from package.json beside dist/. */
export const berthVersion: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();
