import type { RedisConnection } from './redis.js';

/**
 * Inspects answered from the directory still count as uses of the session (they postpone its idle
 * expiry): the ids are sent to the holding replica in one message per replica every half second.
 */
export class Touches {
  readonly #redis: RedisConnection;
  readonly #pending = new Map<string, Set<string>>();
  #timer: NodeJS.Timeout | undefined;

  constructor(redis: RedisConnection) {
    this.#redis = redis;
  }

  add(replica: string, id: string): void {
    const ids = this.#pending.get(replica) ?? new Set<string>();
    ids.add(id);
    this.#pending.set(replica, ids);
    this.#timer ??= setTimeout(() => this.flush(), 500);
  }

  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const [replica, ids] of this.#pending) {
      void this.#redis.client.publish(this.#redis.keys.replicaChannel(replica), JSON.stringify({ t: 'touch', ids: [...ids] })).catch(() => {});
    }
    this.#pending.clear();
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#pending.clear();
  }
}
