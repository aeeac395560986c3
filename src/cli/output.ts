import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { AbortedError, InvalidArgumentError } from '../errdefs/index.js';

export type Format = 'table' | 'json';

/** A listing format; `others` are what the command's own `--format` also takes (named in the error). */
export function parseFormat(s: string, others: readonly string[] = ['table', 'json']): Format {
  if (s !== 'table' && s !== 'json')
    throw new InvalidArgumentError(`invalid format "${s}": use ${others.map((o) => `"${o}"`).join(' or ')}`);
  return s;
}

/** Writes rows as docker does: upper-case headers, columns padded to their widest cell plus three spaces. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 3)))
      .join('')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

/** Prints a listing as a table or, with `--format json`, one JSON array. */
export function printListing<T>(
  format: Format,
  items: T[],
  headers: string[],
  row: (item: T) => string[],
  json: (item: T) => unknown,
): void {
  if (format === 'json') process.stdout.write(`${JSON.stringify(items.map(json), null, 2)}\n`);
  else process.stdout.write(renderTable(headers, items.map(row)));
}

export function printJSON(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

const decimalUnits = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** Sizes as docker prints them: decimal units, three significant digits (`1.07GB`, `12.3kB`). */
export function humanSize(bytes: number): string {
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < decimalUnits.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${decimalUnits[i]}`;
}

/** Binary units for progress (`512MiB`). */
export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)}${units[i]}`;
}

export { humanDuration } from '../services/index.js';

export function formatLabels(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

/** Commander's collector for a repeatable option: every value, in order. */
export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Parses `k=v` arguments; `k=` (empty value) is kept, to remove a label. */
export function parseKeyValues(args: string[], what = 'label'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(a)}: expected key=value`);
    out[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return out;
}

/** docker's prune flags: `-f` and `--filter`. */
export function pruneOptions(cmd: Command): Command {
  return cmd
    .option('-f, --force', 'do not ask for confirmation')
    .option('--filter <key=value>', 'until=, label=, label!= (repeatable)', collect);
}

/** Asks docker's question on a terminal; elsewhere (scripts, tests) goes on, as `--force` would. */
export async function confirm(force: boolean | undefined, warning: string): Promise<void> {
  if (force || !process.stdin.isTTY) return;
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question(`${warning}Are you sure you want to continue? [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new AbortedError('prune cancelled');
  } finally {
    rl.close();
  }
}
