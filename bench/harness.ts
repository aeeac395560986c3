import { spawn } from 'node:child_process';

/** One timed run of a command: wall seconds and the peak RSS of its largest process. */
export interface Sample {
  seconds: number;
  peakRssMiB: number;
}

/** Runs `argv` under GNU time (`/usr/bin/time`, Debian package `time`) and reads its figures. */
export function timed(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/time', ['-f', '__bench__ %e %M', ...argv], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => {
      err += d;
    });
    p.on('error', reject);
    p.on('close', (code) => {
      const m = /__bench__ ([\d.]+) (\d+)/.exec(err);
      if (code !== 0 || !m) {
        reject(new Error(`${argv.join(' ')} exited ${code}: ${err.trim()}`));
        return;
      }
      resolve({ seconds: Number(m[1]), peakRssMiB: Number(m[2]) / 1024 });
    });
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export interface Comparison {
  benchmark: string;
  subject: string;
  peer: string;
  subjectSeconds: number;
  peerSeconds: number;
  ratio: number;
  subjectPeakRssMiB: number;
  peerPeakRssMiB: number;
  target: string;
  met: boolean;
}

export function printComparison(c: Comparison): void {
  const f = (n: number) => n.toFixed(3);
  process.stdout.write(
    `${c.benchmark}\n` +
      `  ${c.subject.padEnd(44)} ${f(c.subjectSeconds)} s   peak RSS ${c.subjectPeakRssMiB.toFixed(1)} MiB\n` +
      `  ${c.peer.padEnd(44)} ${f(c.peerSeconds)} s   peak RSS ${c.peerPeakRssMiB.toFixed(1)} MiB\n` +
      `  ratio ${c.ratio.toFixed(2)}x   target: ${c.target}${c.target === 'reference' ? '' : `   ${c.met ? 'met' : 'NOT met'}`}\n`,
  );
}

/** One side of a comparison: the command of run `i`, and what to do around it (not timed). */
export interface Contender {
  name: string;
  argv: (i: number) => string[];
  setup?: (i: number) => Promise<void>;
  cleanup: (i: number) => Promise<void>;
  /** Peak RSS (MiB) of helpers the command talks to (a daemon), read after run `i` and counted too. */
  helperPeakRssMiB?: (i: number) => Promise<number>;
}

/**
 * Runs the subject and each peer alternately, `runs` times after one warm-up each, with `sync`
 * before every timed command, and compares their medians: one comparison per peer.
 */
export async function compare(
  benchmark: string,
  subject: Contender,
  peers: Contender | Contender[],
  opts: { runs: number; target: string; maxRatio: number; maxRssMiB: number; targets?: (string | undefined)[] },
): Promise<Comparison[]> {
  const all = [subject, ...(Array.isArray(peers) ? peers : [peers])];
  const samples: Sample[][] = all.map(() => []);
  for (let i = 0; i <= opts.runs; i++) {
    for (const [k, who] of all.entries()) {
      await who.setup?.(i);
      await timed(['sync']);
      const sample = await timed(who.argv(i));
      if (who.helperPeakRssMiB) sample.peakRssMiB = Math.max(sample.peakRssMiB, await who.helperPeakRssMiB(i));
      await who.cleanup(i);
      if (i > 0) samples[k]?.push(sample);
    }
  }
  const [mine, ...theirs] = samples as [Sample[], ...Sample[][]];
  const subjectSeconds = median(mine.map((s) => s.seconds));
  const subjectPeakRssMiB = Math.max(...mine.map((s) => s.peakRssMiB));
  return theirs.map((b, k) => {
    const peerSeconds = median(b.map((s) => s.seconds));
    const ratio = subjectSeconds / peerSeconds;
    // Only the first peer carries the target; the others are for reference.
    const target = k === 0 ? opts.target : 'reference';
    return {
      benchmark: `${benchmark}, median of ${opts.runs}`,
      subject: subject.name,
      peer: (all[k + 1] as Contender).name,
      subjectSeconds,
      peerSeconds,
      ratio,
      subjectPeakRssMiB,
      peerPeakRssMiB: Math.max(...b.map((s) => s.peakRssMiB)),
      target,
      met: k === 0 ? ratio <= opts.maxRatio && subjectPeakRssMiB < opts.maxRssMiB : true,
    };
  });
}
