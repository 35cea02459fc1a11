import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';

/** Every Redis key and channel the service uses, under MSB_REDIS_PREFIX. A session id is `owner/name`. */
export class Keys {
  readonly #p: string;

  constructor(prefix: string) {
    this.#p = prefix;
  }

  get sessions() { return `${this.#p}sessions`; }
  get meta() { return `${this.#p}meta`; }
  get countPrincipal() { return `${this.#p}count:principal`; }
  get countHost() { return `${this.#p}count:host`; }
  get reservations() { return `${this.#p}reservations`; }
  get fences() { return `${this.#p}fences`; }
  get replicas() { return `${this.#p}replicas`; }
  get principals() { return `${this.#p}principals`; }
  get tokens() { return `${this.#p}tokens`; }
  /** A random value written once: when it is gone or another, Redis lost its data (a restart without persistence). */
  get epoch() { return `${this.#p}epoch`; }
  get eventsChannel() { return `${this.#p}events`; }
  get clusterChannel() { return `${this.#p}cluster`; }
  lease(id: string) { return `${this.#p}lease:${id}`; }
  /** The fleet's reconnect bucket of one mail host ('' for kinds without one). */
  reconnectBucket(host: string) { return `${this.#p}reconnect-bucket:${host}`; }
  replica(replicaId: string) { return `${this.#p}replica:${replicaId}`; }
  replicaChannel(replicaId: string) { return `${this.#p}to:${replicaId}`; }
  directory(principal: string) { return `${this.#p}dir:${principal}`; }
  oauthState(hash: string) { return `${this.#p}oauth:${hash}`; }
  idempotency(hash: string) { return `${this.#p}idem:${hash}`; }
  claims(scope: string, part: 'claims' | 'holder' | 'finished') { return `${this.#p}claim:${scope}:${part}`; }
  claimSet(scope: string, claimId: string) { return `${this.#p}claim:${scope}:set:${claimId}`; }
}

/** `owner/name`: unambiguous, since neither principals nor session names contain a slash. */
export const sessionId = (owner: string, name: string): string => `${owner}/${name}`;

export function splitSessionId(id: string): { owner: string; name: string } {
  const at = id.indexOf('/');
  return { owner: id.slice(0, at), name: id.slice(at + 1) };
}

/** A Lua script run by EVALSHA (ioredis loads it again after a Redis restart). */
export type Script = (keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>;

let scripts = 0;

export function defineScript(client: Redis, lua: string): Script {
  const name = `msbScript${++scripts}`;
  client.defineCommand(name, { lua });
  const call = (client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[name]!.bind(client);
  return (keys, args) => call(keys.length, ...keys, ...args);
}

/**
 * The connections to Redis and whether it can be reached now. Commands fail at once while it cannot
 * (no offline queue: a request waits for nothing) and after MSB_REDIS_TIMEOUT of silence; a connection
 * that stops answering is dropped and dialled again, so a network partition shows as "down".
 */
export class RedisConnection {
  readonly client: Redis;
  /** Pub/sub needs a connection of its own. */
  readonly subscriber: Redis;
  readonly keys: Keys;
  readonly #logger: Logger;
  readonly #listeners = new Set<(up: boolean) => void>();
  #up = false;
  #closing = false;
  #lastErrorLog = 0;

  constructor(config: Config, logger: Logger, replicaId: string) {
    this.#logger = logger;
    this.keys = new Keys(config.MSB_REDIS_PREFIX);
    const ca = config.MSB_REDIS_CA_FILE ? [...rootCertificates, readFileSync(config.MSB_REDIS_CA_FILE, 'utf8')] : undefined;
    const options: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 3000,
      commandTimeout: 3000,
      // a dialled but silent Redis (a partition) is dropped, which makes the client reconnect and report "down"
      socketTimeout: 4000,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
      connectionName: `msb-${replicaId}`.slice(0, 100),
      ...(ca || config.MSB_REDIS_URL.startsWith('rediss:') ? { tls: { ...(ca ? { ca } : {}), minVersion: 'TLSv1.2' as const } } : {}),
    };
    this.client = new Redis(config.MSB_REDIS_URL, options);
    this.subscriber = new Redis(config.MSB_REDIS_URL, { ...options, socketTimeout: undefined, connectionName: `msb-${replicaId}-sub`.slice(0, 100) });
    for (const [which, client] of [['client', this.client], ['subscriber', this.subscriber]] as const) {
      // never unhandled (an EventEmitter 'error' without a listener would end the process); logged sparingly
      client.on('error', (err: Error) => this.#logError(which, err));
    }
    this.client.on('ready', () => this.#set(true));
    this.client.on('close', () => this.#set(false));
    this.client.on('end', () => this.#set(false));
  }

  get up(): boolean {
    return this.#up && this.client.status === 'ready';
  }

  /** Throws STORE_UNAVAILABLE unless Redis can be reached now. */
  require(what: string): void {
    if (!this.up) throw unavailable(what);
  }

  /** Called with true when Redis becomes reachable (again), false when it is lost. */
  onChange(listener: (up: boolean) => void): void {
    this.#listeners.add(listener);
  }

  /** Resolves once Redis was reached, or after `ms` (the service then starts and serves 503 until it is). */
  async ready(ms: number): Promise<boolean> {
    if (this.up) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#listeners.delete(done);
        resolve(false);
      }, ms);
      const done = (up: boolean) => {
        if (!up) return;
        clearTimeout(timer);
        this.#listeners.delete(done);
        resolve(true);
      };
      this.#listeners.add(done);
    });
  }

  /** Drops the connection and dials again (after a command timed out: the link may be dead without a close). */
  redial(): void {
    if (this.client.status === 'ready') this.client.disconnect(true);
    if (this.subscriber.status === 'ready') this.subscriber.disconnect(true);
  }

  async close(): Promise<void> {
    this.#closing = true;
    this.#listeners.clear();
    for (const client of [this.client, this.subscriber]) {
      try {
        if (client.status === 'ready') await client.quit();
        else client.disconnect();
      } catch {
        client.disconnect();
      }
    }
  }

  #set(up: boolean): void {
    if (this.#up === up) return;
    this.#up = up;
    if (this.#closing) return;
    this.#logger[up ? 'info' : 'warn'](up ? 'redis reachable' : 'redis unreachable: held sessions keep working here; creates, closes and moves answer 503 until it is back');
    for (const listener of [...this.#listeners]) listener(up);
  }

  #logError(which: string, err: Error): void {
    const now = Date.now();
    if (now - this.#lastErrorLog < 10_000) return;
    this.#lastErrorLog = now;
    // the URL (which may carry the password) is never logged; ioredis's messages name host and port only
    this.#logger.warn({ connection: which, code: (err as NodeJS.ErrnoException).code, detail: err.message }, 'redis connection error');
  }
}

export function unavailable(what: string): AppError {
  return new AppError('STORE_UNAVAILABLE', `Redis cannot be reached, so ${what} has to wait; try again shortly`, { retryAfterSeconds: 2 });
}
