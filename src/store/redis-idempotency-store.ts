import { createHash, randomBytes } from 'node:crypto';
import type { IdempotencyStore } from '../domain/idempotency.js';
import { AppError } from '../errors.js';
import { defineScript, unavailable, type RedisConnection, type Script } from '../cluster/redis.js';
import type { Sealer } from '../cluster/sealer.js';

interface Entry {
  fingerprint: string;
  token: string;
  done: boolean;
  result?: unknown;
}

// Stores the result only if this run still holds the key. KEYS: key. ARGV: token, sealed result, ttl
const FINISH = `
local v = redis.call('GET', KEYS[1])
if not v or redis.call('GET', KEYS[1] .. ':token') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[1] .. ':token')
return 1
`;
// Frees the key after a failed run (a retry with the same key may try again). KEYS: key. ARGV: token
const FREE = `
if redis.call('GET', KEYS[1] .. ':token') == ARGV[1] then redis.call('DEL', KEYS[1], KEYS[1] .. ':token') return 1 end
return 0
`;

const POLL_MS = 100;

/**
 * Idempotency keys shared by the replicas: the first request of a key takes it (SET NX) and stores its
 * result; a retry through any replica answers that result, or waits while the first still runs. Keys and
 * fingerprints are hashed, results sealed (they name recipients). Same semantics as the memory store.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  readonly #redis: RedisConnection;
  readonly #sealer: Sealer;
  readonly #ttlMs: number;
  /** How long a duplicate waits for the first request's result before answering SESSION_BUSY. */
  readonly #waitMs: number;
  readonly #finish: Script;
  readonly #free: Script;

  constructor(redis: RedisConnection, sealer: Sealer, options: { ttlMs: number; waitMs: number }) {
    this.#redis = redis;
    this.#sealer = sealer;
    this.#ttlMs = options.ttlMs;
    this.#waitMs = options.waitMs;
    this.#finish = defineScript(redis.client, FINISH);
    this.#free = defineScript(redis.client, FREE);
  }

  async run<T>(key: string, fingerprint: string, op: () => Promise<T>): Promise<{ result: T; replayed: boolean }> {
    const hashed = createHash('sha256').update(key).digest('base64url');
    const redisKey = this.#redis.keys.idempotency(hashed);
    const context = `idem:${hashed}`;
    const fp = createHash('sha256').update(fingerprint).digest('base64url');
    const deadline = Date.now() + this.#waitMs;
    for (;;) {
      const token = randomBytes(16).toString('base64url');
      const entry: Entry = { fingerprint: fp, token, done: false };
      // while it runs, the key lives only as long as a run can take: a replica that dies mid-run frees it
      const runningMs = this.#waitMs + 60_000;
      const taken = await this.#call(this.#redis.client.set(redisKey, this.#sealer.sealJson(context, entry), 'PX', runningMs, 'NX'));
      if (taken === 'OK') {
        await this.#call(this.#redis.client.set(`${redisKey}:token`, token, 'PX', runningMs));
        let result: T;
        try {
          result = await op();
        } catch (err) {
          await this.#free([redisKey], [token]).catch(() => {});
          throw err;
        }
        // the message went out: a store that fails now only costs the replay of this one answer
        await this.#finish([redisKey], [token, this.#sealer.sealJson(context, { fingerprint: fp, token, done: true, result } satisfies Entry), this.#ttlMs]).catch(() => {});
        return { result, replayed: false };
      }
      const sealed = await this.#call(this.#redis.client.get(redisKey));
      if (sealed === null) continue; // freed or expired meanwhile: try to take it again
      const existing = this.#sealer.unsealJson<Entry>(context, sealed);
      if (existing.fingerprint !== fp) {
        throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used for another request; use a new key for a new message');
      }
      if (existing.done) return { result: existing.result as T, replayed: true };
      if (Date.now() >= deadline) {
        throw new AppError('SESSION_BUSY', 'a request with this Idempotency-Key is still running; try again shortly', { retryAfterSeconds: 5 });
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  async #call<T>(promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } catch {
      throw unavailable('an Idempotency-Key');
    }
  }
}
