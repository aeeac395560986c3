import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { dockerTime, parseLogTime, readLog } from './logs.js';

test('readLog joins partial lines, keeps streams apart, tails and filters by time', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-logs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.log');
  await writeFile(
    file,
    [
      '2026-01-01T00:00:01.000000001+00:00 stdout P abc',
      '2026-01-01T00:00:02.000000000+00:00 stderr F err one',
      '2026-01-01T00:00:03.000000000+00:00 stdout F def',
      '2026-01-01T00:00:04.000000000+00:00 stdout F ',
      'garbage',
      '2026-01-01T00:00:05.000000000+00:00 stdout F last',
      '',
    ].join('\n'),
  );
  const all = [];
  for await (const r of readLog(file)) all.push([r.time, r.stream, r.data.toString()]);
  assert.deepEqual(all, [
    ['2026-01-01T00:00:02.000000000+00:00', 'stderr', 'err one\n'],
    ['2026-01-01T00:00:01.000000001+00:00', 'stdout', 'abcdef\n'],
    ['2026-01-01T00:00:04.000000000+00:00', 'stdout', '\n'],
    ['2026-01-01T00:00:05.000000000+00:00', 'stdout', 'last\n'],
  ]);
  const tail = [];
  for await (const r of readLog(file, { tail: 2 })) tail.push(r.data.toString());
  assert.deepEqual(tail, ['\n', 'last\n']);
  const since = [];
  for await (const r of readLog(file, { since: Date.parse('2026-01-01T00:00:04Z') })) since.push(r.data.toString());
  assert.deepEqual(since, ['\n', 'last\n']);
  const none = [];
  for await (const r of readLog(join(dir, 'absent.log'))) none.push(r);
  assert.deepEqual(none, []);
  assert.equal(dockerTime('2026-01-01T00:00:01.000000001+00:00'), '2026-01-01T00:00:01.000000001Z');
});

test('parseLogTime takes RFC 3339, Unix times and durations', () => {
  const now = Date.parse('2026-01-01T01:00:00Z');
  assert.equal(parseLogTime('2026-01-01T00:00:00Z', now), Date.parse('2026-01-01T00:00:00Z'));
  assert.equal(parseLogTime('1700000000.5', now), 1700000000500);
  assert.equal(parseLogTime('10m', now), now - 600000);
  assert.equal(parseLogTime('1h30m', now), now - 5400000);
  assert.throws(() => parseLogTime('yesterday', now), { code: 'INVALID_ARGUMENT' });
});
