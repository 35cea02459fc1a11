import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from '../../src/domain/backoff.js';
import { RateLimiter } from '../../src/domain/rate-limiter.js';

const policy = { baseMs: 100, maxMs: 1000 };

test('backoff doubles, is capped, and jitters within the upper half', () => {
  assert.equal(backoffDelay(0, policy, () => 0), 50);
  assert.equal(backoffDelay(0, policy, () => 1), 100);
  assert.equal(backoffDelay(3, policy, () => 1), 800);
  assert.equal(backoffDelay(10, policy, () => 1), 1000);
  assert.equal(backoffDelay(10, policy, () => 0), 500);
  assert.equal(backoffDelay(1000, policy, () => 0.5), 750);
});

test('the rate limiter lets a burst of a tenth of its rate through, then holds the rest', async () => {
  const limiter = new RateLimiter(50);
  let granted = 0;
  const all = Array.from({ length: 8 }, () => limiter.acquire().then(() => (granted += 1)));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(granted, 5, 'the burst');
  await Promise.all(all);
  assert.equal(granted, 8, 'the rest, later');
  const unlimited = new RateLimiter(0);
  await Promise.all(Array.from({ length: 1000 }, () => unlimited.acquire()));
});
