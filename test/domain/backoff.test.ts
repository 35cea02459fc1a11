import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from '../../src/domain/backoff.js';

const policy = { baseMs: 100, maxMs: 1000 };

test('backoff doubles, is capped, and jitters within the upper half', () => {
  assert.equal(backoffDelay(0, policy, () => 0), 50);
  assert.equal(backoffDelay(0, policy, () => 1), 100);
  assert.equal(backoffDelay(3, policy, () => 1), 800);
  assert.equal(backoffDelay(10, policy, () => 1), 1000);
  assert.equal(backoffDelay(10, policy, () => 0), 500);
  assert.equal(backoffDelay(1000, policy, () => 0.5), 750);
});
