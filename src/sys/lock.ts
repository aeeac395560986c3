import { closeSync, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { flock } from './native.js';

/**
 * Runs `fn` holding an exclusive flock on `path` (created when missing), polled without blocking so
 * the event loop stays free while another process holds it. Not reentrant within one process:
 * callers that may nest queue in-process first (see ContainerContext.locked).
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const fd = openSync(path, 'a');
  try {
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      try {
        flock(fd, 'ex', true);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EWOULDBLOCK' && code !== 'EAGAIN') throw err;
        await sleep(delay);
      }
    }
    return await fn();
  } finally {
    closeSync(fd);
  }
}
