import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiKeys, hashApiKey } from '../../src/security/api-keys.js';
import { VerifiedKeyCache } from '../../src/security/verified-key-cache.js';

test('a cached key is found by its keyed digest only: the digest is not the key, not its plain SHA-256, and differs per cache', () => {
  const a = new VerifiedKeyCache<string>({ maxEntries: 10, ttlMs: 60_000 });
  const b = new VerifiedKeyCache<string>({ maxEntries: 10, ttlMs: 60_000 });
  const key = 'msb_Key-With-MixedCase_0123456789';
  const d = a.digest(key);
  assert.equal(d.length, 32);
  assert.notEqual(d.toString('hex'), hashApiKey(key), 'keyed, not a plain hash');
  assert.ok(!d.equals(b.digest(key)), 'each cache has its own secret');
  assert.ok(d.equals(a.digest(key)), 'stable within one cache');
  a.set(d, 'bot');
  assert.equal(a.get(a.digest(key)), 'bot');
  assert.equal(a.get(a.digest(key.toLowerCase())), undefined, 'case matters');
  assert.equal(a.get(b.digest(key)), undefined);
});

test('the cache is bounded, least recently used out first', () => {
  const c = new VerifiedKeyCache<number>({ maxEntries: 3, ttlMs: 60_000 });
  const d = (i: number) => c.digest(`key-number-${i}-xxxxxxxx`);
  for (let i = 0; i < 3; i++) c.set(d(i), i);
  assert.equal(c.get(d(0)), 0); // 0 is now the most recent
  c.set(d(3), 3);
  assert.equal(c.size, 3);
  assert.equal(c.get(d(1)), undefined, 'the least recently used went');
  assert.equal(c.get(d(0)), 0);
  assert.equal(c.get(d(3)), 3);
});

test('entries expire after ttlMs; clear() empties the cache', () => {
  let now = 1000;
  const c = new VerifiedKeyCache<string>({ maxEntries: 10, ttlMs: 500, now: () => now });
  const d = c.digest('some-presented-key-123');
  c.set(d, 'x');
  now += 499;
  assert.equal(c.get(d), 'x');
  now += 1;
  assert.equal(c.get(d), undefined);
  assert.equal(c.size, 0, 'an expired entry is dropped');
  c.set(d, 'y');
  c.clear();
  assert.equal(c.get(d), undefined);
});

test('ApiKeys: a verified key answers the same principal from the cache; wrong keys are never cached and stay wrong', () => {
  const good = 'msb_Good-Key_AbCdEfGh0123456789';
  const other = 'msb_Other-Key_ZyXw9876543210abc';
  const keys = new ApiKeys(`bot1:bot:${hashApiKey(good)},root:admin:${hashApiKey(other)}`);
  for (let i = 0; i < 3; i++) {
    assert.deepEqual({ ...keys.verify(good)! }, { name: 'bot1', role: 'bot' });
    assert.deepEqual({ ...keys.verify(other)! }, { name: 'root', role: 'admin' });
    assert.equal(keys.verify(good.toLowerCase()), undefined);
    assert.equal(keys.verify(`${good}x`), undefined);
  }
  // a changed key set is a new ApiKeys: the old key is not remembered
  const rotated = new ApiKeys(`bot1:bot:${hashApiKey(`${good}-new`)}`);
  assert.equal(rotated.verify(good), undefined);
  assert.deepEqual({ ...rotated.verify(`${good}-new`)! }, { name: 'bot1', role: 'bot' });
});
