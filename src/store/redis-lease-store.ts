import type { LeaseStore } from '../domain/leases.js';
import { defineScript, unavailable, type RedisConnection, type Script } from '../cluster/redis.js';

// Per scope (one session): claims (claim id -> expiry ms), holder (message id -> claim id), one set of
// ids per claim, finished (message id -> when, a sorted set trimmed to the newest maxFinished).

// Ends claims that expired. Used by every script below first. KEYS[1] claims, KEYS[2] holder; ARGV[1] now, ARGV[2] set-key prefix
const SWEEP = `
local function sweep(claims, holder, now, setPrefix)
  local all = redis.call('HGETALL', claims)
  for i = 1, #all, 2 do
    local claim, exp = all[i], tonumber(all[i + 1])
    if exp <= now then
      for _, id in ipairs(redis.call('SMEMBERS', setPrefix .. claim)) do
        if redis.call('HGET', holder, id) == claim then redis.call('HDEL', holder, id) end
      end
      redis.call('DEL', setPrefix .. claim)
      redis.call('HDEL', claims, claim)
    end
  end
end
`;

// KEYS: claims, holder, finished. ARGV: now, setPrefix, claim, expiresAt, limit, ids...
const ACQUIRE = `${SWEEP}
local claims, holder, finished = KEYS[1], KEYS[2], KEYS[3]
local now, setPrefix, claim, exp, limit = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
sweep(claims, holder, now, setPrefix)
local got = {}
for i = 6, #ARGV do
  if #got >= limit then break end
  local id = ARGV[i]
  if not redis.call('ZSCORE', finished, id) and redis.call('HEXISTS', holder, id) == 0 then
    redis.call('HSET', holder, id, claim)
    redis.call('SADD', setPrefix .. claim, id)
    got[#got + 1] = id
  end
end
if #got > 0 and redis.call('HEXISTS', claims, claim) == 0 then redis.call('HSET', claims, claim, exp) end
return got
`;

// KEYS: claims, holder. ARGV: now, setPrefix, claim. Answers {expiresAt, ids...} or {}.
const HELD = `${SWEEP}
sweep(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2])
local exp = redis.call('HGET', KEYS[1], ARGV[3])
if not exp then return {} end
local out = {exp}
for _, id in ipairs(redis.call('SMEMBERS', ARGV[2] .. ARGV[3])) do out[#out + 1] = id end
return out
`;

// KEYS: claims, holder. ARGV: now, setPrefix, claim, expiresAt
const EXTEND = `${SWEEP}
sweep(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2])
if redis.call('HEXISTS', KEYS[1], ARGV[3]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
return 1
`;

// KEYS: claims, holder. ARGV: setPrefix, claim, all ('1': every id of the claim), ids...
const RELEASE = `
local setKey = ARGV[1] .. ARGV[2]
local ids = {}
if ARGV[3] == '1' then ids = redis.call('SMEMBERS', setKey) else for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end end
for _, id in ipairs(ids) do
  if redis.call('SREM', setKey, id) == 1 and redis.call('HGET', KEYS[2], id) == ARGV[2] then redis.call('HDEL', KEYS[2], id) end
end
if redis.call('SCARD', setKey) == 0 then redis.call('HDEL', KEYS[1], ARGV[2]) end
return 1
`;

// KEYS: finished. ARGV: now, max, ids...
const FINISH = `
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) end
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1) end
return 1
`;

/**
 * Work claims shared by the replicas (the LeaseStore of src/domain/claims.ts in Redis): a session's
 * claims survive its move to another replica, and a message is leased to one claim at a time across
 * the fleet. Message ids are the sessions' public ids; nothing here is secret.
 */
export class RedisLeaseStore implements LeaseStore {
  readonly #redis: RedisConnection;
  readonly #maxFinished: number;
  readonly #acquire: Script;
  readonly #held: Script;
  readonly #extend: Script;
  readonly #release: Script;
  readonly #finish: Script;

  constructor(redis: RedisConnection, options: { maxFinished: number }) {
    this.#redis = redis;
    this.#maxFinished = options.maxFinished;
    this.#acquire = defineScript(redis.client, ACQUIRE);
    this.#held = defineScript(redis.client, HELD);
    this.#extend = defineScript(redis.client, EXTEND);
    this.#release = defineScript(redis.client, RELEASE);
    this.#finish = defineScript(redis.client, FINISH);
  }

  async acquire(scope: string, claimId: string, ids: readonly string[], expiresAt: number, limit: number): Promise<string[]> {
    const s = toScope(scope);
    return (await this.#call(this.#acquire(this.#keys(s, true), [Date.now(), this.#setPrefix(s), claimId, expiresAt, limit, ...ids]))) as string[];
  }

  async held(scope: string, claimId: string): Promise<{ ids: string[]; expiresAt: number } | undefined> {
    const s = toScope(scope);
    const out = (await this.#call(this.#held(this.#keys(s, false), [Date.now(), this.#setPrefix(s), claimId]))) as string[];
    if (out.length === 0) return undefined;
    return { expiresAt: Number(out[0]), ids: out.slice(1) };
  }

  async extend(scope: string, claimId: string, expiresAt: number): Promise<boolean> {
    const s = toScope(scope);
    return (await this.#call(this.#extend(this.#keys(s, false), [Date.now(), this.#setPrefix(s), claimId, expiresAt]))) === 1;
  }

  async release(scope: string, claimId: string, ids?: readonly string[]): Promise<void> {
    const s = toScope(scope);
    await this.#call(this.#release(this.#keys(s, false), [this.#setPrefix(s), claimId, ids ? '0' : '1', ...(ids ?? [])]));
  }

  async finish(scope: string, ids: readonly string[]): Promise<void> {
    const s = toScope(scope);
    await this.#call(this.#finish([this.#redis.keys.claims(s, 'finished')], [Date.now(), this.#maxFinished, ...ids]));
  }

  /** Drops everything of a closed session. */
  async forget(owner: string, name: string): Promise<void> {
    const s = `${owner}/${name}`;
    const k = this.#redis.keys;
    const claims = await this.#redis.client.hkeys(k.claims(s, 'claims'));
    await this.#redis.client.del(k.claims(s, 'claims'), k.claims(s, 'holder'), k.claims(s, 'finished'), ...claims.map((c) => k.claimSet(s, c)));
  }

  #keys(s: string, withFinished: boolean): string[] {
    const k = this.#redis.keys;
    return [k.claims(s, 'claims'), k.claims(s, 'holder'), ...(withFinished ? [k.claims(s, 'finished')] : [])];
  }

  #setPrefix(s: string): string {
    return this.#redis.keys.claimSet(s, '');
  }

  async #call<T>(promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } catch {
      throw unavailable('a work claim');
    }
  }
}

/** The claim service's scope (`owner NUL name`) as the session id used in keys. */
function toScope(scope: string): string {
  return scope.replace('\u0000', '/');
}
