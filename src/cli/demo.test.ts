import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { packageRoot } from '../sys/index.js';

// The README's main-job command, as a fresh clone runs it: every step must succeed, offline.

test('the demo runs end to end: import, push, rmi, pull with the same image ID, containers, sizes, prune', async () => {
  const { stdout } = await promisify(execFile)('bash', ['scripts/demo.sh'], { cwd: packageRoot, maxBuffer: 64 << 20, timeout: 600_000 });
  assert.match(stdout, /before: (sha256:[0-9a-f]{64})\nafter: {2}\1\n/);
  assert.match(stdout, /hello from a container\n/);
  assert.match(stdout, /hello through the Engine API\n/);
  assert.match(stdout, /Why they differ/);
  assert.match(stdout, /Total reclaimed space: /);
});
