import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Berth } from '../services/index.js';

// gc in one process while another creates ingests as fast as it can: a half-made ingest is neither
// garbage nor an error. gc runs with ingestMaxAge 0, so every ingest no writer holds is taken at once.

const run = promisify(execFile);
const library = fileURLToPath(new URL('../index.js', import.meta.url));
let work: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-ingest-race-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Runs a module script in its own Node process with the library as `lib`; returns its JSON output. */
async function script(body: string, root: string, ms: number): Promise<Record<string, number>> {
  const code = `const lib = await import(${JSON.stringify(library)});
const b = await lib.Berth.open({ root: ${JSON.stringify(root)} });
const end = Date.now() + ${ms};
const out = {};
${body}
b.close();
console.log(JSON.stringify(out));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], { timeout: ms + 60_000 });
  return JSON.parse(stdout) as Record<string, number>;
}

// Each ingest is committed, left for gc (a writer that went away), or aborted by its writer, which
// may find that gc took it, or is taking it, first.
const ingester = `
const { createHash, randomBytes } = await import('node:crypto');
const ns = b.namespace('default');
out.made = 0; out.committed = 0; out.takenByGc = 0;
while (Date.now() < end) {
  const ref = 'race-' + process.pid + '-' + out.made++;
  const data = randomBytes(1 + (out.made % 64) * 1024);
  const w = await ns.content.writer(ref);
  await w.write(data);
  if (out.made % 3 === 0) {
    await w.commit(data.length, 'sha256:' + createHash('sha256').update(data).digest('hex'));
    out.committed++;
    continue;
  }
  await w[Symbol.asyncDispose]();
  if (out.made % 3 === 1) continue;
  try {
    await ns.content.abort(ref);
  } catch (err) {
    // Gone, or held by gc while it removes it.
    if (!lib.hasCode(err, 'NOT_FOUND') && !(err instanceof lib.IngestLockedError)) throw err;
    out.takenByGc++;
  }
}`;

const collector = `
out.runs = 0; out.ingests = 0;
while (Date.now() < end) {
  const r = await b.gc({ ingestMaxAge: 0 });
  out.runs++;
  out.ingests += r.ingests.length;
}`;

test('gc ingest race: gc in a loop never fails on, nor takes, an ingest another process is creating', async () => {
  const root = join(work, 'root');
  (await Berth.open({ root })).close();
  const ms = 8000;
  const [made, swept] = await Promise.all([script(ingester, root, ms), script(collector, root, ms)]);
  assert.ok((made.made as number) > 100, `ingests made: ${made.made}`);
  assert.ok((swept.runs as number) > 10, `gc runs: ${swept.runs}`);
  assert.ok((swept.ingests as number) > 0, 'gc took some of the ingests left behind');
  // What gc left after the last run is swept by the next; nothing half made stays behind.
  await script('await b.gc({ ingestMaxAge: 0 });', root, 0);
  assert.deepEqual(
    (await readdir(join(root, 'content', 'ingest'))).filter((n) => !n.startsWith('.trash-')),
    [],
  );
  const berth = await Berth.open({ root });
  try {
    assert.deepEqual(
      (await berth.fsck()).filter((f) => f.severity === 'error'),
      [],
    );
  } finally {
    berth.close();
  }
});
