import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { berthMain } from '../src/testutil/cli.js';
import { type Comparison, compare } from './harness.js';

/**
 * `berth content add` of a 1 GiB file against `sha256sum FILE && cp FILE DEST`, alternating,
 * each on a fresh destination. Target (issue 2): at most 1.0x the pair's time, under 100 MiB RSS.
 */
export async function contentAdd(opts: { sizeMiB?: number; runs?: number } = {}): Promise<Comparison[]> {
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
    return await compare(
      `content add: ${sizeMiB} MiB file`,
      {
        name: 'berth content add FILE',
        argv: (i) => [process.execPath, berthMain, '--root', join(dir, `root-${i}`), 'content', 'add', '-q', file],
        cleanup: (i) => rm(join(dir, `root-${i}`), { recursive: true, force: true }),
      },
      {
        name: 'sha256sum FILE && cp FILE DEST',
        argv: (i) => ['bash', '-c', 'sha256sum "$1" >/dev/null && cp "$1" "$2"', 'pair', file, join(dir, `copy-${i}`)],
        cleanup: (i) => rm(join(dir, `copy-${i}`), { force: true }),
      },
      { runs, target: '<= 1.0x, < 100 MiB peak RSS', maxRatio: 1.0, maxRssMiB: 100 },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
