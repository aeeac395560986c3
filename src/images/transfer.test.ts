import assert from 'node:assert/strict';
import test from 'node:test';
import { mapLimit } from './transfer.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('mapLimit keeps order and never runs more than the limit at once', async () => {
  let running = 0;
  let peak = 0;
  const out = await mapLimit([5, 1, 4, 2, 3], 2, async (n) => {
    running++;
    peak = Math.max(peak, running);
    await tick(n * 3);
    running--;
    return n * 10;
  });
  assert.deepEqual(out, [50, 10, 40, 20, 30]);
  assert.equal(peak, 2);
});

test('mapLimit stops new work after a failure and lets work in flight settle before throwing', async () => {
  const started: number[] = [];
  const finished: number[] = [];
  await assert.rejects(
    mapLimit([1, 2, 3, 4, 5], 2, async (n) => {
      started.push(n);
      if (n === 1) throw new Error('first fails');
      await tick(20);
      finished.push(n);
    }),
    /first fails/,
  );
  assert.deepEqual(finished, [2], 'the item in flight finished before the rejection');
  assert.ok(!started.includes(5), 'no new work after the failure');
});
