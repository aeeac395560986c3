import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { familiarString, formatReference, parseReference } from './index.js';

const D = `sha256:${'e'.repeat(64)}`;

test('parseReference normalises as docker does', () => {
  const table: [string, string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['user/app:v1', 'docker.io/user/app:v1', 'user/app:v1'],
    ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
    ['localhost:5000/a/b:tag', 'localhost:5000/a/b:tag', 'localhost:5000/a/b:tag'],
    ['127.0.0.1:5000/a/b/c', '127.0.0.1:5000/a/b/c:latest', '127.0.0.1:5000/a/b/c:latest'],
    ['[::1]:5000/x', '[::1]:5000/x:latest', '[::1]:5000/x:latest'],
    ['quay.io/org/img-name_x.y__z', 'quay.io/org/img-name_x.y__z:latest', 'quay.io/org/img-name_x.y__z:latest'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`, `busybox@${D}`],
    [`busybox:1@${D}`, `docker.io/library/busybox:1@${D}`, `busybox:1@${D}`],
    ['Registry.Example/a', 'Registry.Example/a:latest', 'Registry.Example/a:latest'],
    ['a---b/c', 'docker.io/a---b/c:latest', 'a---b/c:latest'],
    ['localhost:5000', 'docker.io/library/localhost:5000', 'localhost:5000'],
  ];
  for (const [input, full, familiar] of table) {
    const r = parseReference(input);
    assert.equal(formatReference(r), full, input);
    assert.equal(familiarString(r), familiar, input);
  }
});

test('parseReference splits parts', () => {
  const r = parseReference(`localhost:5000/a/b:t@${D}`);
  assert.deepEqual(r, { domain: 'localhost:5000', path: 'a/b', tag: 't', digest: D });
});

test('parseReference refuses what docker refuses, with InvalidArgument', () => {
  const bad = [
    '',
    'Busybox',
    'user/App',
    'a//b',
    '/a',
    'a/',
    'a:',
    ':tag',
    'a@sha256:abc',
    `a@sha256:${'E'.repeat(64)}`,
    `a@md5:${'e'.repeat(32)}`,
    'a:-tag',
    `a:${'t'.repeat(129)}`,
    'e'.repeat(64),
    'a_-b',
    'a..b',
    'a b',
    'host:port/a',
    `${'a'.repeat(250)}/b`,
    '-a/b',
    'a/b:tag:tag',
  ];
  for (const s of bad) assert.throws(() => parseReference(s), { code: 'INVALID_ARGUMENT' }, s);
});

test('parseReference accepts names up to 255 characters, domain included', () => {
  const at255 = `docker.io/x/${'a'.repeat(255 - 'docker.io/x/'.length)}`;
  assert.equal(formatReference(parseReference(at255)), `${at255}:latest`);
  assert.throws(() => parseReference(`${at255}a`), { code: 'INVALID_ARGUMENT', message: /longer than 255/ });
});

test('familiarString keeps docker.io when the path would read as a host', () => {
  const r = parseReference('docker.io/0.0/x');
  assert.equal(familiarString(r), 'docker.io/0.0/x:latest');
  assert.deepEqual(parseReference(familiarString(r)), r);
});

const refChars = fc.constantFrom(...'abcz09._-/:@ABZ'.split(''));
const refish = fc.oneof(
  fc.string({ unit: refChars, maxLength: 40 }),
  fc
    .tuple(
      fc.constantFrom('', 'localhost/', 'localhost:5000/', 'reg.io/', 'docker.io/', 'Up.Case/'),
      fc.stringMatching(/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+)?$/),
      fc.constantFrom('', ':latest', ':v1.2', ':_x', `@${D}`, `:t@${D}`),
    )
    .map(([a, b, c]) => a + b + c),
);

test('parseReference property: parses to a value that prints back the same, or throws InvalidArgument', () => {
  fc.assert(
    fc.property(refish, (s) => {
      let r: ReturnType<typeof parseReference>;
      try {
        r = parseReference(s);
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'INVALID_ARGUMENT', s);
        return;
      }
      const text = formatReference(r);
      assert.deepEqual(parseReference(text), r);
      assert.equal(formatReference(parseReference(text)), text);
      assert.deepEqual(parseReference(familiarString(r)), r);
    }),
    { numRuns: 2000 },
  );
});
