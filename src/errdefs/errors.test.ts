import assert from 'node:assert/strict';
import test from 'node:test';
import {
  AbortedError,
  codeOf,
  exitCodes,
  hasCode,
  InvalidArgumentError,
  NotFoundError,
  throwIfAborted,
  UnavailableError,
} from './index.js';

test('errors carry a stable code and their class name', () => {
  const e = new NotFoundError('blob "x": not found');
  assert.equal(e.code, 'NOT_FOUND');
  assert.equal(e.name, 'NotFoundError');
  assert.ok(e instanceof Error);
});

test('hasCode and codeOf walk the cause chain', () => {
  const inner = new UnavailableError('locked');
  const outer = new Error('pull failed', { cause: new Error('fetch', { cause: inner }) });
  assert.equal(hasCode(outer, 'UNAVAILABLE'), true);
  assert.equal(hasCode(outer, 'NOT_FOUND'), false);
  assert.equal(codeOf(outer), 'UNAVAILABLE');
  assert.equal(codeOf(new InvalidArgumentError('x', { cause: inner })), 'INVALID_ARGUMENT');
  assert.equal(codeOf(new Error('plain')), 'UNKNOWN');
  const loop = new Error('a') as Error & { cause?: unknown };
  loop.cause = loop;
  assert.equal(codeOf(loop), 'UNKNOWN');
});

test('every code has an exit code, distinct per kind', () => {
  assert.equal(exitCodes.NOT_FOUND, 3);
  assert.equal(exitCodes.INVALID_ARGUMENT, 2);
  assert.notEqual(exitCodes.NOT_FOUND, exitCodes.ALREADY_EXISTS);
});

test('throwIfAborted throws AbortedError once the signal fired', () => {
  const ac = new AbortController();
  throwIfAborted(ac.signal);
  ac.abort();
  assert.throws(() => throwIfAborted(ac.signal), AbortedError);
  assert.equal(codeOf(Object.assign(new Error('x'), { name: 'AbortError' })), 'ABORTED');
});
