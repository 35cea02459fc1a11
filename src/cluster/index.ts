import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { EventHub } from '../domain/events.js';
import type { SessionPool } from '../domain/pool.js';
import type { PreparedSession } from '../domain/prepared-session.js';
import { reconnectGateFor, type ReconnectGate } from '../domain/reconnect-gate.js';
import type { SessionRecord, SessionStore } from '../domain/session-store.js';
import { AppError } from '../errors.js';
import type { OAuthBroker, OAuthBrokerOptions } from '../oauth/broker.js';
import type { Principal } from '../security/api-keys.js';
import { RedisIdempotencyStore } from '../store/redis-idempotency-store.js';
import { RedisLeaseStore } from '../store/redis-lease-store.js';
import { RedisSessionStore } from '../store/redis-session-store.js';
import { Coordinator, leaseTiming } from './coordinator.js';
import { Directory } from './directory.js';
import { EventBridge } from './event-bridge.js';
import { Forwarder, REPLICA_HEADER, ReplicaSigner } from './forwarding.js';
import { Membership } from './membership.js';
import { OAuthStates } from './oauth-states.js';
import { Ownership } from './ownership.js';
import { RedisConnection, splitSessionId } from './redis.js';
import type { RoutingOptions } from './routing.js';
import { Sealer } from './sealer.js';
import { FleetReconnectGate, SharedRateLimiter } from './shared-rate-limiter.js';
import { Touches } from './touches.js';

export { clusterRouting } from './routing.js';

/** This replica's id: the host name (for people reading logs) and random bits (a restarted replica is a new one). */
function replicaId(): string {
  const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 40) || 'replica';
  return `${host}-${randomBytes(3).toString('hex')}`;
}

/** http://<HOST>:<PORT> when the service listens on one address, else the host name (every interface). */
function defaultUrl(config: Config): string {
  const host = ['', '0.0.0.0', '::', '[::]'].includes(config.HOST) ? os.hostname() : config.HOST;
  return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${config.PORT}`;
}

export interface ClusterAttachment {
  pool: SessionPool;
  events: EventHub;
  broker: OAuthBroker;
  /** A stored definition made ready for its owner as the owner is now; undefined when the owner has no key any more. */
  prepare(record: SessionRecord): Promise<PreparedSession | undefined>;
}

/**
 * Everything that makes this process one replica of many on a shared Redis (MSB_REDIS_URL): built
 * before the pool (which takes its store, reconnect gate and admission), attached to the pool, started when the
 * app is ready, stopped (sessions handed over) before the pool closes.
 */
export class Cluster {
  readonly redis: RedisConnection;
  readonly store: RedisSessionStore;
  /** The fleet's reconnect buckets in Redis, one per mail host. */
  readonly limiter: SharedRateLimiter;
  /** The pool's reconnect gate: the fleet's bucket of the host, then this replica's adaptive per-host gate. */
  readonly reconnectGate: ReconnectGate;
  readonly idempotency: RedisIdempotencyStore;
  readonly leases: RedisLeaseStore;
  readonly coordinator: Coordinator;
  readonly membership: Membership;
  readonly #config: Config;
  readonly #logger: Logger;
  readonly #sealer: Sealer;
  readonly #signer: ReplicaSigner;
  readonly #forwarder: Forwarder;
  readonly #directory: Directory;
  readonly #ownership: Ownership;
  readonly #touches: Touches;
  readonly #oauthStates: OAuthStates;
  #bridge: EventBridge | undefined;
  #attached: ClusterAttachment | undefined;

  constructor(config: Config, logger: Logger) {
    this.#config = config;
    const id = replicaId();
    const url = (config.MSB_REPLICA_URL || defaultUrl(config)).replace(/\/+$/, '');
    this.#logger = logger.child({ component: 'cluster', replica: id });
    this.redis = new RedisConnection(config, this.#logger, id);
    this.#sealer = new Sealer(Buffer.from(config.MSB_SESSION_STORE_KEY, 'base64'));
    this.store = new RedisSessionStore(this.redis, this.#sealer);
    const ttl = config.MSB_LEASE_TTL_MS;
    this.membership = new Membership(this.redis, { id, url }, ttl, leaseTiming(ttl).tickMs);
    this.#ownership = new Ownership(this.redis, id, ttl);
    this.#directory = new Directory(this.redis, this.#sealer);
    this.#signer = new ReplicaSigner(config.MSB_REPLICA_SECRET, id);
    this.#forwarder = new Forwarder(this.#signer);
    this.#touches = new Touches(this.redis);
    this.#oauthStates = new OAuthStates(this.redis, id);
    // MSB_RECONNECT_RATE_PER_SEC=0 turns every reconnect cap off, the fleet's too
    const fleetRate = config.MSB_RECONNECT_RATE_PER_SEC > 0 ? config.MSB_RECONNECT_RATE_MAX_PER_SEC : 0;
    this.limiter = new SharedRateLimiter(this.redis, fleetRate, () => this.membership.size);
    this.reconnectGate = new FleetReconnectGate(this.limiter, reconnectGateFor(config));
    this.idempotency = new RedisIdempotencyStore(this.redis, this.#sealer, { ttlMs: config.MSB_IDEMPOTENCY_TTL_MS, waitMs: config.MSB_LOCK_TIMEOUT_MS + config.MSB_COMMAND_TIMEOUT_MS });
    this.leases = new RedisLeaseStore(this.redis, { maxFinished: config.MSB_CLAIM_MAX_FINISHED });
    this.coordinator = new Coordinator({
      config,
      logger,
      redis: this.redis,
      store: this.store,
      directory: this.#directory,
      ownership: this.#ownership,
      membership: this.membership,
      signer: this.#signer,
      forwarder: this.#forwarder,
      prepare: (record) => {
        if (!this.#attached) throw new AppError('SHUTTING_DOWN', 'not attached');
        return this.#attached.prepare(record);
      },
      forget: (owner, name) => this.leases.forget(owner, name),
    });
    this.#logger.info({ url, leaseTtlMs: ttl }, 'replica of a fleet on redis');
  }

  /** What the OAuth2 broker shares: its token cache (sealed in Redis) and where each sign-in started. */
  get brokerHooks(): Pick<OAuthBrokerOptions, 'sharedTokens' | 'onStateStarted'> {
    const { redis, sealer } = { redis: this.redis, sealer: this.#sealer };
    return {
      sharedTokens: {
        slotKey: Buffer.from(this.#config.MSB_SESSION_STORE_KEY, 'base64'),
        get: async (slot) => {
          const sealed = await redis.client.hget(redis.keys.tokens, slot);
          return sealed === null ? undefined : sealer.unseal(`tokens:${slot}`, sealed);
        },
        set: async (slot, value) => {
          await redis.client.hset(redis.keys.tokens, slot, sealer.seal(`tokens:${slot}`, value));
        },
      },
      onStateStarted: (state, ttlMs) => this.#oauthStates.started(state, ttlMs),
    };
  }

  /** The pool's session store: records are written by the coordinator (admission, take-over), removals go through it. */
  get sessionStore(): SessionStore {
    return {
      load: async () => [],
      save: async () => {},
      remove: async (owner, name) => this.coordinator.removed(owner, name),
      close: async () => {},
    };
  }

  /** The auth plugin's check of forwarded requests (see AuthOptions.forwarded). */
  readonly forwarded = (request: FastifyRequest): { principal: Principal | undefined } | undefined => {
    const header = request.headers[REPLICA_HEADER];
    if (header === undefined) return undefined;
    const verified = typeof header === 'string' ? this.#signer.verify(header, request.method, request.url) : undefined;
    if (!verified) throw new AppError('UNAUTHENTICATED', 'the replica signature of this forwarded request is not valid');
    return { principal: verified.principal };
  };

  attach(attachment: ClusterAttachment): RoutingOptions {
    this.#attached = attachment;
    this.coordinator.attach(attachment.pool);
    this.#bridge = new EventBridge(this.redis, this.#sealer, attachment.events, this.membership.me.id, this.#logger);
    // state changes are published to the directory at once, not only at the next tick
    attachment.events.tap((owner, event) => {
      if (event.type === 'session.state') this.coordinator.touched(owner, event.session);
    });
    return {
      config: this.#config,
      pool: attachment.pool,
      redis: this.redis,
      store: this.store,
      directory: this.#directory,
      ownership: this.#ownership,
      membership: this.membership,
      coordinator: this.coordinator,
      forwarder: this.#forwarder,
      signer: this.#signer,
      touches: this.#touches,
      oauthStates: this.#oauthStates,
      broker: attachment.broker,
    };
  }

  /**
   * Subscribes to the shared channels and starts heartbeats, renewals and placement. Waits a few seconds
   * for Redis first; without it the replica starts anyway and answers 503 where it needs Redis.
   */
  async start(): Promise<void> {
    if (!(await this.redis.ready(5000))) this.#logger.warn('redis not reachable at start: sessions are restored once it is');
    const k = this.redis.keys;
    const me = this.membership.me.id;
    const subscribe = () => {
      this.redis.subscriber.subscribe(k.eventsChannel, k.clusterChannel, k.replicaChannel(me)).catch(() => {});
    };
    this.redis.subscriber.on('ready', subscribe);
    if (this.redis.subscriber.status === 'ready') subscribe();
    this.redis.subscriber.on('message', (channel: string, message: string) => this.#received(channel, message));
    await this.coordinator.start();
    await this.membership.announce().catch(() => {});
  }

  /** Hands every held session over (graceful stop); the pool closes what is left afterwards. */
  async stop(): Promise<void> {
    this.#touches.flush();
    await this.coordinator.stop();
  }

  async close(): Promise<void> {
    this.#bridge?.close();
    this.#touches.close();
    this.limiter.stop();
    this.#forwarder.close();
    await this.redis.close();
  }

  #received(channel: string, message: string): void {
    const k = this.redis.keys;
    if (channel === k.eventsChannel) {
      this.#bridge?.received(message);
      return;
    }
    let parsed: { t?: unknown; id?: unknown; ids?: unknown };
    try {
      parsed = JSON.parse(message) as typeof parsed;
    } catch {
      return;
    }
    if (channel === k.clusterChannel) {
      if (parsed.t === 'leave' && typeof parsed.id === 'string' && parsed.id !== this.membership.me.id) this.coordinator.left(parsed.id);
      if (parsed.t === 'join') this.coordinator.kick();
      return;
    }
    const ids = Array.isArray(parsed.ids) ? parsed.ids.filter((id): id is string => typeof id === 'string' && id.includes('/')) : [];
    if (parsed.t === 'take') this.coordinator.take(ids);
    if (parsed.t === 'touch') {
      for (const id of ids) {
        const { owner, name } = splitSessionId(id);
        this.#attached?.pool.find(owner, name)?.touch();
      }
    }
  }
}
