import type { SessionRecord, SessionStore } from '../domain/session-store.js';
import { defineScript, sessionId, type RedisConnection, type Script } from '../cluster/redis.js';
import type { Sealer } from '../cluster/sealer.js';

/** What a create may take, counted over every replica (MSB_MAX_SESSIONS and the per-principal and per-host limits). */
export interface SharedLimits {
  total: number;
  perPrincipal: number;
  connectingPerPrincipal: number;
  perHost: number;
}

export type Reservation = 'ok' | 'exists' | 'busy' | 'principal' | 'connecting' | 'total' | 'host';

// A create reserves its slot first (a reservation expires by itself if the replica dies while connecting),
// and the limits count stored sessions plus live reservations, so that two replicas cannot both take the last slot.
const RESERVE = `
local sessions, reservations, countP, countH = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, principal, host, now, untilMs = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local maxTotal, maxP, maxConnP, maxH = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
redis.call('ZREMRANGEBYSCORE', reservations, '-inf', now)
if redis.call('HEXISTS', sessions, id) == 1 then return 'exists' end
local reserved = redis.call('ZRANGE', reservations, 0, -1)
local rp, rh = 0, 0
for _, m in ipairs(reserved) do
  local rid, rprincipal, rhost = string.match(m, '^(.-)\\t(.-)\\t(.*)$')
  if rid == id then return 'busy' end
  if rprincipal == principal then rp = rp + 1 end
  if host ~= '' and rhost == host then rh = rh + 1 end
end
if (tonumber(redis.call('HGET', countP, principal)) or 0) + rp >= maxP then return 'principal' end
if rp >= maxConnP then return 'connecting' end
if redis.call('HLEN', sessions) + #reserved >= maxTotal then return 'total' end
if maxH > 0 and host ~= '' and (tonumber(redis.call('HGET', countH, host)) or 0) + rh >= maxH then return 'host' end
redis.call('ZADD', reservations, untilMs, id .. '\\t' .. principal .. '\\t' .. host)
return 'ok'
`;

// Stores a session (ends its reservation); counts it once however often it is written (a replica writes
// what it holds again after Redis lost its data).
const COMMIT = `
local sessions, meta, countP, countH, reservations = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, sealed, principal, host = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('ZREM', reservations, id .. '\\t' .. principal .. '\\t' .. host)
if redis.call('HSETNX', sessions, id, sealed) == 1 then
  redis.call('HSET', meta, id, principal .. '\\t' .. host)
  redis.call('HINCRBY', countP, principal, 1)
  if host ~= '' then redis.call('HINCRBY', countH, host, 1) end
  return 1
end
redis.call('HSET', sessions, id, sealed)
return 0
`;

const REMOVE = `
local sessions, meta, countP, countH = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]
local m = redis.call('HGET', meta, id)
redis.call('HDEL', sessions, id)
if not m then return 0 end
redis.call('HDEL', meta, id)
local principal, host = string.match(m, '^(.-)\\t(.*)$')
if redis.call('HINCRBY', countP, principal, -1) <= 0 then redis.call('HDEL', countP, principal) end
if host ~= '' and redis.call('HINCRBY', countH, host, -1) <= 0 then redis.call('HDEL', countH, host) end
return 1
`;

/**
 * Session definitions in Redis, shared by the replicas: one hash of sealed records (AES-256-GCM with
 * MSB_SESSION_STORE_KEY, bound to the session's id), beside the counts that the shared limits need
 * (principal and mail host per session, which are not secrets) and the reservations of creates still
 * connecting. Every write is atomic (Lua).
 */
export class RedisSessionStore implements SessionStore {
  readonly #redis: RedisConnection;
  readonly #sealer: Sealer;
  readonly #reserve: Script;
  readonly #commit: Script;
  readonly #remove: Script;

  constructor(redis: RedisConnection, sealer: Sealer) {
    this.#redis = redis;
    this.#sealer = sealer;
    this.#reserve = defineScript(redis.client, RESERVE);
    this.#commit = defineScript(redis.client, COMMIT);
    this.#remove = defineScript(redis.client, REMOVE);
  }

  /** Takes a slot for a session about to connect, for at most `ttlMs` (the connect timeout, and some). */
  async reserve(owner: string, name: string, host: string, limits: SharedLimits, ttlMs: number): Promise<Reservation> {
    const k = this.#redis.keys;
    const now = Date.now();
    return (await this.#reserve([k.sessions, k.reservations, k.countPrincipal, k.countHost], [
      sessionId(owner, name), owner, host, now, now + ttlMs, limits.total, limits.perPrincipal, limits.connectingPerPrincipal, limits.perHost,
    ])) as Reservation;
  }

  /** Gives a reserved slot back (the create failed). */
  async cancel(owner: string, name: string, host: string): Promise<void> {
    await this.#redis.client.zrem(this.#redis.keys.reservations, `${sessionId(owner, name)}\t${owner}\t${host}`);
  }

  /** Stores the record (sealed) and counts it; ends its reservation. */
  async commit(record: SessionRecord, host: string): Promise<void> {
    const k = this.#redis.keys;
    const id = sessionId(record.owner, record.name);
    await this.#commit([k.sessions, k.meta, k.countPrincipal, k.countHost, k.reservations], [id, this.sealRecord(record), record.owner, host]);
  }

  /** The record sealed as it is stored, so that a replica can write it again without keeping secrets in clear. */
  sealRecord(record: SessionRecord): string {
    return this.#sealer.sealJson(`session:${sessionId(record.owner, record.name)}`, record);
  }

  /** Writes an already sealed record again (after Redis lost its data), counting it once. */
  async recommit(id: string, sealed: string, owner: string, host: string): Promise<void> {
    const k = this.#redis.keys;
    await this.#commit([k.sessions, k.meta, k.countPrincipal, k.countHost, k.reservations], [id, sealed, owner, host]);
  }

  async get(id: string): Promise<{ record: SessionRecord; sealed: string } | undefined> {
    const sealed = await this.#redis.client.hget(this.#redis.keys.sessions, id);
    if (sealed === null) return undefined;
    return { record: this.#sealer.unsealJson<SessionRecord>(`session:${id}`, sealed), sealed };
  }

  async exists(id: string): Promise<boolean> {
    return (await this.#redis.client.hexists(this.#redis.keys.sessions, id)) === 1;
  }

  /** The id of every stored session. */
  async ids(): Promise<string[]> {
    return this.#redis.client.hkeys(this.#redis.keys.sessions);
  }

  async load(): Promise<SessionRecord[]> {
    const all = await this.#redis.client.hgetall(this.#redis.keys.sessions);
    return Object.entries(all).map(([id, sealed]) => this.#sealer.unsealJson<SessionRecord>(`session:${id}`, sealed));
  }

  async save(record: SessionRecord): Promise<void> {
    await this.commit(record, '');
  }

  async remove(owner: string, name: string): Promise<void> {
    const k = this.#redis.keys;
    await this.#remove([k.sessions, k.meta, k.countPrincipal, k.countHost], [sessionId(owner, name)]);
  }

  async close(): Promise<void> {}
}
