import { RateLimiter, type ReconnectLimiter } from '../domain/rate-limiter.js';
import { defineScript, type RedisConnection, type Script } from './redis.js';

// One token bucket for the whole fleet, on Redis's clock. KEYS: bucket. ARGV: rate/s, burst, wanted.
// Answers {granted, ms until the next token}.
const TAKE = `
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local got = math.min(want, math.floor(tokens))
tokens = tokens - got
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], 60000)
local wait = 0
if got < want then wait = math.ceil((1 - tokens) * 1000 / rate) end
return {got, wait}
`;

/**
 * MSB_RECONNECT_RATE_PER_SEC for the whole fleet: reconnects and take-overs of every replica draw from
 * one bucket in Redis, so that a fleet restart (or a replica's sessions moving at once) does not hammer
 * a mail server. Waiters of this replica ask for their tokens together. While Redis cannot be reached, a
 * bucket of this process stands in, at the rate divided by the number of replicas last seen.
 */
export class SharedRateLimiter implements ReconnectLimiter {
  readonly #redis: RedisConnection;
  readonly #take: Script;
  readonly #perSecond: number;
  readonly #burst: number;
  readonly #replicas: () => number;
  #fallback: RateLimiter | undefined;
  #fallbackFor = 0;
  #waiting: (() => void)[] = [];
  #pumping = false;
  #stopped = false;

  constructor(redis: RedisConnection, perSecond: number, replicas: () => number) {
    this.#redis = redis;
    this.#perSecond = perSecond;
    this.#burst = Math.max(1, Math.ceil(perSecond / 10));
    this.#replicas = replicas;
    this.#take = defineScript(redis.client, TAKE);
  }

  acquire(): Promise<void> {
    if (this.#perSecond <= 0 || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      void this.#pump();
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#waiting = [];
    this.#fallback?.stop();
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#waiting.length > 0 && !this.#stopped) {
        const want = Math.min(this.#waiting.length, this.#burst);
        let granted: number;
        let waitMs: number;
        try {
          if (!this.#redis.up) throw new Error('redis unreachable');
          [granted, waitMs] = (await this.#take([this.#redis.keys.reconnectBucket], [this.#perSecond, this.#burst, want])) as [number, number];
        } catch {
          await this.#local().acquire();
          [granted, waitMs] = [1, 0];
        }
        for (const resolve of this.#waiting.splice(0, granted)) resolve();
        if (this.#waiting.length > 0 && granted < want) await new Promise((r) => setTimeout(r, Math.max(5, waitMs)));
      }
    } finally {
      this.#pumping = false;
    }
  }

  #local(): RateLimiter {
    const replicas = Math.max(1, this.#replicas());
    if (!this.#fallback || this.#fallbackFor !== replicas) {
      this.#fallback?.stop();
      this.#fallback = new RateLimiter(Math.max(1, Math.floor(this.#perSecond / replicas)));
      this.#fallbackFor = replicas;
    }
    return this.#fallback;
  }
}
