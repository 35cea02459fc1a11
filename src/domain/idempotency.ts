import { AppError } from '../errors.js';

/**
 * Idempotency keys of the send routes: a retry with the same key and the same request answers the first
 * result instead of sending again; the same key with another request is IDEMPOTENCY_KEY_REUSED. The
 * interface is asynchronous so that a shared store (several replicas) can stand in for this one.
 */
export interface IdempotencyStore {
  run<T>(key: string, fingerprint: string, op: () => Promise<T>): Promise<{ result: T; replayed: boolean }>;
}

interface Entry {
  fingerprint: string;
  /** Settles with the first call's result; only successes stay (a failure frees the key for a retry). */
  result: Promise<unknown>;
  expiresAt: number;
}

/**
 * In memory, bounded: at most `maxKeys` keys, each kept `ttlMs` after it was first used; when full, the
 * oldest key goes first. A duplicate that arrives while the first call still runs waits for its result.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #entries = new Map<string, Entry>();
  readonly #ttlMs: number;
  readonly #maxKeys: number;

  constructor(options: { ttlMs: number; maxKeys: number }) {
    this.#ttlMs = options.ttlMs;
    this.#maxKeys = options.maxKeys;
  }

  get size(): number {
    return this.#entries.size;
  }

  async run<T>(key: string, fingerprint: string, op: () => Promise<T>): Promise<{ result: T; replayed: boolean }> {
    const now = Date.now();
    const existing = this.#entries.get(key);
    if (existing && existing.expiresAt > now) {
      if (existing.fingerprint !== fingerprint) {
        throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used for another request; use a new key for a new message');
      }
      return { result: (await existing.result) as T, replayed: true };
    }
    if (existing) this.#entries.delete(key);
    this.#evict(now);
    const result = op();
    const entry: Entry = { fingerprint, result, expiresAt: now + this.#ttlMs };
    this.#entries.set(key, entry);
    try {
      return { result: await result, replayed: false };
    } catch (err) {
      // nothing was sent (or the server refused it): a retry with the same key may try again
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
      throw err;
    }
  }

  /** Drops expired keys from the oldest end, then the oldest ones while the store is full. */
  #evict(now: number): void {
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt > now && this.#entries.size < this.#maxKeys) break;
      this.#entries.delete(key);
    }
  }
}
