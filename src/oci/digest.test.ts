import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import test from 'node:test';
import fc from 'fast-check';
import { Digester, digestHex, digestOf, isDigest, parseDigest } from './index.js';

const hex = (n: number) => fc.stringMatching(new RegExp(`^[a-f0-9]{${n}}$`));

test('parseDigest accepts sha256 and sha512 of the right length', () => {
  const d256 = `sha256:${'a'.repeat(64)}`;
  const d512 = `sha512:${'0'.repeat(128)}`;
  assert.equal(parseDigest(d256), d256);
  assert.equal(parseDigest(d512), d512);
  assert.equal(digestHex(parseDigest(d256)), 'a'.repeat(64));
});

test('parseDigest refuses bad digests with InvalidArgument', () => {
  for (const bad of [
    '',
    'sha256',
    'sha256:',
    `sha256:${'a'.repeat(63)}`,
    `sha256:${'a'.repeat(65)}`,
    `sha256:${'A'.repeat(64)}`,
    `sha512:${'a'.repeat(64)}`,
    `md5:${'a'.repeat(32)}`,
    `:${'a'.repeat(64)}`,
    `sha256:${'g'.repeat(64)}`,
    `SHA256:${'a'.repeat(64)}`,
  ]) {
    assert.throws(() => parseDigest(bad), { code: 'INVALID_ARGUMENT' }, bad);
    assert.equal(isDigest(bad), false);
  }
});

test('parseDigest property: every string parses to itself or throws InvalidArgument', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        hex(64).map((h) => `sha256:${h}`),
        hex(128).map((h) => `sha512:${h}`),
      ),
      (s) => {
        try {
          assert.equal(parseDigest(s), s);
        } catch (err) {
          assert.equal((err as { code?: string }).code, 'INVALID_ARGUMENT');
        }
      },
    ),
  );
});

test('Digester hashes a stream in pieces as one', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }), (chunks) => {
      const d = new Digester();
      for (const c of chunks) d.update(c);
      const all = Buffer.concat(chunks);
      assert.equal(d.size, all.length);
      assert.equal(d.digest(), `sha256:${createHash('sha256').update(all).digest('hex')}`);
      assert.equal(d.digest(), digestOf(all));
    }),
  );
});

test('Digester supports sha512 and keeps hashing after digest()', () => {
  const d = new Digester('sha512');
  d.update(Buffer.from('ab'));
  const first = d.digest();
  d.update(Buffer.from('c'));
  assert.equal(first, digestOf('ab', 'sha512'));
  assert.equal(d.digest(), digestOf('abc', 'sha512'));
});
