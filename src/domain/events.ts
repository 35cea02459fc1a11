import { randomBytes } from 'node:crypto';

/**
 * Events of a principal's sessions, for Server-Sent Events and webhooks: new and deleted mail, state
 * changes, a folder whose ids became void. Each principal has a bounded buffer, so a client that comes
 * back with Last-Event-ID gets what it missed, or an `events.lost` event when the buffer overflowed (or
 * the process restarted: ids carry the process's epoch).
 */

export type EventType = 'message.new' | 'message.deleted' | 'session.state' | 'mailbox.reset' | 'events.lost';

export interface MailEvent {
  /** `<epoch>.<sequence>`: increasing within one process; another epoch means events were lost. */
  id: string;
  type: EventType;
  at: string;
  session: string;
  data: Record<string, unknown>;
}

export interface SubscribeOptions {
  /** Only this session's events. */
  session?: string;
  /** Replay what came after this id (SSE Last-Event-ID). */
  lastEventId?: string;
}

type Listener = (event: MailEvent) => void;

interface Channel {
  buffer: MailEvent[];
  /** Sequence of the oldest event ever dropped from the buffer (0 = none dropped). */
  droppedUpTo: number;
  listeners: Set<{ listener: Listener; session: string | undefined }>;
}

export class EventHub {
  readonly #epoch = randomBytes(4).toString('hex');
  readonly #bufferSize: number;
  readonly #channels = new Map<string, Channel>();
  readonly #taps = new Set<(owner: string, event: MailEvent) => void>();
  #sequence = 0;

  constructor(options: { bufferSize: number }) {
    this.#bufferSize = options.bufferSize;
  }

  /**
   * Records an event of `owner`'s session and hands it to every subscriber (synchronously, so cheaply).
   * `remote`: the event happened on another replica (src/cluster/): subscribers get it, taps do not (the
   * replica that holds the session delivers its webhooks and shares its events).
   */
  publish(owner: string, session: string, type: Exclude<EventType, 'events.lost'>, data: Record<string, unknown>, remote = false): MailEvent {
    const event: MailEvent = { id: `${this.#epoch}.${++this.#sequence}`, type, at: new Date().toISOString(), session, data };
    const channel = this.#channel(owner);
    channel.buffer.push(event);
    if (channel.buffer.length > this.#bufferSize) channel.droppedUpTo = this.#sequenceOf(channel.buffer.shift()!.id);
    for (const { listener, session: only } of channel.listeners) {
      if (only === undefined || only === session) listener(event);
    }
    if (!remote) for (const tap of this.#taps) tap(owner, event);
    return event;
  }

  /** Hears every event of every principal (webhook delivery). */
  tap(listener: (owner: string, event: MailEvent) => void): () => void {
    this.#taps.add(listener);
    return () => this.#taps.delete(listener);
  }

  /**
   * Calls `listener` with every later event of `owner` (of one session, if asked), after replaying the
   * buffered ones that came after `lastEventId`. Returns the unsubscribe function.
   */
  subscribe(owner: string, options: SubscribeOptions, listener: Listener): () => void {
    const channel = this.#channel(owner);
    if (options.lastEventId !== undefined) {
      for (const event of this.#replay(channel, options.lastEventId, options.session)) listener(event);
    }
    const entry = { listener, session: options.session };
    channel.listeners.add(entry);
    return () => {
      channel.listeners.delete(entry);
      if (channel.listeners.size === 0 && channel.buffer.length === 0) this.#channels.delete(owner);
    };
  }

  #replay(channel: Channel, lastEventId: string, session: string | undefined): MailEvent[] {
    const [epoch, seq] = lastEventId.split('.');
    const after = Number(seq);
    const ours = /^[0-9a-f]+\.[0-9]+$/.test(lastEventId);
    const lost = !ours || epoch !== this.#epoch || !Number.isInteger(after) || after < channel.droppedUpTo;
    const missed = channel.buffer.filter((e) => (lost || this.#sequenceOf(e.id) > after) && (session === undefined || e.session === session));
    if (!lost) return missed;
    const notice: MailEvent = {
      id: missed[0]?.id ?? `${this.#epoch}.${this.#sequence}`,
      type: 'events.lost',
      at: new Date().toISOString(),
      session: session ?? '',
      data: {
        reason: !ours ? 'not an event id of this service' : epoch !== this.#epoch ? 'the service restarted since that event' : 'the buffer overflowed since that event',
        lastEventId,
      },
    };
    return [notice, ...missed];
  }

  #sequenceOf(id: string): number {
    return Number(id.slice(id.indexOf('.') + 1));
  }

  #channel(owner: string): Channel {
    let channel = this.#channels.get(owner);
    if (!channel) {
      channel = { buffer: [], droppedUpTo: 0, listeners: new Set() };
      this.#channels.set(owner, channel);
    }
    return channel;
  }
}
