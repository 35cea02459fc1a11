import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryIdempotencyStore } from '../../src/domain/idempotency.js';
import { SendQuota } from '../../src/domain/send-quota.js';
import { AppError } from '../../src/errors.js';

test('the same key and request answer the first result without running again; another request is refused', async () => {
  const store = new MemoryIdempotencyStore({ ttlMs: 60_000, maxKeys: 10 });
  let runs = 0;
  const op = async () => ({ n: ++runs });
  const first = await store.run('k', 'body-a', op);
  const again = await store.run('k', 'body-a', op);
  assert.deepEqual([first, again], [{ result: { n: 1 }, replayed: false }, { result: { n: 1 }, replayed: true }]);
  await assert.rejects(store.run('k', 'body-b', op), (err: unknown) => err instanceof AppError && err.code === 'IDEMPOTENCY_KEY_REUSED');
  assert.equal(runs, 1);
});

test('a duplicate that arrives while the first call runs waits for it', async () => {
  const store = new MemoryIdempotencyStore({ ttlMs: 60_000, maxKeys: 10 });
  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const op = async () => {
    runs += 1;
    await gate;
    return runs;
  };
  const a = store.run('k', 'f', op);
  const b = store.run('k', 'f', op);
  release();
  assert.deepEqual(await Promise.all([a, b]), [{ result: 1, replayed: false }, { result: 1, replayed: true }]);
});

test('a failure frees the key; keys expire and the store stays bounded', async () => {
  const store = new MemoryIdempotencyStore({ ttlMs: 50, maxKeys: 3 });
  await assert.rejects(store.run('k', 'f', () => Promise.reject(new Error('smtp down'))));
  assert.deepEqual(await store.run('k', 'f', async () => 'sent'), { result: 'sent', replayed: false });
  for (const key of ['a', 'b', 'c', 'd']) await store.run(key, 'f', async () => key);
  assert.equal(store.size, 3, 'the oldest keys went first');
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.deepEqual(await store.run('d', 'other body', async () => 'again'), { result: 'again', replayed: false }, 'an expired key is new');
});

test('the send quota counts per principal over a sliding minute', () => {
  const quota = new SendQuota(2);
  quota.take('a', 0);
  quota.take('a', 1000);
  quota.take('b', 1000);
  assert.throws(() => quota.take('a', 2000), (err: unknown) => err instanceof AppError && err.code === 'SEND_RATE_LIMITED' && err.extra.retryAfterSeconds === 58);
  quota.take('a', 60_001);
  new SendQuota(0).take('a');
});
