/**
 * Leases of work claims: which claim holds which message, until when, and which messages were finished
 * here lately. Asynchronous so that a shared store (several replicas) can implement it; this one lives
 * in the process. A scope is one session of one principal.
 */
export interface LeaseStore {
  /** Leases to `claimId` the first `limit` of `ids` that no live claim holds and that were not finished; answers them. */
  acquire(scope: string, claimId: string, ids: readonly string[], expiresAt: number, limit: number): Promise<string[]>;
  /** The ids a live claim holds, and its expiry; undefined when it expired or never existed. */
  held(scope: string, claimId: string): Promise<{ ids: string[]; expiresAt: number } | undefined>;
  /** Moves a live claim's expiry; false when it is gone. */
  extend(scope: string, claimId: string, expiresAt: number): Promise<boolean>;
  /** Ends the lease of `ids` (all of the claim's by default). */
  release(scope: string, claimId: string, ids?: readonly string[]): Promise<void>;
  /** Records `ids` as finished, so that no claim gets them again (see MemoryLeaseStore for how long). */
  finish(scope: string, ids: readonly string[]): Promise<void>;
}

interface Lease {
  ids: Set<string>;
  expiresAt: number;
}

interface Scope {
  claims: Map<string, Lease>;
  /** id -> claim id, for every leased id (stale entries of expired claims are skipped on read). */
  holder: Map<string, string>;
  /** Finished ids, oldest first, bounded. */
  finished: Map<string, number>;
}

/**
 * In memory. Expired claims are swept lazily, so an expired lease gives its messages back on the next
 * claim. Finished ids are kept (at most `maxFinished` per scope, the oldest forgotten first) because the
 * server's own mark (a keyword) can be missing: on a server without keywords, or between a claim's listing
 * and the next claim.
 */
export class MemoryLeaseStore implements LeaseStore {
  readonly #scopes = new Map<string, Scope>();
  readonly #maxFinished: number;
  readonly #now: () => number;

  constructor(options: { maxFinished: number; now?: () => number }) {
    this.#maxFinished = options.maxFinished;
    this.#now = options.now ?? Date.now;
  }

  async acquire(scope: string, claimId: string, ids: readonly string[], expiresAt: number, limit: number): Promise<string[]> {
    const s = this.#scope(scope);
    this.#sweep(s);
    const lease = s.claims.get(claimId) ?? { ids: new Set<string>(), expiresAt };
    const got: string[] = [];
    for (const id of ids) {
      if (got.length >= limit) break;
      if (s.finished.has(id) || s.holder.has(id)) continue;
      s.holder.set(id, claimId);
      lease.ids.add(id);
      got.push(id);
    }
    if (lease.ids.size > 0) s.claims.set(claimId, lease);
    return got;
  }

  async held(scope: string, claimId: string): Promise<{ ids: string[]; expiresAt: number } | undefined> {
    const s = this.#scopes.get(scope);
    if (!s) return undefined;
    this.#sweep(s);
    const lease = s.claims.get(claimId);
    return lease ? { ids: [...lease.ids], expiresAt: lease.expiresAt } : undefined;
  }

  async extend(scope: string, claimId: string, expiresAt: number): Promise<boolean> {
    const lease = (await this.held(scope, claimId)) && this.#scopes.get(scope)!.claims.get(claimId);
    if (!lease) return false;
    lease.expiresAt = expiresAt;
    return true;
  }

  async release(scope: string, claimId: string, ids?: readonly string[]): Promise<void> {
    const s = this.#scopes.get(scope);
    const lease = s?.claims.get(claimId);
    if (!s || !lease) return;
    for (const id of ids ?? [...lease.ids]) {
      if (!lease.ids.delete(id)) continue;
      if (s.holder.get(id) === claimId) s.holder.delete(id);
    }
    if (lease.ids.size === 0) s.claims.delete(claimId);
  }

  async finish(scope: string, ids: readonly string[]): Promise<void> {
    const s = this.#scope(scope);
    const now = this.#now();
    for (const id of ids) {
      s.finished.delete(id);
      s.finished.set(id, now);
    }
    while (s.finished.size > this.#maxFinished) s.finished.delete(s.finished.keys().next().value!);
  }

  #sweep(s: Scope): void {
    const now = this.#now();
    for (const [claimId, lease] of s.claims) {
      if (lease.expiresAt > now) continue;
      for (const id of lease.ids) if (s.holder.get(id) === claimId) s.holder.delete(id);
      s.claims.delete(claimId);
    }
  }

  #scope(scope: string): Scope {
    let s = this.#scopes.get(scope);
    if (!s) {
      s = { claims: new Map(), holder: new Map(), finished: new Map() };
      this.#scopes.set(scope, s);
    }
    return s;
  }
}
