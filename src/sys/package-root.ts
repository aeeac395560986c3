import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The berth package's directory (its package.json), found by walking up from this module: the same
 * answer from the compiled tree (dist/src/…) and from the CLI bundle (dist/berth.cjs).
 */
export const packageRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'berth') return dir;
    } catch {
      // not here
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('berth: cannot find the package directory (package.json) above its modules');
    dir = up;
  }
})();

/** The CLI entry point: the bundle when it is built, else the compiled module. */
export function cliEntry(): string {
  const bundle = join(packageRoot, 'dist', 'berth.cjs');
  return existsSync(bundle) ? bundle : join(packageRoot, 'dist', 'src', 'cli', 'main.js');
}
