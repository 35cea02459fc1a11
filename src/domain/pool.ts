import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { EventHub } from './events.js';
import { noSessionStore, type SessionStore } from './session-store.js';
import type { Capability } from './mail.js';
import type { PreparedSession } from './prepared-session.js';
import type { OutboundPolicy } from '../security/outbound-policy.js';
import { reconnectGateFor, type ReconnectGate } from './reconnect-gate.js';
import { TimerWheel } from './timer-wheel.js';
import { Session, type SessionObserver, type SessionOptions } from './session.js';

export interface PoolOptions {
  config: Config;
  logger: Logger;
  observer: SessionObserver;
  outbound: OutboundPolicy;
  /** Where session definitions outlive the process (default: nowhere). */
  store?: SessionStore;
  /** Where sessions publish their events (state changes, new mail). */
  events?: EventHub;
  /** The session types whose connectors have a capability (kinds/index.ts knows them). */
  supportedBy: (capability: Capability) => readonly string[];
  /**
   * Spaces reconnects out (default: per mail host, adaptive, from the MSB_RECONNECT_RATE_* settings). With
   * replicas (src/cluster/) a gate that takes a turn from the fleet's bucket in Redis first.
   */
  reconnectGate?: ReconnectGate;
  /**
   * Asked before a new session connects, when sessions are shared with other replicas (src/cluster/):
   * counts it against the shared limits and takes ownership, or refuses (limits, store unreachable).
   */
  admit?: (owner: string, name: string, prepared: PreparedSession) => Promise<Admission>;
}

/** What admit() reserved: committed once the session connected, cancelled (never rejects) when it did not. */
export interface Admission {
  commit(session: Session): Promise<void>;
  cancel(): Promise<void>;
}

export interface CreateResult {
  session: Session;
  /** false when a session of that name and the same settings already existed. */
  created: boolean;
}

/** Sessions are keyed by owner and name: names are unique per principal, never across principals. */
const keyOf = (owner: string, name: string) => `${owner}\u0000${name}`;

/**
 * The in-memory pool of named sessions. A name is reserved synchronously, before any I/O, so parallel
 * creates of one name share one connection attempt instead of racing.
 */
export class SessionPool {
  readonly #sessions = new Map<string, Session>();
  readonly #hosts = new Map<Session, string>();
  /** Sessions per mail host (MSB_MAX_SESSIONS_PER_HOST), kept as a count so a create does not walk the pool. */
  readonly #perHost = new Map<string, number>();
  /** Sessions per owner, and the owner's creates still connecting: the per-principal limits. */
  readonly #owned = new Map<string, number>();
  readonly #connecting = new Map<string, number>();
  /** Creates whose admission (admit) is still pending: a second create of the name waits for its outcome. */
  readonly #admissions = new Map<Session, Promise<Admission>>();
  readonly #options: PoolOptions;
  readonly #limiter: ReconnectGate;
  readonly #timers = new TimerWheel();
  readonly #store: SessionStore;
  #closed = false;

  constructor(options: PoolOptions) {
    this.#options = options;
    this.#store = options.store ?? noSessionStore;
    this.#limiter = options.reconnectGate ?? reconnectGateFor(options.config);
  }

  get size(): number {
    return this.#sessions.size;
  }

  async create(owner: string, name: string, prepared: PreparedSession): Promise<CreateResult> {
    if (this.#closed) throw new AppError('SHUTTING_DOWN', 'the service is shutting down');
    const key = keyOf(owner, name);
    const existing = this.#sessions.get(key);
    if (existing) {
      if (existing.fingerprint !== prepared.fingerprint) {
        throw new AppError('SESSION_CONFLICT', `session "${name}" exists with other settings; close it first or pick another name`);
      }
      existing.touch();
      // the first create's admission refused is this create refused too
      await this.#admissions.get(existing);
      await existing.open();
      return { session: existing, created: false };
    }
    this.#checkLimits(owner, prepared.host);
    const session = new Session(owner, name, prepared, this.#sessionOptions(owner, name, prepared));
    this.#sessions.set(key, session);
    bump(this.#owned, owner, 1);
    this.#addHost(session, prepared.host);
    bump(this.#connecting, owner, 1);
    const admitting = this.#options.admit?.(owner, name, prepared);
    if (admitting) this.#admissions.set(session, admitting);
    let admission: Admission | undefined;
    try {
      admission = await admitting;
      await session.open();
      await admission?.commit(session);
    } catch (err) {
      // a session that never connected is not kept: the caller can retry with corrected settings;
      // closing it also stops its timers, which would otherwise keep it (and its secrets) in memory
      this.#forget(session);
      await session.close();
      await admission?.cancel();
      throw err;
    } finally {
      bump(this.#connecting, owner, -1);
      this.#admissions.delete(session);
    }
    this.#persist(session, prepared);
    return { session, created: true };
  }

  /**
   * Puts back a session from the session store after a restart: it is in the pool at once (state
   * connecting) and connects in the background at the reconnect rate. The limits are not checked: the
   * session existed before.
   */
  restore(owner: string, name: string, prepared: PreparedSession): Session {
    if (this.#closed) throw new AppError('SHUTTING_DOWN', 'the service is shutting down');
    const existing = this.#sessions.get(keyOf(owner, name));
    if (existing) return existing;
    const session = new Session(owner, name, prepared, this.#sessionOptions(owner, name, prepared));
    this.#sessions.set(keyOf(owner, name), session);
    this.#addHost(session, prepared.host);
    void session.restore();
    return session;
  }

  /** The owner's session of that name. Another owner's session is "not found", never "forbidden". */
  get(owner: string, name: string): Session {
    const session = this.#sessions.get(keyOf(owner, name));
    if (!session) throw new AppError('SESSION_NOT_FOUND', `no session named "${name}"`);
    return session;
  }

  /** The owner's session of that name, or undefined. */
  find(owner: string, name: string): Session | undefined {
    return this.#sessions.get(keyOf(owner, name));
  }

  /** The owner's sessions, or every session when owner is undefined. */
  list(owner?: string): Session[] {
    const all = [...this.#sessions.values()];
    return owner === undefined ? all : all.filter((s) => s.owner === owner);
  }

  /** Logs out and removes one session, from the session store too. */
  async close(owner: string, name: string): Promise<void> {
    const session = this.get(owner, name);
    this.#forget(session);
    this.#unpersist(session);
    await session.close();
  }

  /**
   * Logs out of one session and drops it from this process while keeping it in the session store:
   * another replica takes it over (a move, or this replica lost its lease on it).
   */
  async release(owner: string, name: string): Promise<void> {
    const session = this.find(owner, name);
    if (!session) return;
    this.#forget(session);
    await session.close();
  }

  /** Refuses new sessions and logs out of every session. */
  async closeAll(): Promise<void> {
    this.#closed = true;
    this.#limiter.stop();
    const sessions = this.list();
    this.#sessions.clear();
    this.#hosts.clear();
    this.#perHost.clear();
    this.#owned.clear();
    await Promise.allSettled(sessions.map((s) => s.close()));
    this.#timers.stop();
  }

  #addHost(session: Session, host: string | undefined): void {
    if (!host) return;
    this.#hosts.set(session, host);
    bump(this.#perHost, host, 1);
  }

  /** Keeps the definition of a created session in the store; a store that fails is logged, never fatal. */
  #persist(session: Session, prepared: PreparedSession): void {
    if (!prepared.definition) return;
    const record = { owner: session.owner, name: session.name, definition: prepared.definition, createdAt: session.createdAt.toISOString() };
    this.#store.save(record).catch((err: unknown) => this.#options.logger.error({ err, session: session.name }, 'session store: could not save the session'));
  }

  #unpersist(session: Session): void {
    this.#store.remove(session.owner, session.name).catch((err: unknown) => this.#options.logger.error({ err, session: session.name }, 'session store: could not remove the session'));
  }

  #forget(session: Session): void {
    const key = keyOf(session.owner, session.name);
    if (this.#sessions.get(key) === session) {
      this.#sessions.delete(key);
      bump(this.#owned, session.owner, -1);
    }
    const host = this.#hosts.get(session);
    if (host !== undefined && this.#hosts.delete(session)) bump(this.#perHost, host, -1);
  }

  #checkLimits(owner: string, host: string | undefined): void {
    const c = this.#options.config;
    const { MSB_MAX_SESSIONS: max, MSB_MAX_SESSIONS_PER_HOST: perHost } = c;
    // the principal's own limits first: one bot must not be able to take every slot of the pool
    if ((this.#owned.get(owner) ?? 0) >= c.MSB_MAX_SESSIONS_PER_PRINCIPAL) {
      throw new AppError(
        'SESSION_QUOTA_EXCEEDED',
        `principal "${owner}" holds its maximum of ${c.MSB_MAX_SESSIONS_PER_PRINCIPAL} sessions (MSB_MAX_SESSIONS_PER_PRINCIPAL): close one first`,
      );
    }
    if ((this.#connecting.get(owner) ?? 0) >= c.MSB_MAX_CONNECTING_PER_PRINCIPAL) {
      throw new AppError(
        'SESSION_QUOTA_EXCEEDED',
        `principal "${owner}" has ${c.MSB_MAX_CONNECTING_PER_PRINCIPAL} sessions connecting at once, its maximum (MSB_MAX_CONNECTING_PER_PRINCIPAL): wait for them to connect or fail`,
        { retryAfterSeconds: 5 },
      );
    }
    if (this.#sessions.size >= max) {
      throw new AppError('SESSION_LIMIT_REACHED', `the pool holds its maximum of ${max} sessions`, { retryAfterSeconds: 30 });
    }
    if (perHost > 0 && host) {
      if ((this.#perHost.get(host) ?? 0) >= perHost) {
        throw new AppError('SESSION_LIMIT_REACHED', `the pool holds its maximum of ${perHost} sessions to ${host}`, { retryAfterSeconds: 30 });
      }
    }
  }

  #sessionOptions(owner: string, name: string, prepared: PreparedSession): SessionOptions {
    const c = this.#options.config;
    const logger = this.#options.logger.child({ session: name, owner, type: prepared.type, ...prepared.logBindings });
    return {
      logger,
      mailLogger: logger.child({ lib: prepared.type }, { level: c.MSB_MAIL_LOG_LEVEL }),
      keepaliveIntervalMs: c.MSB_KEEPALIVE_INTERVAL_MS,
      checkIntervalMs: c.MSB_CHECK_INTERVAL_MS,
      watchIntervalMs: c.MSB_WATCH_INTERVAL_MS,
      idleTimeoutMs: prepared.idleTimeoutMs ?? c.MSB_IDLE_TIMEOUT_MS,
      lockTimeoutMs: c.MSB_LOCK_TIMEOUT_MS,
      reconnect: { baseMs: c.MSB_RECONNECT_BASE_MS, maxMs: c.MSB_RECONNECT_MAX_MS, maxAttempts: c.MSB_RECONNECT_MAX_ATTEMPTS },
      limiter: this.#limiter,
      timers: this.#timers,
      host: prepared.host,
      outbound: this.#options.outbound,
      observer: this.#options.observer,
      supportedBy: this.#options.supportedBy,
      onEvent: (type, data) => this.#options.events?.publish(owner, name, type, data),
      onExpired: (session) => {
        if (this.#sessions.get(keyOf(owner, name)) !== session) return;
        this.#forget(session);
        this.#unpersist(session);
        void session.close();
      },
    };
  }
}

/** Adds `delta` to a per-owner count, dropping owners that reach 0 so the map does not grow with every principal ever seen. */
function bump(counts: Map<string, number>, owner: string, delta: number): void {
  const next = (counts.get(owner) ?? 0) + delta;
  if (next > 0) counts.set(owner, next);
  else counts.delete(owner);
}
