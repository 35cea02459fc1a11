/**
 * Counts refused requests (no or wrong API key, invalid or unreadable request) per client address, in
 * fixed windows of one minute. An address over the limit is refused before any other work, including
 * the API key check, until its window ends. Framework-free: the HTTP glue is plugins/failed-requests.ts.
 */
export class FailureLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxAddresses: number;
  readonly #windows = new Map<string, { count: number; endsAt: number }>();

  /** `limit` = 0: off. `maxAddresses` bounds memory when many addresses fail at once (oldest dropped first). */
  constructor(limit: number, windowMs = 60_000, maxAddresses = 100_000) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#maxAddresses = maxAddresses;
  }

  get enabled(): boolean {
    return this.#limit > 0;
  }

  /** Seconds until the address may send again, or 0 when it may now. */
  blockedFor(address: string, now = Date.now()): number {
    const w = this.#windows.get(address);
    if (!w || w.endsAt <= now || w.count < this.#limit) return 0;
    return Math.max(1, Math.ceil((w.endsAt - now) / 1000));
  }

  /** Records one refused request of the address. */
  failed(address: string, now = Date.now()): void {
    if (!this.enabled) return;
    let w = this.#windows.get(address);
    if (!w || w.endsAt <= now) {
      this.#windows.delete(address);
      w = { count: 0, endsAt: now + this.#windowMs };
      if (this.#windows.size >= this.#maxAddresses) this.#evict(now);
      this.#windows.set(address, w);
    }
    w.count += 1;
  }

  #evict(now: number): void {
    for (const [address, w] of this.#windows) if (w.endsAt <= now) this.#windows.delete(address);
    // still full: the oldest windows go (a Map iterates in insertion order)
    for (const address of this.#windows.keys()) {
      if (this.#windows.size < this.#maxAddresses) break;
      this.#windows.delete(address);
    }
  }
}
