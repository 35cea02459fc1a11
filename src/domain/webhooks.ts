import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { MailEvent } from './events.js';
import type { Secret } from './secret.js';

/** Where events go by webhook: a URL and the key their signature is made with. */
export interface WebhookTarget {
  url: URL;
  secret: Secret;
}

/** What inspect shows of the last delivery to a target (never the secret, never the event). */
export interface DeliveryResult {
  at: string;
  eventId: string;
  ok: boolean;
  /** The receiver's HTTP status; null when no answer came. */
  status: number | null;
  attempts: number;
  /** Why the last attempt failed, when it did (a code such as ETIMEDOUT, or "HTTP 500"). */
  error: string | null;
}

/** Sends one signed request and resolves with the HTTP status (or rejects with a transport error). */
export type WebhookPost = (target: WebhookTarget, body: string, headers: Record<string, string>) => Promise<number>;

export interface WebhookOptions {
  post: WebhookPost;
  logger: Logger;
  /** Waits before the 2nd, 3rd, ... attempt; its length + 1 is the number of attempts. */
  retryDelaysMs: readonly number[];
  /** Most deliveries pending per target (waiting or being retried); beyond it the oldest are dropped. */
  maxPendingPerTarget: number;
}

/** The documented retry schedule: 6 attempts over about 13 minutes. */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [1_000, 5_000, 30_000, 120_000, 600_000];

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: receivers recompute it and reject old timestamps. */
export function signature(secret: Secret, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret.reveal()).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

interface Pending {
  cancelled: boolean;
  started: boolean;
  start: () => void;
}

/** Deliveries in flight (including their retry waits) per target; the others wait their turn. */
const IN_FLIGHT_PER_TARGET = 4;

/**
 * Delivers events to webhooks: POST of the event JSON with an X-MSB-Signature, retried on a non-2xx
 * answer, a timeout or a transport error after each delay of the schedule. Deliveries never block a
 * session (publishing only enqueues); each target has a bounded number pending, so a dead receiver
 * costs a fixed amount of memory. Deliveries to one target may overlap: receivers order by event id.
 */
export class WebhookDispatcher {
  readonly #options: WebhookOptions;
  readonly #pending = new Map<string, Pending[]>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(options: WebhookOptions) {
    this.#options = options;
  }

  /** Queues `event` for `target`; `onResult` hears how its last attempt went (for inspect). */
  deliver(target: WebhookTarget, event: MailEvent, onResult: (result: DeliveryResult) => void): void {
    if (this.#closed) return;
    const key = target.url.href;
    const queue = this.#pending.get(key) ?? [];
    const body = JSON.stringify(event);
    const job: Pending = { cancelled: false, started: false, start: () => void this.#attempt(target, event, body, 1, job, onResult) };
    queue.push(job);
    this.#pending.set(key, queue);
    if (queue.length > this.#options.maxPendingPerTarget) {
      const dropped = queue.find((j) => !j.started) ?? queue[0]!;
      dropped.cancelled = true;
      queue.splice(queue.indexOf(dropped), 1);
      this.#options.logger.warn({ webhook: target.url.origin, pending: queue.length }, 'webhook receiver falls behind: dropped the oldest waiting delivery');
    }
    this.#pump(queue);
  }

  /** Starts waiting deliveries while fewer than IN_FLIGHT_PER_TARGET run. */
  #pump(queue: Pending[]): void {
    let running = queue.filter((j) => j.started).length;
    for (const job of queue) {
      if (running >= IN_FLIGHT_PER_TARGET) break;
      if (job.started) continue;
      job.started = true;
      running += 1;
      job.start();
    }
  }

  /** Stops every retry (the service shuts down). */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const queue of this.#pending.values()) for (const job of queue) job.cancelled = true;
    this.#pending.clear();
  }

  async #attempt(target: WebhookTarget, event: MailEvent, body: string, attempt: number, job: Pending, onResult: (r: DeliveryResult) => void): Promise<void> {
    if (job.cancelled) return;
    const headers = {
      'x-msb-signature': signature(target.secret, body, Math.floor(Date.now() / 1000)),
      'x-msb-event-id': event.id,
      'x-msb-event-type': event.type,
      'user-agent': 'mail-session-broker',
    };
    let status: number | null = null;
    let error: string | null = null;
    try {
      status = await this.#options.post(target, body, headers);
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (err) {
      const e = err as { code?: unknown };
      error = typeof e?.code === 'string' ? e.code : 'delivery failed';
    }
    const ok = error === null;
    onResult({ at: new Date().toISOString(), eventId: event.id, ok, status, attempts: attempt, error });
    const delay = this.#options.retryDelaysMs[attempt - 1];
    if (ok || delay === undefined || job.cancelled) {
      if (!ok) this.#options.logger.warn({ webhook: target.url.origin, eventId: event.id, attempts: attempt, error }, 'webhook delivery failed: giving up');
      this.#done(target, job);
      return;
    }
    this.#options.logger.info({ webhook: target.url.origin, eventId: event.id, attempt, error, retryInMs: delay }, 'webhook delivery failed: will retry');
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void this.#attempt(target, event, body, attempt + 1, job, onResult);
    }, delay);
    this.#timers.add(timer);
  }

  #done(target: WebhookTarget, job: Pending): void {
    const queue = this.#pending.get(target.url.href);
    if (!queue) return;
    const i = queue.indexOf(job);
    if (i >= 0) queue.splice(i, 1);
    if (queue.length === 0) this.#pending.delete(target.url.href);
    else this.#pump(queue);
  }
}
