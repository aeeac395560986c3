import { InvalidArgumentError } from '../errdefs/index.js';
import { parseLogTime } from '../runtime/index.js';

// docker's listing filters, `key=value` each: the split and the label test every listing shares.

/** `key=value` split at the first `=`. @throws InvalidArgumentError without one */
export function splitFilter(filter: string): [string, string] {
  const i = filter.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`invalid filter "${filter}" (want key=value)`);
  return [filter.slice(0, i), filter.slice(i + 1)];
}

/** docker's `label=KEY` (present) or `label=KEY=VALUE` (equal). */
export function labelMatches(labels: Record<string, string>, want: string): boolean {
  const j = want.indexOf('=');
  return j < 0 ? want in labels : labels[want.slice(0, j)] === want.slice(j + 1);
}

/** docker's prune filters: `until=` (a time or a duration ago), `label=`, `label!=`. @throws InvalidArgumentError */
export function pruneMatches(item: { created: number; labels: Record<string, string> }, filter: string): boolean {
  const [k, v] = splitFilter(filter);
  if (k === 'until') return item.created < parseLogTime(v);
  if (k === 'label') return labelMatches(item.labels, v);
  if (k === 'label!') return !labelMatches(item.labels, v);
  throw new InvalidArgumentError(`invalid filter "${k}" (want until, label or label!)`);
}
