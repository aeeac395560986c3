import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Comparison, median, timed } from './harness.js';

const berthMain = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/**
 * `berth content add` of a 1 GiB file against `sha256sum FILE && cp FILE DEST`, alternating,
 * each on a fresh destination. Target (issue 2): at most 1.0x the pair's time, under 100 MiB RSS.
 */
export async function contentAdd(opts: { sizeMiB?: number; runs?: number } = {}): Promise<Comparison> {
  const sizeMiB = opts.sizeMiB ?? 1024;
  const runs = opts.runs ?? 3;
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-add-'));
  try {
    const file = join(dir, 'input.bin');
    const fh = await open(file, 'w');
    const block = randomBytes(1 << 20);
    for (let i = 0; i < sizeMiB; i++) {
      block.writeUInt32LE(i, 0);
      await fh.write(block);
    }
    await fh.close();
    const berth: { seconds: number; peakRssMiB: number }[] = [];
    const pair: { seconds: number; peakRssMiB: number }[] = [];
    // One warm-up of each, so both read the input from the page cache.
    for (let i = 0; i <= runs; i++) {
      const root = join(dir, `root-${i}`);
      // Dirty pages of the previous run are written back before each timed command.
      await timed(['sync']);
      const b = await timed([process.execPath, berthMain, '--root', root, 'content', 'add', '-q', file]);
      await rm(root, { recursive: true, force: true });
      const dest = join(dir, `copy-${i}`);
      await timed(['sync']);
      const p = await timed(['bash', '-c', 'sha256sum "$1" >/dev/null && cp "$1" "$2"', 'pair', file, dest]);
      await rm(dest, { force: true });
      if (i > 0) {
        berth.push(b);
        pair.push(p);
      }
    }
    const subjectSeconds = median(berth.map((s) => s.seconds));
    const peerSeconds = median(pair.map((s) => s.seconds));
    const subjectPeakRssMiB = Math.max(...berth.map((s) => s.peakRssMiB));
    const ratio = subjectSeconds / peerSeconds;
    return {
      benchmark: `content add: ${sizeMiB} MiB file, median of ${runs}`,
      subject: 'berth content add FILE',
      peer: 'sha256sum FILE && cp FILE DEST',
      subjectSeconds,
      peerSeconds,
      ratio,
      subjectPeakRssMiB,
      peerPeakRssMiB: Math.max(...pair.map((s) => s.peakRssMiB)),
      target: '<= 1.0x, < 100 MiB peak RSS',
      met: ratio <= 1.0 && subjectPeakRssMiB < 100,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
