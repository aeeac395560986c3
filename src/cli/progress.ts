import type { ProgressEvent } from '../content/index.js';
import { humanBytes } from './output.js';

interface Line {
  label: string;
  offset: number;
  total: number;
  done: boolean;
  startedAt: number;
  lastPrinted: number;
  lastFraction: number;
}

/**
 * Shows transfers: a redrawn bar per transfer on a TTY, plain lines otherwise (after the first
 * second, every 10% or 5 s, and at the end), nothing when quiet.
 */
export class ProgressView {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #quiet: boolean;
  readonly #lines = new Map<string, Line>();
  #drawn = 0;
  #lastDraw = 0;

  constructor(opts: { out?: NodeJS.WriteStream; quiet?: boolean } = {}) {
    this.#out = opts.out ?? process.stderr;
    this.#tty = this.#out.isTTY === true && process.env.TERM !== 'dumb';
    this.#quiet = opts.quiet ?? false;
  }

  /** Records progress of one transfer; `label` is what the line shows (a digest, a file). */
  update(e: ProgressEvent, label: string = e.ref): void {
    if (this.#quiet) return;
    let line = this.#lines.get(e.ref);
    if (!line) {
      line = { label, offset: e.offset, total: e.total, done: false, startedAt: Date.now(), lastPrinted: 0, lastFraction: -1 };
      this.#lines.set(e.ref, line);
    }
    line.offset = e.offset;
    line.total = e.total;
    this.#render(line, false);
  }

  /** Marks a transfer finished with a status word ("Done", "Already exists"). */
  finish(ref: string, status: string): void {
    if (this.#quiet) return;
    const line = this.#lines.get(ref);
    if (!line) return;
    line.done = true;
    line.label = `${line.label}: ${status}`;
    this.#render(line, true);
  }

  #render(line: Line, force: boolean): void {
    const now = Date.now();
    if (this.#tty) {
      if (!force && now - this.#lastDraw < 100) return;
      this.#lastDraw = now;
      if (this.#drawn > 0) this.#out.write(`\x1b[${this.#drawn}A`);
      for (const l of this.#lines.values()) this.#out.write(`\x1b[2K${this.#bar(l)}\n`);
      this.#drawn = this.#lines.size;
      return;
    }
    // Plain lines: nothing for a transfer done within a second but its last line; then every 10% or 5 s.
    if (!force && now - line.startedAt < 1000) return;
    const fraction = line.total > 0 ? Math.floor((line.offset / line.total) * 10) : -1;
    if (force || line.lastPrinted === 0 || fraction > line.lastFraction || now - line.lastPrinted >= 5000) {
      line.lastPrinted = now;
      line.lastFraction = fraction;
      const amount = line.total > 0 ? `${humanBytes(line.offset)}/${humanBytes(line.total)}` : humanBytes(line.offset);
      this.#out.write(line.done ? `${line.label}\n` : `${line.label}: ${amount}\n`);
    }
  }

  #bar(l: Line): string {
    if (l.done) return l.label;
    const width = 40;
    if (l.total <= 0) return `${l.label}  ${humanBytes(l.offset)}`;
    const filled = Math.min(width, Math.round((l.offset / l.total) * width));
    const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}`;
    return `${l.label}  [${bar}]  ${humanBytes(l.offset)}/${humanBytes(l.total)}`;
  }
}
