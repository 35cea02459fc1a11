import { defineScript, type RedisConnection, type Script } from './redis.js';

/**
 * Leases: which replica holds which session. A lease key holds `<replica>|<fence>` with a TTL; the fence
 * number (one counter per session) grows with every change of owner. A replica that hands a session over
 * on purpose leaves `-|<fence>` behind (released: the next owner need not wait, the old one has logged out).
 */

export type AcquireResult =
  | { kind: 'mine' | 'released' | 'expired'; fence: number }
  | { kind: 'held'; holder: string }
  /** Free because its lease ran out, but taking such leases is held back for now (after a Redis outage). */
  | { kind: 'wait' };

// KEYS: lease, fences. ARGV: id, me, ttl, allowExpired
const ACQUIRE = `
local v = redis.call('GET', KEYS[1])
if v then
  local holder, fence = string.match(v, '^(.-)|(%d+)$')
  if holder == ARGV[2] then redis.call('PEXPIRE', KEYS[1], ARGV[3]) return {'mine', fence} end
  if holder ~= '-' then return {'held', holder or ''} end
elseif ARGV[4] ~= '1' then
  return {'wait', ''}
end
local fence = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('SET', KEYS[1], ARGV[2] .. '|' .. fence, 'PX', ARGV[3])
if v then return {'released', tostring(fence)} end
return {'expired', tostring(fence)}
`;

// KEYS: leases. ARGV: ttl, then the value each lease must have. Answers 1/0 per lease.
const RENEW = `
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`;

// KEYS: lease. ARGV: mine, ttl. Leaves the released marker.
const RELEASE = `
local v = redis.call('GET', KEYS[1])
if v ~= ARGV[1] then return 0 end
local fence = string.match(v, '|(%d+)$')
redis.call('SET', KEYS[1], '-|' .. fence, 'PX', ARGV[2])
return 1
`;

// After Redis was unreachable (it may have lost its data): takes the lease back unless another replica
// holds it now or the fence moved past ours. KEYS: lease, fences. ARGV: id, mine, fence, ttl.
const REASSERT = `
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[2] then return 0 end
local f = tonumber(redis.call('HGET', KEYS[2], ARGV[1])) or 0
local mine = tonumber(ARGV[3])
if f > mine then return 0 end
if f < mine then redis.call('HSET', KEYS[2], ARGV[1], mine) end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
return 1
`;

// A closed session: its lease (if still ours) and its fence counter go. KEYS: lease, fences. ARGV: id, mine.
const DROP = `
if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('DEL', KEYS[1]) end
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`;

export class Ownership {
  readonly #redis: RedisConnection;
  readonly #me: string;
  readonly #ttlMs: number;
  readonly #acquire: Script;
  readonly #renew: Script;
  readonly #release: Script;
  readonly #reassert: Script;
  readonly #drop: Script;

  constructor(redis: RedisConnection, me: string, ttlMs: number) {
    this.#redis = redis;
    this.#me = me;
    this.#ttlMs = ttlMs;
    this.#acquire = defineScript(redis.client, ACQUIRE);
    this.#renew = defineScript(redis.client, RENEW);
    this.#release = defineScript(redis.client, RELEASE);
    this.#reassert = defineScript(redis.client, REASSERT);
    this.#drop = defineScript(redis.client, DROP);
  }

  value(fence: number): string {
    return `${this.#me}|${fence}`;
  }

  async acquire(id: string, allowExpired: boolean): Promise<AcquireResult> {
    const k = this.#redis.keys;
    const [kind, detail] = (await this.#acquire([k.lease(id), k.fences], [id, this.#me, this.#ttlMs, allowExpired ? '1' : '0'])) as [string, string];
    if (kind === 'held') return { kind, holder: detail };
    if (kind === 'wait') return { kind };
    return { kind: kind as 'mine' | 'released' | 'expired', fence: Number(detail) };
  }

  /** Renews the leases given (id -> fence); answers the ids whose lease is no longer ours. */
  async renew(leases: ReadonlyMap<string, number>): Promise<string[]> {
    const ids = [...leases.keys()];
    const lost: string[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const result = (await this.#renew(chunk.map((id) => this.#redis.keys.lease(id)), [this.#ttlMs, ...chunk.map((id) => this.value(leases.get(id)!))])) as number[];
      chunk.forEach((id, j) => {
        if (result[j] !== 1) lost.push(id);
      });
    }
    return lost;
  }

  async release(id: string, fence: number): Promise<boolean> {
    return (await this.#release([this.#redis.keys.lease(id)], [this.value(fence), this.#ttlMs])) === 1;
  }

  async reassert(id: string, fence: number): Promise<boolean> {
    const k = this.#redis.keys;
    return (await this.#reassert([k.lease(id), k.fences], [id, this.value(fence), fence, this.#ttlMs])) === 1;
  }

  async drop(id: string, fence: number): Promise<void> {
    const k = this.#redis.keys;
    await this.#drop([k.lease(id), k.fences], [id, this.value(fence)]);
  }

  /** Who holds a session now: a replica id, or undefined (nobody, or released). */
  async holder(id: string): Promise<string | undefined> {
    const v = await this.#redis.client.get(this.#redis.keys.lease(id));
    if (v === null) return undefined;
    const holder = v.slice(0, v.lastIndexOf('|'));
    return holder === '-' ? undefined : holder;
  }
}
