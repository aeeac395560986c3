import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import {
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  type Platform,
  parsePlatform,
  platformMatcher,
  strictPlatformMatcher,
} from './index.js';

test('parsePlatform normalises aliases', () => {
  const table: [string, string][] = [
    ['linux/amd64', 'linux/amd64'],
    ['linux/x86_64', 'linux/amd64'],
    ['linux/x86-64', 'linux/amd64'],
    ['linux/amd64/v1', 'linux/amd64'],
    ['linux/amd64/v3', 'linux/amd64/v3'],
    ['linux/aarch64', 'linux/arm64'],
    ['linux/arm64/v8', 'linux/arm64'],
    ['linux/arm64/v8.2', 'linux/arm64/v8.2'],
    ['linux/arm64/9', 'linux/arm64/v9'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/arm/6', 'linux/arm/v6'],
    ['linux/armhf', 'linux/arm/v7'],
    ['linux/armel', 'linux/arm/v6'],
    ['linux/i386', 'linux/386'],
    ['Linux/AMD64', 'linux/amd64'],
    ['macos/arm64', 'darwin/arm64'],
    ['windows/amd64', 'windows/amd64'],
    ['linux/s390x', 'linux/s390x'],
  ];
  for (const [input, want] of table) assert.equal(formatPlatform(parsePlatform(input)), want, input);
});

test('parsePlatform fills a lone os or architecture from the host', () => {
  const host = hostPlatform();
  assert.equal(parsePlatform('linux').os, 'linux');
  assert.equal(parsePlatform('linux').architecture, host.architecture);
  assert.equal(parsePlatform('arm64').os, host.os);
  assert.equal(parsePlatform('arm64').architecture, 'arm64');
});

test('parsePlatform refuses bad specifiers with InvalidArgument', () => {
  for (const s of ['', 'linux/', '/amd64', 'linux/amd64/v1/x', 'nope', 'linux/nope', 'nope/amd64', 'linux/*', 'linux/am d64']) {
    assert.throws(() => parsePlatform(s), { code: 'INVALID_ARGUMENT' }, s);
  }
});

test('hostPlatform is normalised and parses back', () => {
  const h = hostPlatform();
  assert.deepEqual(parsePlatform(formatPlatform(h)), h);
});

const P = (s: string): Platform => {
  const [os, architecture, variant] = s.split('/') as [string, string, string?];
  return variant ? { os, architecture, variant } : { os, architecture };
};

test('platformMatcher matches what containerd Only matches', () => {
  const cases: [string, string[], string[]][] = [
    ['linux/amd64', ['linux/amd64', 'linux/386', 'linux/x86_64', 'linux/amd64/v1'], ['linux/amd64/v2', 'linux/arm64', 'windows/amd64']],
    ['linux/amd64/v3', ['linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64', 'linux/386'], ['linux/amd64/v4']],
    ['linux/arm/v7', ['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5', 'linux/arm'], ['linux/arm/v8', 'linux/arm64']],
    ['linux/arm/v6', ['linux/arm/v6', 'linux/arm/v5'], ['linux/arm/v7']],
    [
      'linux/arm64',
      ['linux/arm64', 'linux/arm64/v8', 'linux/aarch64', 'linux/arm/v8', 'linux/arm/v7', 'linux/arm/v5'],
      ['linux/arm64/v8.1', 'linux/amd64'],
    ],
    ['linux/arm64/v8.2', ['linux/arm64/v8.2', 'linux/arm64/v8.1', 'linux/arm64'], ['linux/arm64/v8.3', 'linux/arm64/v9']],
    ['linux/arm64/v9', ['linux/arm64/v9', 'linux/arm64/v8.5', 'linux/arm64/v8', 'linux/arm/v7'], ['linux/arm64/v9.1', 'linux/arm64/v8.6']],
  ];
  for (const [wanted, yes, no] of cases) {
    const m = platformMatcher(parsePlatform(wanted));
    for (const p of yes) assert.equal(m.match(P(p)), true, `${wanted} should match ${p}`);
    for (const p of no) assert.equal(m.match(P(p)), false, `${wanted} should not match ${p}`);
  }
});

test('platformMatcher orders the best match first', () => {
  const m = platformMatcher(parsePlatform('linux/amd64/v3'));
  const candidates = ['linux/386', 'linux/arm64', 'linux/amd64', 'linux/amd64/v3', 'linux/amd64/v2'].map(P);
  const sorted = candidates.filter((p) => m.match(p)).sort((a, b) => (m.less(a, b) ? -1 : m.less(b, a) ? 1 : 0));
  assert.deepEqual(sorted.map(formatPlatform), ['linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64', 'linux/386']);
  const arm = platformMatcher(parsePlatform('linux/arm/v7'));
  assert.equal(arm.less(P('linux/arm/v7'), P('linux/arm/v6')), true);
  assert.equal(arm.less(P('linux/arm/v5'), P('linux/arm/v6')), false);
});

test('strictPlatformMatcher matches only the platform itself', () => {
  const m = strictPlatformMatcher(parsePlatform('linux/amd64'));
  assert.equal(m.match(P('linux/x86_64')), true);
  assert.equal(m.match(P('linux/386')), false);
});

test('parsePlatform property: parses to a value that prints back the same, or throws InvalidArgument', () => {
  const part = fc.oneof(
    fc.constantFrom(
      'linux',
      'windows',
      'darwin',
      'macos',
      'amd64',
      'x86_64',
      'arm',
      'arm64',
      'aarch64',
      'armhf',
      'i386',
      'v7',
      'v8',
      '8',
      'v8.2',
      'v9',
      'v3',
      '',
    ),
    fc.string({ maxLength: 6 }),
  );
  fc.assert(
    fc.property(fc.array(part, { minLength: 1, maxLength: 4 }), (parts) => {
      const s = parts.join('/');
      let p: Platform;
      try {
        p = parsePlatform(s);
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'INVALID_ARGUMENT', s);
        return;
      }
      assert.deepEqual(normalizePlatform(p), p);
      assert.deepEqual(parsePlatform(formatPlatform(p)), p);
    }),
    { numRuns: 2000 },
  );
});
