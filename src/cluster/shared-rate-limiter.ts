import { AdaptiveReconnectGate, type AttemptReport, type ReconnectGate } from '../domain/reconnect-gate.js';
import { defineScript, type RedisConnection, type Script } from './redis.js';

// One token bucket per mail host for the whole fleet, on Redis's clock. KEYS: the host's bucket. ARGV: rate/s, burst, wanted.
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
 * MSB_RECONNECT_RATE_MAX_PER_SEC for the whole fleet: reconnects and take-overs to one mail host, from every
 * replica, draw from that host's bucket in Redis, so that a fleet restart (or a replica's sessions moving at
 * once) does not hammer a mail server. Waiters of this replica for one host ask for their tokens together.
 * While Redis cannot be reached, a bucket per host of this process stands in, at the rate divided by the
 * number of replicas last seen.
 */
export class SharedRateLimiter {
  readonly #redis: RedisConnection;
  readonly #take: Script;
  readonly #perSecond: number;
  readonly #burst: number;
  readonly #replicas: () => number;
  /** Waiters per host; a host is here while its pump runs. */
  readonly #queues = new Map<string, (() => void)[]>();
  #fallback: AdaptiveReconnectGate | undefined;
  #fallbackFor = 0;
  #stopped = false;

  /** `perSecond` = 0 means unlimited. */
  constructor(redis: RedisConnection, perSecond: number, replicas: () => number) {
    this.#redis = redis;
    this.#perSecond = perSecond;
    this.#burst = Math.max(1, Math.ceil(perSecond / 10));
    this.#replicas = replicas;
    this.#take = defineScript(redis.client, TAKE);
  }

  /** Waits for a token of `host`'s fleet-wide bucket. */
  acquire(host: string): Promise<void> {
    if (this.#perSecond <= 0 || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const queue = this.#queues.get(host);
      if (queue) return void queue.push(resolve);
      this.#queues.set(host, [resolve]);
      void this.#pump(host);
    });
  }

  /** Drops every waiter (they never resolve); shutdown. */
  stop(): void {
    this.#stopped = true;
    for (const queue of this.#queues.values()) queue.length = 0;
    this.#queues.clear();
    this.#fallback?.stop();
  }

  async #pump(host: string): Promise<void> {
    const waiting = this.#queues.get(host)!;
    try {
      while (waiting.length > 0 && !this.#stopped) {
        const want = Math.min(waiting.length, this.#burst);
        let granted: number;
        let waitMs: number;
        try {
          if (!this.#redis.up) throw new Error('redis unreachable');
          [granted, waitMs] = (await this.#take([this.#redis.keys.reconnectBucket(host)], [this.#perSecond, this.#burst, want])) as [number, number];
        } catch {
          await this.#local().acquire(host);
          [granted, waitMs] = [1, 0];
        }
        for (const resolve of waiting.splice(0, granted)) resolve();
        if (waiting.length > 0 && granted < want) await new Promise((r) => setTimeout(r, Math.max(5, waitMs)));
      }
    } finally {
      if (this.#queues.get(host) === waiting) this.#queues.delete(host);
    }
  }

  /** The stand-in while Redis is away: a gate never told how attempts went keeps its rate, a plain bucket per host. */
  #local(): AdaptiveReconnectGate {
    const replicas = Math.max(1, this.#replicas());
    if (!this.#fallback || this.#fallbackFor !== replicas) {
      // not stopped: the one replaced still lets its waiters through (a pump awaits one of them)
      const rate = Math.max(1, Math.floor(this.#perSecond / replicas));
      this.#fallback = new AdaptiveReconnectGate({ startPerSec: rate, maxPerSec: rate, slowMs: 1 });
      this.#fallbackFor = replicas;
    }
    return this.#fallback;
  }
}

/**
 * A replica's reconnect gate: a turn from the fleet's bucket of the host first, then this replica's adaptive
 * gate of that host, which times the login from its own grant (so a wait for the fleet is never a slow login).
 * Both caps hold: the fleet's per host in Redis, and each replica's rate that follows how the host copes. A fleet
 * token taken while this replica's own rate still holds the attempt back is spent early: the fleet's cap errs on
 * the safe side.
 */
export class FleetReconnectGate implements ReconnectGate {
  readonly #fleet: SharedRateLimiter;
  readonly #local: ReconnectGate;

  constructor(fleet: SharedRateLimiter, local: ReconnectGate) {
    this.#fleet = fleet;
    this.#local = local;
  }

  async acquire(host: string): Promise<(report: AttemptReport) => void> {
    await this.#fleet.acquire(host);
    return this.#local.acquire(host);
  }

  stop(): void {
    this.#fleet.stop();
    this.#local.stop();
  }
}
