import type { BuildEvent } from './types.js';

/**
 * The classic builder's text for build events, as `docker build` (legacy) prints it and the Engine
 * API's build stream carries it: `Step 2/5 : RUN …`, the command's output, ` ---> Using cache`,
 * ` ---> 3f2a9c…`. Returns undefined for events it does not show.
 */
export function classicText(e: BuildEvent): string | Buffer | undefined {
  switch (e.type) {
    case 'step':
      return `Step ${e.step}/${e.total} : ${e.text}\n`;
    case 'cached':
      return ' ---> Using cache\n';
    case 'output':
      return e.data;
    case 'step-done':
      return e.id ? ` ---> ${shortId(e.id)}\n` : undefined; // a global ARG has no image yet
    case 'warning':
      return `[Warning] ${e.message}\n`;
  }
}

/** An image ID as docker shows it: 12 hex digits. */
export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}
