import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Admission, SessionPool } from '../domain/pool.js';
import type { PreparedSession } from '../domain/prepared-session.js';
import type { SessionRecord } from '../domain/session-store.js';
import { AppError, isAppError } from '../errors.js';
import type { RedisSessionStore } from '../store/redis-session-store.js';
import type { Directory } from './directory.js';
import type { Forwarder, ReplicaSigner } from './forwarding.js';
import type { Membership } from './membership.js';
import type { Ownership } from './ownership.js';
import { Outage } from './outage.js';
import { sessionId, splitSessionId, unavailable, type RedisConnection } from './redis.js';

export interface CoordinatorOptions {
  config: Config;
  logger: Logger;
  redis: RedisConnection;
  store: RedisSessionStore;
  directory: Directory;
  ownership: Ownership;
  membership: Membership;
  signer: ReplicaSigner;
  forwarder: Forwarder;
  /** A stored definition made ready for its owner as the owner is now; undefined when the owner has no key any more. */
  prepare(record: SessionRecord): Promise<PreparedSession | undefined>;
  /** Removes what else is kept about a closed session (its work claims). */
  forget?(owner: string, name: string): Promise<void>;
}

/** A session this replica holds the lease of. */
interface Held {
  fence: number;
  /** Until when this replica may use it without a renewal (local clock). */
  validUntil: number;
  /** The record as stored (sealed), to write it again after Redis lost its data. */
  sealed?: string;
  host: string;
  /** Not in the pool yet (being restored, or its create is connecting): not published, not moved. */
  pending: boolean;
  /** What was published last (state, summary time, last use...). */
  published?: string;
}

/**
 * The timing rule (README, "Running more than one replica"), with T = MSB_LEASE_TTL_MS:
 *   - the owner renews every T/3; a renewal sent at t makes the session usable here until t + T - T/5;
 *   - Redis expires the lease no sooner than t + T (its clock starts when it runs the renewal, after t);
 *   - a replica that finds a lease expired (not released) waits T/5 more before it logs in.
 * So a replica that cannot renew has closed the session (LOGOUT) at least 2T/5 before another may log
 * in, unless it was paused for longer than that. A lease handed over on purpose (released) is taken at
 * once: the old owner has logged out first.
 */
export function leaseTiming(ttlMs: number) {
  return { tickMs: Math.round(ttlMs / 3), guardMs: Math.round(ttlMs / 5), safetyMs: Math.round(ttlMs / 5), graceMs: ttlMs };
}

/** Runs `task` over `items` with at most `limit` at once. */
async function eachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Decides which replica holds which session and moves them: heartbeats, lease renewal, rendezvous
 * placement (a starting replica takes its share, a stopping one hands its sessions over, a dead one's
 * sessions are taken once its leases expire), the directory, and what happens while Redis is away.
 */
export class Coordinator {
  readonly #o: CoordinatorOptions;
  readonly #timing: ReturnType<typeof leaseTiming>;
  readonly #log: Logger;
  readonly #held = new Map<string, Held>();
  /** Stored sessions that could not be prepared here (a secret gone...): not tried again until then. */
  readonly #skip = new Map<string, number>();
  /** Closed while Redis was away: removed from it once it is back. */
  readonly #pendingRemovals = new Map<string, number>();
  readonly #dirty = new Set<string>();
  #pool: SessionPool | undefined;
  #timer: NodeJS.Timeout | undefined;
  #fenceTimer: NodeJS.Timeout | undefined;
  #dirtyTimer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #again = false;
  #stopping = false;
  #started = false;
  #resync = false;
  /** Until then (after Redis came back) no expired lease is taken: every replica first takes its own back. */
  #graceUntil = 0;
  readonly #outage: Outage;
  /** The value of the epoch key seen last, and whether it was looked at since the last (re)connect. */
  #epoch: string | undefined;
  #epochChecked = false;
  /** Until then Redis is being filled again after it lost its data: what it does not know may still exist. */
  #rebuildingUntil = 0;
  #lastLive = new Set<string>();

  constructor(options: CoordinatorOptions) {
    this.#o = options;
    this.#timing = leaseTiming(options.config.MSB_LEASE_TTL_MS);
    this.#log = options.logger.child({ component: 'cluster', replica: options.membership.me.id });
    this.#outage = new Outage(options.redis, options.membership, options.signer, this.#timing.tickMs);
    let connectedBefore = false;
    options.redis.onChange((up) => {
      if (!up) return;
      // back after an outage: whatever Redis lost meanwhile is written again, and for a while no expired
      // lease is taken, so that every replica first takes back its own
      if (connectedBefore) {
        this.#resync = true;
        this.#graceUntil = Date.now() + this.#timing.graceMs;
      }
      connectedBefore = true;
      this.#epochChecked = false;
      this.kick();
    });
  }

  get replicaId(): string {
    return this.#o.membership.me.id;
  }

  attach(pool: SessionPool): void {
    this.#pool = pool;
  }

  /** Starts the ticks; resolves once the first one ran (the replica has looked at Redis and placed sessions). */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#fenceTimer = setInterval(() => this.#checkValidity(), 250);
    this.#fenceTimer.unref();
    this.kick();
    await this.#ticking;
  }

  /** Runs a tick now (or right after the one running). */
  kick(): void {
    if (this.#stopping || !this.#started) return;
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#ticking = this.#tick()
      .catch((err: unknown) => this.#log.warn({ code: codeOf(err), detail: (err as Error)?.message }, 'cluster tick failed'))
      .finally(() => {
        this.#ticking = undefined;
        if (this.#stopping) return;
        if (this.#again) {
          this.#again = false;
          this.kick();
          return;
        }
        this.#timer = setTimeout(() => this.kick(), this.#timing.tickMs);
        this.#timer.unref();
      });
  }

  /**
   * Whether Redis may not know of every session yet: right after a (re)connect until its data was checked,
   * and for a lease TTL after it turned out to have lost its data (the replicas are writing it again).
   * A session Redis does not know of then is "try again", not "not found".
   */
  rebuilding(): boolean {
    return !this.#epochChecked || Date.now() < this.#rebuildingUntil;
  }

  /** Whether this replica holds the session and may use it now. */
  mayUse(owner: string, name: string): boolean {
    const held = this.#held.get(sessionId(owner, name));
    return held !== undefined && (held.validUntil > Date.now() || this.#outage.nobodyCanTakeOver());
  }

  /** Marks a held session to be published to the directory soon (its state changed). */
  touched(owner: string, name: string): void {
    const id = sessionId(owner, name);
    if (!this.#held.has(id)) return;
    this.#dirty.add(id);
    this.#dirtyTimer ??= setTimeout(() => {
      this.#dirtyTimer = undefined;
      const ids = [...this.#dirty];
      this.#dirty.clear();
      if (this.#o.redis.up) void this.#publish(ids, true).catch(() => {});
    }, 50);
  }

  /** Takes sessions another replica has just released to this one (its hint; they need no safety wait). */
  take(ids: readonly string[]): void {
    if (this.#stopping || !this.#o.redis.up) return;
    void eachLimited(ids, 20, (id) => this.#take(id, false)).catch(() => {});
  }

  /** Another replica said it is leaving: place its sessions without waiting for its heartbeat to expire. */
  left(replicaId: string): void {
    this.#o.membership.forget(replicaId);
    this.#o.forwarder.abort(replicaId);
    this.kick();
  }

  /**
   * Before a create connects: counts it against the shared limits (reserving the slot) and takes its
   * lease. Refuses with the pool's own codes, or STORE_UNAVAILABLE.
   */
  async admit(owner: string, name: string, prepared: PreparedSession): Promise<Admission> {
    if (this.#stopping) throw new AppError('SHUTTING_DOWN', 'the service is shutting down');
    this.#o.redis.require('creating a session');
    // a session Redis lost and its holder has not written again yet would be created a second time
    await this.confirmAbsent('creating a session');
    const c = this.#o.config;
    const id = sessionId(owner, name);
    const host = prepared.host ?? '';
    const connectMs = Number((prepared.view.timeouts as { connectMs?: unknown } | undefined)?.connectMs) || c.MSB_CONNECT_TIMEOUT_MS;
    const limits = { total: c.MSB_MAX_SESSIONS, perPrincipal: c.MSB_MAX_SESSIONS_PER_PRINCIPAL, connectingPerPrincipal: c.MSB_MAX_CONNECTING_PER_PRINCIPAL, perHost: c.MSB_MAX_SESSIONS_PER_HOST };
    const reserved = await storeCall(this.#o.store.reserve(owner, name, host, limits, connectMs + 30_000), 'creating a session');
    refuse(reserved, owner, name, host, c);
    const sent = Date.now();
    const lease = await storeCall(this.#o.ownership.acquire(id, true), 'creating a session').catch(async (err: unknown) => {
      await this.#o.store.cancel(owner, name, host).catch(() => {});
      throw err;
    });
    if (lease.kind === 'held' || lease.kind === 'wait') {
      await this.#o.store.cancel(owner, name, host).catch(() => {});
      throw moving(name);
    }
    const held: Held = { fence: lease.fence, validUntil: sent + this.#validFor(), host, pending: true };
    this.#held.set(id, held);
    return {
      commit: async (session) => {
        const record: SessionRecord = { owner, name, definition: prepared.definition ?? {}, createdAt: session.createdAt.toISOString() };
        const sealed = this.#o.store.sealRecord(record);
        await storeCall(this.#o.store.recommit(id, sealed, owner, host), 'creating a session');
        held.sealed = sealed;
        held.pending = false;
        // listed by every replica before the create answers
        await this.#publish([id], true).catch(() => {});
      },
      cancel: async () => {
        if (this.#held.get(id) === held) this.#held.delete(id);
        await this.#o.ownership.drop(id, held.fence).catch(() => {});
        await this.#o.store.cancel(owner, name, host).catch(() => {});
      },
    };
  }

  /** A session was closed here (DELETE, idle expiry): it goes from Redis too, now or once Redis is back. */
  removed(owner: string, name: string): void {
    const id = sessionId(owner, name);
    const held = this.#held.get(id);
    this.#held.delete(id);
    const fence = held?.fence ?? 0;
    this.#remove(id, fence).catch(() => {
      this.#pendingRemovals.set(id, fence);
      this.#log.warn({ session: name, owner }, 'redis unreachable: the closed session is removed from it once it is back');
    });
  }

  /** Graceful stop: leaves the fleet, logs out of every held session and hands each to its next owner. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearTimeout(this.#timer);
    clearInterval(this.#fenceTimer);
    clearTimeout(this.#dirtyTimer);
    await this.#ticking;
    if (!this.#started || !this.#o.redis.up || !this.#pool) return;
    const me = this.replicaId;
    await this.#o.membership.leave().catch(() => {});
    const hints = new Map<string, string[]>();
    const ids = [...this.#held.keys()];
    await eachLimited(ids, 50, async (id) => {
      const held = this.#held.get(id);
      if (!held) return;
      this.#held.delete(id);
      const { owner, name } = splitSessionId(id);
      await this.#pool!.release(owner, name);
      if (!(await this.#o.ownership.release(id, held.fence).catch(() => false))) return;
      const next = this.#o.membership.preferred(id, me);
      if (next !== me) hints.set(next, [...(hints.get(next) ?? []), id]);
    });
    await this.#hint(hints);
    if (ids.length > 0) this.#log.info({ sessions: ids.length, to: [...hints.keys()] }, 'sessions handed over before stopping');
  }

  // ------------------------------------------------------------------------------------------ the tick

  async #tick(): Promise<void> {
    const { redis, membership } = this.#o;
    if (!redis.up) {
      await this.#outage.pollPeers();
      return;
    }
    await this.#checkEpoch();
    if (this.#resync) await this.#resyncHeld();
    await membership.heartbeat();
    await membership.refresh();
    const live = new Set(membership.peers().map((p) => p.id));
    for (const id of this.#lastLive) if (!live.has(id)) this.#o.forwarder.abort(id);
    this.#lastLive = live;
    await this.#renew();
    await this.#place();
    await this.#publish([...this.#held.keys()], false);
    for (const [id, until] of this.#skip) if (until <= Date.now()) this.#skip.delete(id);
  }

  /**
   * Reads the epoch key (every tick, and before anything is answered "not found"): when it is gone or
   * another than seen last, Redis lost its data (a restart without persistence, a flush). Then every
   * replica writes again what it holds, and for a lease TTL what Redis does not know is "try again".
   */
  async #checkEpoch(): Promise<boolean> {
    const { client, keys } = this.#o.redis;
    let seen = await client.get(keys.epoch);
    if (seen === null) {
      await client.set(keys.epoch, randomBytes(12).toString('base64url'), 'NX');
      seen = await client.get(keys.epoch);
    }
    const lost = this.#epoch !== undefined && seen !== this.#epoch;
    if (lost) {
      this.#rebuildingUntil = Date.now() + this.#timing.graceMs;
      this.#graceUntil = Math.max(this.#graceUntil, this.#rebuildingUntil);
      this.#resync = true;
      this.#log.warn('redis lost its data (restarted without persistence?): the replicas write again what they hold');
    }
    this.#epoch = seen ?? undefined;
    this.#epochChecked = true;
    return lost;
  }

  /**
   * Before Redis's word that a session does not exist is believed (a 404, a create): throws
   * STORE_UNAVAILABLE while Redis may not know of every session (see rebuilding()), also when it turns
   * out only now that it lost its data.
   */
  async confirmAbsent(what: string): Promise<void> {
    if (this.rebuilding()) throw unavailable(`${what} (Redis is being filled again after it lost its data)`);
    const lost = await storeCall(this.#checkEpoch(), what);
    if (lost) {
      this.kick();
      throw unavailable(`${what} (Redis is being filled again after it lost its data)`);
    }
  }

  #validFor(): number {
    return this.#o.config.MSB_LEASE_TTL_MS - this.#timing.guardMs;
  }

  async #renew(): Promise<void> {
    const leases = new Map<string, number>();
    for (const [id, held] of this.#held) leases.set(id, held.fence);
    if (leases.size === 0) return;
    const sent = Date.now();
    const lost = new Set(await this.#o.ownership.renew(leases));
    for (const [id, fence] of leases) {
      const held = this.#held.get(id);
      if (!held || held.fence !== fence) continue;
      if (lost.has(id)) this.#fence(id, 'its lease is held by another replica now');
      else held.validUntil = Math.max(held.validUntil, sent + this.#validFor());
    }
  }

  /** Takes the sessions that prefer this replica and hands over those that prefer another (a bounded batch per tick). */
  async #place(): Promise<void> {
    const { membership, store } = this.#o;
    const me = this.replicaId;
    const inGrace = Date.now() < this.#graceUntil;
    const acquire: string[] = [];
    const handOver = new Map<string, string[]>();
    const rate = this.#o.config.MSB_RECONNECT_RATE_PER_SEC;
    // a move costs a login on the new owner: no more per tick than a mail host's starting reconnect rate lets through in one
    let budget = rate > 0 ? Math.max(1, Math.ceil((rate * this.#timing.tickMs) / 1000)) : Infinity;
    for (const id of await store.ids()) {
      if (this.#skip.has(id)) continue;
      const preferred = membership.preferred(id);
      const held = this.#held.get(id);
      if (!held) {
        if (preferred === me) acquire.push(id);
      } else if (!inGrace && !held.pending && preferred !== me && membership.isStable(preferred) && budget > 0) {
        budget -= 1;
        handOver.set(preferred, [...(handOver.get(preferred) ?? []), id]);
      }
    }
    await eachLimited(acquire, 50, (id) => this.#take(id, !inGrace));
    if (handOver.size > 0) await this.#handOver(handOver);
  }

  /** Acquires one session's lease; if that worked, restores it here (after the safety wait when the lease had expired). */
  async #take(id: string, allowExpired: boolean): Promise<void> {
    if (this.#held.has(id) || this.#stopping) return;
    const sent = Date.now();
    const lease = await this.#o.ownership.acquire(id, allowExpired);
    if (lease.kind === 'held' || lease.kind === 'wait') return;
    if (this.#held.has(id)) return;
    const held: Held = { fence: lease.fence, validUntil: sent + this.#validFor(), host: '', pending: true };
    this.#held.set(id, held);
    void this.#restore(id, held, lease.kind === 'expired').catch((err: unknown) => {
      this.#log.warn({ id, code: codeOf(err) }, 'could not take over a session');
      this.#dropHeld(id, held);
    });
  }

  async #restore(id: string, held: Held, afterExpiry: boolean): Promise<void> {
    // the previous owner did not hand it over: it may still be closing its connection (see leaseTiming)
    if (afterExpiry) await new Promise((resolve) => setTimeout(resolve, this.#timing.safetyMs));
    if (this.#held.get(id) !== held || this.#stopping) return;
    const { owner, name } = splitSessionId(id);
    const stored = await this.#o.store.get(id);
    if (!stored) {
      this.#dropHeld(id, held);
      return;
    }
    let prepared: PreparedSession | undefined;
    try {
      prepared = await this.#o.prepare(stored.record);
    } catch (err) {
      this.#log.warn({ session: name, owner, code: codeOf(err) }, 'stored session not restored: it could not be prepared; trying again in a minute');
      this.#skip.set(id, Date.now() + 60_000);
      this.#dropHeld(id, held);
      return;
    }
    if (!prepared) {
      this.#log.warn({ session: name, owner }, 'stored session dropped: its owner has no API key any more');
      this.#held.delete(id);
      await this.#remove(id, held.fence);
      return;
    }
    if (this.#held.get(id) !== held || this.#stopping || !this.#pool) return;
    this.#pool.restore(owner, name, prepared);
    held.sealed = stored.sealed;
    held.host = prepared.host ?? '';
    held.pending = false;
    this.#log.info({ session: name, owner, fence: held.fence, afterExpiry }, 'session taken over');
    await this.#publish([id], true).catch(() => {});
  }

  /** Logs out of sessions that prefer another replica now, releases their leases and tells the new owners. */
  async #handOver(targets: Map<string, string[]>): Promise<void> {
    const hints = new Map<string, string[]>();
    for (const [target, ids] of targets) {
      await eachLimited(ids, 20, async (id) => {
        const held = this.#held.get(id);
        if (!held || held.pending) return;
        this.#held.delete(id);
        const { owner, name } = splitSessionId(id);
        await this.#pool?.release(owner, name);
        if (await this.#o.ownership.release(id, held.fence).catch(() => false)) hints.set(target, [...(hints.get(target) ?? []), id]);
      });
    }
    await this.#hint(hints);
    const moved = [...hints.values()].reduce((n, ids) => n + ids.length, 0);
    if (moved > 0) this.#log.info({ sessions: moved, to: [...hints.keys()] }, 'sessions handed over to their preferred replica');
  }

  async #hint(hints: Map<string, string[]>): Promise<void> {
    const k = this.#o.redis.keys;
    await Promise.all([...hints].map(([target, ids]) => this.#o.redis.client.publish(k.replicaChannel(target), JSON.stringify({ t: 'take', ids })).catch(() => 0)));
  }

  /** Publishes the views of held sessions that changed (or all given, with `force`), fenced by the lease. */
  async #publish(ids: readonly string[], force: boolean): Promise<void> {
    const now = Date.now();
    const writes: Promise<unknown>[] = [];
    for (const id of ids) {
      const held = this.#held.get(id);
      if (!held || held.pending) continue;
      const { owner, name } = splitSessionId(id);
      const session = this.#pool?.find(owner, name);
      if (!session || session.state === 'closed') continue;
      const view = session.view();
      const signature = [view.state, view.mailbox?.checkedAt, view.lastUsedAt, view.lastError?.at, view.authorizationUrl, view.reconnect?.attempt].join('|');
      if (!force && signature === held.published) continue;
      held.published = signature;
      writes.push(this.#o.directory.publish({ view, replica: this.replicaId, fence: held.fence, at: now }, this.#o.ownership.value(held.fence)));
    }
    await Promise.all(writes);
  }

  async #remove(id: string, fence: number): Promise<void> {
    const { owner, name } = splitSessionId(id);
    await this.#o.store.remove(owner, name);
    await this.#o.ownership.drop(id, fence);
    await this.#o.directory.remove(owner, name);
    await this.#o.forget?.(owner, name);
  }

  #dropHeld(id: string, held: Held): void {
    if (this.#held.get(id) !== held) return;
    this.#held.delete(id);
    void this.#o.ownership.release(id, held.fence).catch(() => {});
  }

  /** Stops using a session whose lease is gone: logs out of it here; it stays stored for its new owner. */
  #fence(id: string, why: string): void {
    const held = this.#held.get(id);
    if (!held) return;
    this.#held.delete(id);
    const { owner, name } = splitSessionId(id);
    this.#log.warn({ session: name, owner, fence: held.fence, why }, 'lease lost: closing the session here');
    void this.#pool?.release(owner, name).catch(() => {});
  }

  // ------------------------------------------------------------------------------ while Redis is away

  /** Every 250 ms: a held session whose lease could not be renewed in time is closed, unless nobody can take it. */
  #checkValidity(): void {
    const now = Date.now();
    for (const [id, held] of this.#held) {
      if (held.validUntil > now) continue;
      if (this.#outage.nobodyCanTakeOver()) {
        held.validUntil = now + this.#timing.tickMs;
        continue;
      }
      this.#fence(id, this.#o.redis.up ? 'its lease could not be renewed in time' : 'redis is unreachable from here but not from the other replicas');
    }
  }

  /** After Redis came back: takes back the leases of held sessions and writes their records again (it may have lost them). */
  async #resyncHeld(): Promise<void> {
    let lost = 0;
    await eachLimited([...this.#held.keys()], 50, async (id) => {
      const held = this.#held.get(id);
      if (!held || held.pending) return;
      if (!(await this.#o.ownership.reassert(id, held.fence))) {
        lost += 1;
        this.#fence(id, 'another replica took it while redis was unreachable');
        return;
      }
      held.validUntil = Date.now() + this.#validFor();
      const { owner } = splitSessionId(id);
      if (held.sealed) await this.#o.store.recommit(id, held.sealed, owner, held.host);
    });
    for (const [id, fence] of [...this.#pendingRemovals]) {
      await this.#remove(id, fence);
      this.#pendingRemovals.delete(id);
    }
    await this.#publish([...this.#held.keys()], true);
    // only now: a resync that failed half-way (Redis gone again) runs again at the next tick
    this.#resync = false;
    this.#log.info({ sessions: this.#held.size, lost }, 'redis is back: held sessions written again');
  }
}

/** A Redis call that fails (unreachable, timed out) is STORE_UNAVAILABLE for the caller. */
async function storeCall<T>(promise: Promise<T>, what: string): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    if (isAppError(err)) throw err;
    throw unavailable(what);
  }
}

function moving(name: string): AppError {
  return new AppError('SESSION_RECONNECTING', `session "${name}" is moving between replicas; try again shortly`, { retryAfterSeconds: 2 });
}

function refuse(result: string, owner: string, name: string, host: string, c: Config): void {
  switch (result) {
    case 'ok':
      return;
    case 'principal':
      throw new AppError('SESSION_QUOTA_EXCEEDED', `principal "${owner}" holds its maximum of ${c.MSB_MAX_SESSIONS_PER_PRINCIPAL} sessions (MSB_MAX_SESSIONS_PER_PRINCIPAL): close one first`);
    case 'connecting':
      throw new AppError(
        'SESSION_QUOTA_EXCEEDED',
        `principal "${owner}" has ${c.MSB_MAX_CONNECTING_PER_PRINCIPAL} sessions connecting at once, its maximum (MSB_MAX_CONNECTING_PER_PRINCIPAL): wait for them to connect or fail`,
        { retryAfterSeconds: 5 },
      );
    case 'total':
      throw new AppError('SESSION_LIMIT_REACHED', `the replicas hold their maximum of ${c.MSB_MAX_SESSIONS} sessions`, { retryAfterSeconds: 30 });
    case 'host':
      throw new AppError('SESSION_LIMIT_REACHED', `the replicas hold their maximum of ${c.MSB_MAX_SESSIONS_PER_HOST} sessions to ${host}`, { retryAfterSeconds: 30 });
    default:
      throw moving(name);
  }
}

function codeOf(err: unknown): string {
  return isAppError(err) ? err.code : ((err as NodeJS.ErrnoException)?.code ?? 'INTERNAL_ERROR');
}
