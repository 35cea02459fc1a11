import type { Logger } from 'pino';
import type { EventHub, MailEvent } from '../domain/events.js';
import type { RedisConnection } from './redis.js';
import type { Sealer } from './sealer.js';

interface Shared {
  origin: string;
  owner: string;
  session: string;
  type: Exclude<MailEvent['type'], 'events.lost'>;
  data: Record<string, unknown>;
}

/**
 * Events of every replica's sessions on every replica, so that GET /v1/events works wherever it lands:
 * each replica publishes the events of the sessions it holds on one Redis channel (sealed: a new
 * message's summary is mail content) and hands those of the others to its own subscribers. Webhooks
 * stay with the replica where the event happened. Event ids are each replica's own: a client that
 * resumes on another replica gets `events.lost` first.
 */
export class EventBridge {
  readonly #redis: RedisConnection;
  readonly #sealer: Sealer;
  readonly #events: EventHub;
  readonly #me: string;
  readonly #logger: Logger;
  readonly #untap: () => void;

  constructor(redis: RedisConnection, sealer: Sealer, events: EventHub, me: string, logger: Logger) {
    this.#redis = redis;
    this.#sealer = sealer;
    this.#events = events;
    this.#me = me;
    this.#logger = logger;
    this.#untap = events.tap((owner, event) => {
      if (event.type === 'events.lost' || !this.#redis.up) return;
      const shared: Shared = { origin: me, owner, session: event.session, type: event.type, data: event.data };
      this.#redis.client.publish(this.#redis.keys.eventsChannel, this.#sealer.sealJson('event', shared)).catch(() => {
        this.#logger.debug({ session: event.session, type: event.type }, 'event not shared with the other replicas: redis unreachable');
      });
    });
  }

  /** A message of the events channel. */
  received(message: string): void {
    let shared: Shared;
    try {
      shared = this.#sealer.unsealJson<Shared>('event', message);
    } catch {
      return;
    }
    if (shared.origin === this.#me) return;
    this.#events.publish(shared.owner, shared.session, shared.type, shared.data, true);
  }

  close(): void {
    this.#untap();
  }
}
