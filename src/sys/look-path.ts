import { statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { FailedPreconditionError } from '../errdefs/index.js';

/** An executable on PATH, as an absolute path. @throws FailedPreconditionError naming the Debian package to install */
export function lookPath(name: string): string {
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  throw new FailedPreconditionError(`"${name}" was not found on PATH (install the Debian package "${name}")`);
}
