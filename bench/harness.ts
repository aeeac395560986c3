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
      `  ratio ${c.ratio.toFixed(2)}x   target: ${c.target}   ${c.met ? 'met' : 'NOT met'}\n`,
  );
}
