import { randomBytes } from 'node:crypto';
import { AppError, isAppError } from '../errors.js';
import type { LeaseStore } from './leases.js';
import type { MessageFilter, MessageSummary } from './mail.js';
import type { Session } from './session.js';

/** What a bot does with a claimed message once it is done with it, besides marking it done. */
export interface FollowUp {
  markRead?: boolean;
  flag?: boolean;
  moveTo?: string;
  delete?: boolean;
}

export interface ClaimRequest {
  folder: string;
  where: MessageFilter;
  max: number;
  leaseSeconds: number;
}

export interface ClaimResult {
  claim: string;
  expiresAt: string;
  messages: MessageSummary[];
}

export interface AckResult {
  acknowledged: string[];
  failed: { id: string; code: string; detail: string }[];
}

/** Pages looked at per claim at most: a folder full of leased messages answers fewer than `max`, not a scan. */
const MAX_PAGES = 20;
const PAGE = 100;
/** Claims that leased nothing, remembered at most (the oldest is forgotten first). */
const MAX_EMPTY_CLAIMS = 10_000;

/**
 * Work claims: a fleet of bots on one mailbox, each message handled once. A claim leases up to `max`
 * matching messages that no live claim holds and that are not done; acknowledging marks them done on the
 * server (a keyword, or a category, where the session type has keywords) and here, then runs the
 * follow-ups; an expired lease gives its messages back. While the service runs, a message is leased to at
 * most one claim at a time and an acknowledged message is never handed out again.
 */
export class ClaimService {
  readonly #leases: LeaseStore;
  readonly #keyword: string;
  /**
   * Claims that found nothing to lease (scope + claim id -> expiry): they hold no lease in the store, yet live
   * until their expiry like any other, so that extending, acknowledging or releasing one is not a 404.
   */
  readonly #empty = new Map<string, number>();

  constructor(leases: LeaseStore, options: { keyword: string }) {
    this.#leases = leases;
    this.#keyword = options.keyword;
  }

  async claim(session: Session, request: ClaimRequest): Promise<ClaimResult> {
    const scope = scopeOf(session);
    const claim = randomBytes(16).toString('base64url');
    const expiresAt = Date.now() + request.leaseSeconds * 1000;
    // where the server keeps keywords, it filters out what is done; elsewhere the lease store does
    const where: MessageFilter = { ...request.where, ...(session.can('tagger') ? { withoutKeyword: this.#keyword } : {}) };
    const messages: MessageSummary[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES && messages.length < request.max; page++) {
      const { messages: found, nextCursor } = await session.run('reader', (r) =>
        r.list({ ...where, folder: request.folder, limit: PAGE, order: 'oldest', includeText: false, ...(cursor ? { cursor } : {}) }),
      );
      const leased = new Set(await this.#leases.acquire(scope, claim, found.map((m) => m.id), expiresAt, request.max - messages.length));
      messages.push(...found.filter((m) => leased.has(m.id)));
      if (!nextCursor) break;
      cursor = nextCursor;
    }
    if (messages.length === 0) this.#rememberEmpty(scope, claim, expiresAt);
    return { claim, expiresAt: new Date(expiresAt).toISOString(), messages };
  }

  /** Marks the claim's messages (or `ids` of them) done, then runs the follow-ups; releases what it acknowledged. */
  async acknowledge(session: Session, claim: string, ids: string[] | undefined, then: FollowUp): Promise<AckResult> {
    const scope = scopeOf(session);
    const held = await this.#held(scope, claim);
    const targets = ids ?? held.ids;
    const notHeld = targets.filter((id) => !held.ids.includes(id));
    if (notHeld.length > 0) {
      throw new AppError('CLAIM_NOT_FOUND', `claim ${claim} does not hold ${notHeld.length} of the ids given (expired, acknowledged or never leased to it)`);
    }
    const result: AckResult = { acknowledged: [], failed: [] };
    for (const id of targets) {
      try {
        if (session.can('tagger')) await session.run('tagger', (t) => t.tag(id, this.#keyword), { operation: 'claim.ack', fields: () => ({ count: 1 }) });
        // recorded here before the lease ends, so a claim that listed the message a moment ago cannot take it
        await this.#leases.finish(scope, [id]);
        await this.#leases.release(scope, claim, [id]);
        result.acknowledged.push(id);
      } catch (err) {
        result.failed.push(failure(id, err));
        continue;
      }
      try {
        await this.#followUp(session, id, then);
      } catch (err) {
        result.failed.push(failure(id, err));
      }
    }
    return result;
  }

  async extend(session: Session, claim: string, leaseSeconds: number): Promise<{ claim: string; expiresAt: string; ids: string[] }> {
    const scope = scopeOf(session);
    const held = await this.#held(scope, claim);
    const expiresAt = Date.now() + leaseSeconds * 1000;
    if (held.empty) this.#rememberEmpty(scope, claim, expiresAt);
    else if (!(await this.#leases.extend(scope, claim, expiresAt))) throw notFound(claim);
    return { claim, expiresAt: new Date(expiresAt).toISOString(), ids: held.ids };
  }

  async release(session: Session, claim: string): Promise<void> {
    const scope = scopeOf(session);
    const held = await this.#held(scope, claim);
    if (held.empty) this.#empty.delete(emptyKey(scope, claim));
    else await this.#leases.release(scope, claim);
  }

  /** What the claim holds; `empty`: a claim that found nothing, kept here rather than in the lease store. */
  async #held(scope: string, claim: string): Promise<{ ids: string[]; expiresAt: number; empty?: true }> {
    const held = await this.#leases.held(scope, claim);
    if (held) return held;
    const key = emptyKey(scope, claim);
    const emptyUntil = this.#empty.get(key);
    if (emptyUntil !== undefined && emptyUntil > Date.now()) return { ids: [], expiresAt: emptyUntil, empty: true };
    this.#empty.delete(key);
    throw notFound(claim);
  }

  #rememberEmpty(scope: string, claim: string, expiresAt: number): void {
    const key = emptyKey(scope, claim);
    this.#empty.delete(key);
    this.#empty.set(key, expiresAt);
    const now = Date.now();
    for (const [oldest, until] of this.#empty) {
      if (this.#empty.size <= MAX_EMPTY_CLAIMS && until > now) break;
      this.#empty.delete(oldest);
    }
  }

  async #followUp(session: Session, id: string, then: FollowUp): Promise<void> {
    const change = { ...(then.markRead ? { seen: true } : {}), ...(then.flag ? { flagged: true } : {}) };
    if (Object.keys(change).length > 0) await session.run('flagger', (f) => f.update(id, change), { operation: 'claim.followUp.update', fields: () => ({ count: 1 }) });
    // last: a move or a delete ends the id
    if (then.moveTo) await session.run('mover', (m) => m.move(id, then.moveTo!), { operation: 'claim.followUp.move', fields: () => ({ count: 1 }) });
    else if (then.delete) await session.run('deleter', (d) => d.delete(id, { permanent: false }), { operation: 'claim.followUp.delete', fields: () => ({ count: 1 }) });
  }
}

function scopeOf(session: Session): string {
  return `${session.owner}\u0000${session.name}`;
}

function emptyKey(scope: string, claim: string): string {
  return `${scope}\u0000${claim}`;
}

function notFound(claim: string): AppError {
  return new AppError('CLAIM_NOT_FOUND', `no live claim ${claim}: it expired, was released or fully acknowledged, or never existed`);
}

function failure(id: string, err: unknown): { id: string; code: string; detail: string } {
  return isAppError(err) ? { id, code: err.code, detail: err.message } : { id, code: 'INTERNAL_ERROR', detail: 'unexpected error' };
}
