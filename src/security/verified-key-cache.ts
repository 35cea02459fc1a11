import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Remembers which presented credentials were verified, so a request with a known-good API key does not redo the
 * full verification (a SHA-256 and a constant-time compare against every configured key).
 *
 * No timing side channel, no secrets kept: entries are keyed by a SHA-256 of a random secret made per process
 * (per cache) followed by the presented key, never by the key itself (a one-shot hash: an HMAC object per
 * request cost more than the rest of the check; the digest never leaves the process, so length extension, what
 * HMAC's construction guards against, has nothing to extend); an attacker who cannot read memory cannot
 * predict that digest, so the Map's lookup time tells nothing about how close a guess is to a real key, and
 * the hit is confirmed with a constant-time compare of the full digests. Only verified keys are stored (a
 * flood of wrong keys cannot fill it); the size is bounded (least recently used out first) and entries expire
 * after ttlMs. A changed key set builds a new cache (ApiKeys owns one), and clear() empties it.
 */
export class VerifiedKeyCache<V> {
  readonly #secret = randomBytes(32).toString('base64url');
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  readonly #now: () => number;
  /** Map order is the LRU order: a hit moves its entry to the end. */
  readonly #entries = new Map<string, { digest: Buffer; value: V; expiresAt: number }>();

  constructor(options: { maxEntries: number; ttlMs: number; now?: () => number }) {
    this.#maxEntries = Math.max(1, options.maxEntries);
    this.#ttlMs = options.ttlMs;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The keyed digest of a presented credential: what get() and set() take. */
  digest(presented: string): Buffer {
    return hash('sha256', this.#secret + presented, 'buffer');
  }

  get(digest: Buffer): V | undefined {
    const id = digest.toString('base64');
    const entry = this.#entries.get(id);
    if (!entry) return undefined;
    if (!timingSafeEqual(entry.digest, digest) || entry.expiresAt <= this.#now()) {
      this.#entries.delete(id);
      return undefined;
    }
    this.#entries.delete(id);
    this.#entries.set(id, entry);
    return entry.value;
  }

  set(digest: Buffer, value: V): void {
    const id = digest.toString('base64');
    this.#entries.delete(id);
    this.#entries.set(id, { digest, value, expiresAt: this.#now() + this.#ttlMs });
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  clear(): void {
    this.#entries.clear();
  }
}
