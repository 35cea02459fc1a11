import { randomBytes } from 'node:crypto';
import { AppError } from '../errors.js';

/** What a session's sign-in waits for; `complete` reconnects the session with the outcome. */
export interface AuthorizationOwner {
  readonly sessionName: string;
  complete(outcome: { account: { homeAccountId: string; username: string } } | { error: AppError }): Promise<void>;
  /** Starts a fresh sign-in for the same account when the last URL expired; returns its URL. */
  renewAuthorization(): Promise<string>;
}

export interface PendingAuthorization<T> {
  state: string;
  owner: AuthorizationOwner;
  url: string;
  expiresAt: number;
  /** What redeeming the code needs (PKCE verifier, nonce, app, scopes). */
  data: T;
}

/**
 * The OAuth2 `state` values this service handed out: random (256 bits), single use, bound to one
 * session's owner object (so a state from a closed session can never complete a new one of the same
 * name) and expiring. Used and expired states are remembered for one more TTL so that the callback can
 * say which it was.
 */
export class PendingAuthorizations<T> {
  readonly #ttlMs: number;
  readonly #live = new Map<string, PendingAuthorization<T>>();
  readonly #spent = new Map<string, { sessionName: string; forgetAt: number }>();
  /** States a session shows as its authorizationUrl, which /authorize may renew while the session lives. */
  readonly #shown = new Map<string, AuthorizationOwner>();
  #lastSweep = 0;

  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  newState(): string {
    return randomBytes(32).toString('base64url');
  }

  /**
   * Registers a sign-in; any earlier one of the same owner is withdrawn (one live URL per session).
   * `shown`: the URL becomes the session's authorizationUrl (a renewal through /authorize is not shown).
   */
  add(pending: Omit<PendingAuthorization<T>, 'expiresAt'>, shown: boolean): PendingAuthorization<T> {
    this.#sweep();
    this.#withdraw(pending.owner);
    if (shown) this.#forgetShown(pending.owner);
    const record = { ...pending, expiresAt: Date.now() + this.#ttlMs };
    this.#live.set(record.state, record);
    if (shown) this.#shown.set(record.state, pending.owner);
    return record;
  }

  /** Whether this state was handed out here and is still remembered (live, used or expired). */
  knows(state: string): boolean {
    return this.#live.has(state) || this.#spent.has(state) || this.#shown.has(state);
  }

  /** The owner of a state a session shows, if that session still waits for it. */
  ownerOf(state: string): AuthorizationOwner | undefined {
    return this.#live.get(state)?.owner ?? this.#shown.get(state);
  }

  /** Takes a state for redemption (it cannot be used again); throws OAUTH_STATE_INVALID saying why not. */
  take(state: string | undefined): PendingAuthorization<T> {
    this.#sweep();
    if (!state) throw new AppError('OAUTH_STATE_INVALID', 'the callback has no state parameter: open the authorization URL of the session again');
    const record = this.#live.get(state);
    if (!record) {
      const spent = this.#spent.get(state);
      throw new AppError(
        'OAUTH_STATE_INVALID',
        spent
          ? `this sign-in link was already used or has expired; for a fresh one open /v1/sessions/${spent.sessionName}/authorize`
          : 'unknown state: this callback does not answer a sign-in that this service started',
      );
    }
    this.#live.delete(state);
    this.#spent.set(state, { sessionName: record.owner.sessionName, forgetAt: Date.now() + this.#ttlMs });
    if (record.expiresAt <= Date.now()) {
      throw new AppError('OAUTH_STATE_INVALID', `this sign-in link has expired; for a fresh one open /v1/sessions/${record.owner.sessionName}/authorize`);
    }
    return record;
  }

  /** The owner's sign-in that has not expired, if any. */
  liveFor(owner: AuthorizationOwner): PendingAuthorization<T> | undefined {
    for (const record of this.#live.values()) {
      if (record.owner === owner && record.expiresAt > Date.now()) return record;
    }
    return undefined;
  }

  /** Withdraws everything of an owner (its session closed). */
  cancel(owner: AuthorizationOwner): void {
    this.#withdraw(owner);
    this.#forgetShown(owner);
  }

  #withdraw(owner: AuthorizationOwner): void {
    for (const [state, record] of this.#live) {
      if (record.owner === owner) {
        this.#live.delete(state);
        this.#spent.set(state, { sessionName: owner.sessionName, forgetAt: Date.now() + this.#ttlMs });
      }
    }
  }

  #forgetShown(owner: AuthorizationOwner): void {
    for (const [state, o] of this.#shown) if (o === owner) this.#shown.delete(state);
  }

  #sweep(): void {
    const now = Date.now();
    if (now - this.#lastSweep < 1000) return;
    this.#lastSweep = now;
    for (const [state, record] of this.#live) {
      if (record.expiresAt + this.#ttlMs <= now) this.#live.delete(state);
    }
    for (const [state, spent] of this.#spent) {
      if (spent.forgetAt <= now) this.#spent.delete(state);
    }
  }
}
