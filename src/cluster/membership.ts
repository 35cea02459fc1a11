import { createHash } from 'node:crypto';
import type { RedisConnection } from './redis.js';

export interface Replica {
  id: string;
  url: string;
}

interface Seen extends Replica {
  /** When this replica first saw it alive, without a gap since. */
  since: number;
}

/**
 * The live replicas: each one refreshes a heartbeat key (its id and address, with a TTL) and is listed
 * in one set. Rendezvous (highest random weight) hashing over the stable live replicas picks each
 * session's preferred owner: every replica computes the same answer from the same set, sessions spread
 * evenly, and when a replica comes or goes only the sessions that prefer it move.
 */
export class Membership {
  readonly me: Replica;
  readonly #redis: RedisConnection;
  readonly #ttlMs: number;
  /** A replica counts for placement once it has been seen alive this long (a flapping one moves nothing). */
  readonly #stableMs: number;
  readonly #startedAt = new Date().toISOString();
  #live = new Map<string, Seen>();
  #stableKey = '';
  #preferred = new Map<string, string>();

  constructor(redis: RedisConnection, me: Replica, ttlMs: number, stableMs: number) {
    this.#redis = redis;
    this.me = me;
    this.#ttlMs = ttlMs;
    this.#stableMs = stableMs;
  }

  async heartbeat(): Promise<void> {
    const k = this.#redis.keys;
    await Promise.all([
      this.#redis.client.set(k.replica(this.me.id), JSON.stringify({ url: this.me.url, startedAt: this.#startedAt }), 'PX', this.#ttlMs),
      this.#redis.client.sadd(k.replicas, this.me.id),
    ]);
  }

  /** Reads the live replicas; forgets those whose heartbeat has expired. Answers whether the set changed. */
  async refresh(): Promise<boolean> {
    const k = this.#redis.keys;
    const ids = await this.#redis.client.smembers(k.replicas);
    const values = ids.length > 0 ? await this.#redis.client.mget(ids.map((id) => k.replica(id))) : [];
    const now = Date.now();
    const next = new Map<string, Seen>();
    const gone: string[] = [];
    ids.forEach((id, i) => {
      const value = values[i];
      if (value === null || value === undefined) {
        gone.push(id);
        return;
      }
      try {
        const { url } = JSON.parse(value) as { url: string };
        next.set(id, { id, url, since: this.#live.get(id)?.since ?? now });
      } catch {
        gone.push(id);
      }
    });
    if (gone.length > 0) await this.#redis.client.srem(k.replicas, ...gone);
    const changed = next.size !== this.#live.size || [...next.keys()].some((id) => !this.#live.has(id));
    this.#live = next;
    return changed;
  }

  /** Forgets one replica at once (it said it is leaving), without waiting for its heartbeat to expire. */
  forget(id: string): void {
    this.#live.delete(id);
  }

  async leave(): Promise<void> {
    const k = this.#redis.keys;
    await Promise.all([this.#redis.client.del(k.replica(this.me.id)), this.#redis.client.srem(k.replicas, this.me.id)]);
    await this.#redis.client.publish(k.clusterChannel, JSON.stringify({ t: 'leave', id: this.me.id }));
  }

  /** Tells the others at once that this replica is here (they count it once it is stable). */
  async announce(): Promise<void> {
    await this.#redis.client.publish(this.#redis.keys.clusterChannel, JSON.stringify({ t: 'join', id: this.me.id }));
  }

  isLive(id: string): boolean {
    return id === this.me.id || this.#live.has(id);
  }

  isStable(id: string): boolean {
    const seen = this.#live.get(id);
    return seen !== undefined && Date.now() - seen.since >= this.#stableMs;
  }

  urlOf(id: string): string | undefined {
    return id === this.me.id ? this.me.url : this.#live.get(id)?.url;
  }

  /** The other live replicas. */
  peers(): Replica[] {
    return [...this.#live.values()].filter((r) => r.id !== this.me.id).map(({ id, url }) => ({ id, url }));
  }

  /** How many replicas are live (at least this one). */
  get size(): number {
    return Math.max(1, this.#live.size + (this.#live.has(this.me.id) ? 0 : 1));
  }

  /**
   * The preferred owner of a session: highest weight over this replica and the stable live ones.
   * `without`: leave this replica out (it is stopping).
   */
  preferred(id: string, without?: string): string {
    const candidates = [...this.#live.values()].filter((r) => r.id !== without && (r.id === this.me.id || this.isStable(r.id))).map((r) => r.id);
    if (without !== this.me.id && !candidates.includes(this.me.id)) candidates.push(this.me.id);
    if (candidates.length === 0) return this.me.id;
    candidates.sort();
    const key = candidates.join(',');
    if (key !== this.#stableKey) {
      this.#stableKey = key;
      this.#preferred = new Map();
    }
    const cached = this.#preferred.get(id);
    if (cached !== undefined) return cached;
    let best = '';
    let bestWeight = -1n;
    for (const replica of candidates) {
      const weight = createHash('md5').update(replica).update('\n').update(id).digest().readBigUInt64BE(0);
      if (weight > bestWeight) {
        best = replica;
        bestWeight = weight;
      }
    }
    this.#preferred.set(id, best);
    return best;
  }
}
