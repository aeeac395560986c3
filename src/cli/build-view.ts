import { type BuildEvent, classicText } from '../build/index.js';

interface StepLine {
  step: number;
  total: number;
  stage: string;
  text: string;
  startedAt: number;
  state: 'running' | 'cached' | 'done';
  seconds?: number;
  tail: string[];
}

/**
 * Shows a build: on a terminal, a live view redrawn in place (each step with its time, the last
 * lines of a running step's output); otherwise the classic builder's plain lines. Quiet shows nothing.
 */
export class BuildView {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #quiet: boolean;
  readonly #steps = new Map<number, StepLine>();
  readonly #startedAt = Date.now();
  /** The last output of each step (what a failure shows when the output was not on screen). */
  readonly #output = new Map<number, Buffer[]>();
  #current = 0;
  #drawn = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: { out?: NodeJS.WriteStream; quiet?: boolean; tty?: boolean } = {}) {
    this.#out = opts.out ?? process.stdout;
    this.#tty = opts.tty ?? (this.#out.isTTY === true && process.env.TERM !== 'dumb');
    this.#quiet = opts.quiet ?? false;
  }

  readonly onEvent = (e: BuildEvent): void => {
    if (e.type === 'step') this.#current = e.step;
    if (e.type === 'output' && (this.#quiet || this.#tty)) {
      const kept = this.#output.get(e.step) ?? [];
      kept.push(e.data);
      while (kept.length > 1 && kept.reduce((n, b) => n + b.length, 0) > 16384) kept.shift();
      this.#output.set(e.step, kept);
    }
    if (this.#quiet) return;
    if (!this.#tty) {
      const text = classicText(e);
      if (text !== undefined) this.#out.write(text);
      return;
    }
    if (e.type === 'warning') {
      this.#clear();
      this.#out.write(`WARNING: ${e.message}\n`);
    } else if (e.type === 'step') {
      this.#steps.set(e.step, {
        step: e.step,
        total: e.total,
        stage: e.stage,
        text: e.text,
        startedAt: Date.now(),
        state: 'running',
        tail: [],
      });
    } else {
      const s = this.#steps.get(e.step);
      if (!s) return;
      if (e.type === 'cached') s.state = 'cached';
      else if (e.type === 'step-done') {
        if (s.state === 'running') s.state = 'done';
        s.seconds = e.seconds;
      } else if (e.type === 'output') {
        s.tail.push(
          ...e.data
            .toString()
            .split('\n')
            .filter((l) => l.trim() !== ''),
        );
        s.tail.splice(0, Math.max(0, s.tail.length - 4));
      }
    }
    this.#timer ??= setInterval(() => this.#draw(), 100);
  };

  /** After a failure: the failing step's output, when it was not printed as it came (quiet, or the live view's few lines). */
  failed(err: NodeJS.WritableStream = process.stderr): void {
    const out = this.#output.get(this.#current);
    if (out?.length) err.write(Buffer.concat(out));
  }

  /** The last frame (or nothing more, in plain mode). */
  finish(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#tty && !this.#quiet) this.#draw(true);
  }

  #clear(): void {
    if (this.#drawn > 0) this.#out.write(`\x1b[${this.#drawn}A\x1b[J`);
    this.#drawn = 0;
  }

  #draw(final = false): void {
    const width = Math.max(40, this.#out.columns ?? 100);
    const clip = (s: string) => (s.length > width - 1 ? `${s.slice(0, width - 2)}…` : s);
    const steps = [...this.#steps.values()].sort((a, b) => a.step - b.step);
    const done = steps.filter((s) => s.state !== 'running').length;
    const lines = [
      `[+] Building ${((Date.now() - this.#startedAt) / 1000).toFixed(1)}s (${done}/${steps[0]?.total ?? 0})${final ? ' FINISHED' : ''}`,
    ];
    for (const s of steps.slice(-15)) {
      const t = s.state === 'cached' ? 'CACHED' : `${(s.seconds ?? (Date.now() - s.startedAt) / 1000).toFixed(1)}s`;
      lines.push(clip(` => [${s.stage} ${s.step}/${s.total}] ${s.text}`.padEnd(Math.min(width - 10, 70)) + ` ${t}`));
      if (s.state === 'running') for (const l of s.tail) lines.push(clip(`    ${l}`));
    }
    this.#clear();
    this.#out.write(`${lines.join('\n')}\n`);
    this.#drawn = final ? 0 : lines.length;
  }
}
