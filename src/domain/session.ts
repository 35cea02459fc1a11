import type { Logger } from 'pino';
import type { Connector, MailboxSummary } from './connector.js';
import type { DeliveryResult, WebhookTarget } from './webhooks.js';
import { CAPABILITY_VERBS, type Capability, type Download, type MailCapabilities } from './mail.js';
import { AppError, isAppError, type ErrorCode } from '../errors.js';
import type { PreparedSession, SessionSettingsView } from './prepared-session.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import type { ReconnectGate } from './reconnect-gate.js';
import { TimerWheel, type TimerHandle } from './timer-wheel.js';
import { SerialQueue } from './serial-queue.js';
import type { OutboundPolicy } from '../security/outbound-policy.js';

export type SessionState = 'connecting' | 'connected' | 'reconnecting' | 'awaiting_authorization' | 'failed' | 'closed';

export interface SessionError {
  code: ErrorCode;
  message: string;
  at: string;
}

/** What inspect and list show: built only from public fields, never from settings that hold secrets. */
export interface SessionView extends SessionSettingsView {
  name: string;
  owner: string;
  type: string;
  state: SessionState;
  createdAt: string;
  connectedAt: string | null;
  lastUsedAt: string;
  expiresAt: string | null;
  idleTimeoutMs: number;
  lastError: SessionError | null;
  reconnect: { attempt: number; nextAttemptAt: string | null } | null;
  mailbox: MailboxSummary | null;
  warnings: string[];
  /** Set while the state is awaiting_authorization: where a person signs in. */
  authorizationUrl?: string;
  /** The webhooks that carried this session's events, each with its last delivery. */
  webhooks?: { url: string; scope: 'session' | 'principal'; lastDelivery: DeliveryResult | null }[];
}

/** Receives lifecycle events, e.g. for metrics. Keeps the domain free of any metrics library. */
export interface SessionObserver {
  connected(type: string, ms: number, reconnect: boolean): void;
  reconnecting(type: string): void;
  failed(type: string, code: ErrorCode): void;
  keepalive(type: string, ms: number, ok: boolean): void;
}

export interface SessionOptions {
  logger: Logger;
  /** Handed to the mail library; has its own level (protocol traces are noisy). */
  mailLogger: Logger;
  /** Keepalive period of connectors that hold a connection (IMAP). */
  keepaliveIntervalMs: number;
  /** Check period of connectors that connect per use (POP3). */
  checkIntervalMs: number;
  /** Check period of a session whose connector polls its watched folders (POP3, EWS, Graph); 0 = no watching by polling. */
  watchIntervalMs: number;
  /** Close after this long without an API call naming the session; 0 = never. */
  idleTimeoutMs: number;
  /** Longest wait for the operation before this one to finish. */
  lockTimeoutMs: number;
  reconnect: BackoffPolicy & { maxAttempts: number };
  /** Reconnect attempts (and restores) take their turn per mail host here. */
  limiter: ReconnectGate;
  /** The one timer structure for keepalives, reconnect delays and idle expiry of every session (default: the process's). */
  timers?: TimerWheel;
  /** The mail host the session connects to (the limiter's key); undefined for kinds without one. */
  host?: string | undefined;
  outbound: OutboundPolicy;
  observer: SessionObserver;
  onExpired: (session: Session) => void;
  /** Receives the session's events (state changes here; new mail from its watchers). */
  onEvent?: (type: 'session.state' | 'message.new' | 'message.deleted' | 'mailbox.reset', data: Record<string, unknown>) => void;
  /** The session types whose connectors have a capability, for OPERATION_NOT_SUPPORTED. */
  supportedBy: (capability: Capability) => readonly string[];
}

/** The timers of sessions made without a pool's (tests, tools). */
const processTimers = new TimerWheel();

/** Errors that another attempt cannot fix: reconnecting would only hammer the server. */
const PERMANENT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'MAIL_AUTH_FAILED',
  'SMTP_AUTH_FAILED',
  'MAIL_HOST_NOT_FOUND',
  'MAIL_TLS_FAILED',
  'MAIL_STARTTLS_UNAVAILABLE',
  'MAIL_TLS_REQUIRED',
  'MAIL_PERMANENTLY_UNAVAILABLE',
  'UNSUPPORTED_OPTION',
  'INSECURE_TLS_FORBIDDEN',
  'DESTINATION_FORBIDDEN',
  'SECRET_UNAVAILABLE',
  'EWS_ACCESS_DENIED',
  'GRAPH_ACCESS_DENIED',
  'GRAPH_MAILBOX_NOT_FOUND',
  'OAUTH_ACCESS_DENIED',
  'OAUTH_MFA_REQUIRED',
  'OAUTH_CLIENT_REJECTED',
  'OAUTH_CLIENT_SECRET_REQUIRED',
  'OAUTH_ACCOUNT_MISMATCH',
]);

/** Failures that say the host is down or overwhelmed: the reconnect gate slows down for that host. */
const OVERLOAD: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'MAIL_CONNECTION_REFUSED',
  'MAIL_NETWORK_ERROR',
  'MAIL_TIMEOUT',
  'MAIL_TEMPORARILY_UNAVAILABLE',
]);
const isOverload = (err: unknown): boolean => isAppError(err) && OVERLOAD.has(err.code);
/** A turn that was granted but not used (the session was closed meanwhile): tells the gate nothing. */
const UNUSED_TURN = { ok: false, ms: 0 } as const;

/**
 * Errors of a mail operation that say the link itself is broken: the session reconnects. Every other
 * error (MESSAGE_NOT_FOUND, FOLDER_NOT_FOUND, a refused command...) is the answer to that one operation.
 */
const CONNECTION_LEVEL: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'MAIL_NETWORK_ERROR',
  'MAIL_TIMEOUT',
  'MAIL_CONNECTION_REFUSED',
  'MAIL_HOST_NOT_FOUND',
  'MAIL_TLS_FAILED',
  'MAIL_AUTH_FAILED',
  'AUTHORIZATION_REQUIRED',
]);

/**
 * A change to record in the log at info: which operation and how many (never a subject, an address or a
 * body: mail content stays out of the log).
 */
export interface Audit<T> {
  operation: string;
  fields?: (result: T) => Record<string, number | string | boolean>;
}

/** The counts of a bulk operation's partial result, without its ids. */
function summarize(partial: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(partial as Record<string, unknown>)) if (typeof value === 'number') out[key] = value;
  return out;
}

/** The wait an error asks for (retryAfterSeconds), in ms; 0 when it asks for none. */
function retryAfterMs(err: unknown): number {
  const seconds = isAppError(err) ? err.extra.retryAfterSeconds : undefined;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 86_400) * 1000 : 0;
}

/** A webhook URL as inspect shows it: without its query, which may carry a token of the receiver. */
function webhookShown(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function toSessionError(err: unknown): SessionError {
  const e = isAppError(err) ? err : new AppError('INTERNAL_ERROR', 'unexpected error');
  return { code: e.code, message: e.message, at: new Date().toISOString() };
}

/**
 * One named session and its state machine:
 *   connecting -> connected | failed | awaiting_authorization
 *   connected -> reconnecting (connection lost, keepalive failed) -> connected | failed (permanent error)
 *   any -> closed
 * Operations on the connector are serialized through one queue, each with a bounded wait.
 */
export class Session {
  /** The principal that created the session; only it (and admins) can see and use it. */
  readonly owner: string;
  readonly name: string;
  readonly type: string;
  readonly fingerprint: string;
  readonly webhook: WebhookTarget | undefined;
  readonly #watch: readonly string[];
  readonly createdAt = new Date();
  readonly #createdAtText = this.createdAt.toISOString();
  readonly #deliveries = new Map<string, { url: string; scope: 'session' | 'principal'; lastDelivery: DeliveryResult | null }>();
  readonly #view: SessionSettingsView;
  readonly #liveView: (() => SessionSettingsView) | undefined;
  readonly #connector: Connector;
  readonly #options: SessionOptions;
  readonly #logger: Logger;
  readonly #queue = new SerialQueue();
  readonly #timers: TimerWheel;
  #state: SessionState = 'connecting';
  #connectedAt: Date | undefined;
  #lastUsedAt = new Date();
  #lastError: SessionError | undefined;
  #mailbox: MailboxSummary | undefined;
  #authorizationUrl: string | undefined;
  #opening: Promise<void> | undefined;
  #attempt = 0;
  #nextAttemptAt: Date | undefined;
  /** How long the server asked to wait before the next attempt (a POP3 LOGIN-DELAY...), from the last error. */
  #retryAfterMs = 0;
  #timer: TimerHandle | undefined;
  #expiryTimer: TimerHandle | undefined;

  constructor(owner: string, name: string, prepared: PreparedSession, options: SessionOptions) {
    this.owner = owner;
    this.name = name;
    this.type = prepared.type;
    this.fingerprint = prepared.fingerprint;
    this.webhook = prepared.webhook;
    this.#watch = prepared.watch ?? ['INBOX'];
    if (prepared.webhook) this.#deliveries.set('session', { url: webhookShown(prepared.webhook.url), scope: 'session', lastDelivery: null });
    this.#view = prepared.view;
    this.#liveView = prepared.liveView;
    this.#options = options;
    this.#logger = options.logger;
    this.#timers = options.timers ?? processTimers;
    this.#connector = prepared.createConnector({
      logger: options.mailLogger,
      outbound: options.outbound,
      onDrop: (err) => this.#onDrop(err),
      resume: () => this.resume(),
    });
    if (this.#watch.length) this.#connector.watcher?.expect?.(this.#watch);
    this.#scheduleExpiry();
  }

  get state(): SessionState {
    return this.#state;
  }

  /**
   * Connects and reads the first mailbox summary. Concurrent callers share the one attempt. A connector
   * that needs an OAuth2 sign-in first throws AUTHORIZATION_REQUIRED with `authorizationUrl`: the session
   * then waits in awaiting_authorization (open resolves) until resume() is called.
   */
  open(): Promise<void> {
    this.#opening ??= this.#exclusive(() => this.#connect(false)).catch(async (err: unknown) => {
      await this.#connector.close();
      throw err;
    });
    return this.#opening;
  }

  /**
   * Connects a session restored from the session store after a restart: it shows `connecting` meanwhile,
   * takes its turn from the reconnect rate cap, and a failure that another attempt may fix goes through
   * the reconnect backoff instead of failing the session (bots see no 404, and no failure, for a session
   * that was there before the restart).
   */
  async restore(): Promise<void> {
    const report = await this.#options.limiter.acquire(this.#options.host ?? '');
    if (this.#state !== 'connecting') return report(UNUSED_TURN);
    const started = Date.now();
    try {
      await this.#exclusive(() => this.#connect(true));
      report({ ok: true, ms: Date.now() - started });
    } catch (err) {
      report({ ok: false, ms: Date.now() - started, overload: isOverload(err) });
      if (this.#state !== 'connecting') return;
      this.#lastError = toSessionError(err);
      this.#enter('reconnecting');
      this.#attempt = 1;
      this.#logger.info({ code: this.#lastError.code }, 'restored session could not connect yet');
      this.#scheduleReconnect();
    }
  }

  /** Connects again after an OAuth2 sign-in completed (the redirect endpoint calls this). */
  resume(): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(new AppError('SESSION_NOT_FOUND', `session "${this.name}" is closed`));
    this.#enter('connecting');
    this.#authorizationUrl = undefined;
    return this.#exclusive(() => this.#connect(false));
  }

  /** Reads the mailbox summary live when the cached one is older than maxAgeMs. */
  async refresh(maxAgeMs: number): Promise<void> {
    if (this.#state !== 'connected') return;
    const age = this.#mailbox ? Date.now() - Date.parse(this.#mailbox.checkedAt) : Infinity;
    if (maxAgeMs > 0 && age <= maxAgeMs) return;
    await this.#exclusive(async () => {
      if (this.#state !== 'connected') return;
      try {
        this.#mailbox = await this.#connector.summary();
      } catch (err) {
        this.#lost(err);
      }
    });
  }

  /**
   * Throws the retryable or final error that a mail action on this session should answer with, unless
   * the session is connected. Mail actions call this first.
   */
  requireConnected(): void {
    if (this.#state === 'connected') return;
    if (this.#state === 'reconnecting' || this.#state === 'connecting') {
      const wait = this.#nextAttemptAt ? Math.max(1, Math.ceil((this.#nextAttemptAt.getTime() - Date.now()) / 1000)) : 1;
      throw new AppError('SESSION_RECONNECTING', `session "${this.name}" is reconnecting (attempt ${this.#attempt}); try again shortly`, { retryAfterSeconds: wait });
    }
    if (this.#state === 'awaiting_authorization') {
      throw new AppError('AUTHORIZATION_REQUIRED', `session "${this.name}" waits for an OAuth2 sign-in`, { authorizationUrl: this.#authorizationUrl });
    }
    throw new AppError('SESSION_NOT_READY', `session "${this.name}" is ${this.#state}${this.#lastError ? `: ${this.#lastError.code}` : ''}; close it and create it again`);
  }

  /**
   * The one way to run a mail operation: checks that the connector has the capability and that the
   * session is connected, renews lastUsedAt, and runs `op` through the session's queue (waiting at most
   * MSB_LOCK_TIMEOUT_MS for the operation before it). A connection-level failure sends the session to
   * reconnecting; an item-level one is only the answer. Connectors bound each of their commands.
   */
  async run<C extends Capability, T>(capability: C, op: (impl: NonNullable<MailCapabilities[C]>) => Promise<T>, audit?: Audit<T>): Promise<T> {
    const impl = this.#capability(capability);
    return this.#exclusive(async () => {
      // the state may have changed while the operation waited for its turn
      this.requireConnected();
      try {
        const result = await op(impl);
        if (audit) this.#logger.info({ operation: audit.operation, ...audit.fields?.(result) }, 'mail changed');
        return result;
      } catch (err) {
        if (audit) this.#logger.info({ operation: audit.operation, code: isAppError(err) ? err.code : 'INTERNAL_ERROR', ...(isAppError(err) && err.extra.partial ? { partial: summarize(err.extra.partial) } : {}) }, 'mail change failed');
        this.#failed(err);
        throw err;
      }
    });
  }

  /**
   * Like run(), for an operation that answers a stream: the session's queue stays held until the stream
   * has ended or was destroyed (one connection carries one command at a time), so other operations on the
   * session wait meanwhile, at most MSB_LOCK_TIMEOUT_MS, then SESSION_BUSY. A stream that moves no byte
   * for that long (a stalled server, or a caller that stopped reading) is destroyed so it cannot hold
   * the session for good.
   */
  download<C extends Capability>(capability: C, op: (impl: NonNullable<MailCapabilities[C]>) => Promise<Download>): Promise<Download> {
    const impl = this.#capability(capability);
    return new Promise<Download>((resolve, reject) => {
      this.#exclusive(async () => {
        this.requireConnected();
        let download: Download;
        try {
          download = await op(impl);
        } catch (err) {
          this.#failed(err);
          throw err;
        }
        const { stream } = download;
        const done = new Promise<void>((release) => stream.once('close', release));
        const stallMs = this.#options.lockTimeoutMs;
        let moved = true;
        const watchdog = setInterval(() => {
          if (!moved) stream.destroy(new AppError('MAIL_TIMEOUT', `the download moved no data for ${stallMs} ms`));
          moved = false;
        }, stallMs);
        stream.on('data', () => (moved = true));
        stream.once('error', (err) => this.#failed(err));
        resolve(download);
        await done;
        clearInterval(watchdog);
      }).catch(reject);
    });
  }

  /** Whether this session's connector has `capability`. */
  can(capability: Capability): boolean {
    return this.#connector[capability] !== undefined;
  }

  /** Records how the last delivery of one of this session's events to a webhook went (inspect shows it). */
  noteDelivery(scope: 'session' | 'principal', url: URL, result: DeliveryResult): void {
    this.#deliveries.set(scope, { url: webhookShown(url), scope, lastDelivery: result });
  }

  /** Marks the session used now (every API call that names it), which postpones its expiry. */
  touch(): void {
    this.#lastUsedAt = new Date();
  }

  /** Logs out and marks the session closed; safe to call in any state, more than once. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    const connecting = this.#state === 'connecting' || this.#state === 'reconnecting';
    this.#enter('closed');
    // a connect in flight holds the queue until its timeout; end it now, so that the close and the create waiting
    // for it both answer at once
    if (connecting) this.#connector.abort?.();
    this.#timer?.cancel();
    this.#expiryTimer?.cancel();
    this.#connector.watcher?.stop();
    // waits for an operation in flight (bounded by its own deadline), so LOGOUT never interleaves with it
    await this.#queue.run(() => this.#connector.close(), 2 ** 31 - 1);
    this.#logger.info('session closed');
  }

  /** What inspect answers. (Every inspect makes one: a literal and Object.assign, not spreads, which cost twice as much.) */
  view(): SessionView {
    const idle = this.#options.idleTimeoutMs;
    const view: SessionView = {
      name: this.name,
      owner: this.owner,
      type: this.type,
      state: this.#state,
      createdAt: this.#createdAtText,
      connectedAt: this.#connectedAt?.toISOString() ?? null,
      lastUsedAt: this.#lastUsedAt.toISOString(),
      expiresAt: idle > 0 && this.#state !== 'closed' ? new Date(this.#lastUsedAt.getTime() + idle).toISOString() : null,
      idleTimeoutMs: idle,
      lastError: this.#lastError ?? null,
      reconnect:
        this.#state === 'reconnecting' ? { attempt: this.#attempt, nextAttemptAt: this.#nextAttemptAt?.toISOString() ?? null } : null,
      mailbox: this.#mailbox ?? null,
      warnings: [],
    };
    Object.assign(view, this.#view);
    if (this.#deliveries.size > 0) view.webhooks = [...this.#deliveries.values()];
    if (this.#liveView) Object.assign(view, this.#liveView());
    if (this.#state === 'awaiting_authorization' && this.#authorizationUrl) view.authorizationUrl = this.#authorizationUrl;
    return view;
  }

  #capability<C extends Capability>(capability: C): NonNullable<MailCapabilities[C]> {
    this.touch();
    const impl = this.#connector[capability];
    if (!impl) {
      const types = this.#options.supportedBy(capability);
      throw new AppError(
        'OPERATION_NOT_SUPPORTED',
        `${this.type} sessions cannot ${CAPABILITY_VERBS[capability]}${types.length ? `; ${types.join(', ')} sessions can` : ''}`,
        { supportedBy: [...types] },
      );
    }
    this.requireConnected();
    return impl as NonNullable<MailCapabilities[C]>;
  }

  /** After a failed operation: a broken link makes the session reconnect; anything else is only the answer. */
  #failed(err: unknown): void {
    if (this.#state === 'connected' && isAppError(err) && CONNECTION_LEVEL.has(err.code)) this.#lost(err);
  }

  /** Every state change goes through here, so that subscribers see each one (session.state events). */
  #enter(state: SessionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#options.onEvent?.('session.state', {
      state,
      ...(this.#lastError && (state === 'failed' || state === 'reconnecting' || state === 'awaiting_authorization')
        ? { code: this.#lastError.code }
        : {}),
    });
  }

  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    return this.#queue.run(task, this.#options.lockTimeoutMs);
  }

  async #connect(reconnect: boolean): Promise<void> {
    const started = Date.now();
    try {
      // a connector that reads the summary while proving the connection hands it back (POP3: one login, not two)
      this.#mailbox = (await this.#connector.connect()) ?? (await this.#connector.summary());
    } catch (err) {
      if (this.#state === 'closed') throw new AppError('SESSION_NOT_FOUND', `session "${this.name}" was closed while connecting`);
      if (this.#awaitAuthorization(err)) return;
      if (!reconnect) {
        this.#lastError = toSessionError(err);
        this.#enter('failed');
        this.#options.observer.failed(this.type, this.#lastError.code);
      }
      throw err;
    }
    if (this.#state === 'closed') {
      await this.#connector.close();
      throw new AppError('SESSION_NOT_FOUND', `session "${this.name}" was closed while connecting`);
    }
    this.#enter('connected');
    this.#connectedAt = new Date();
    // lastError describes what is wrong now; the history of drops is in the metrics and the log
    this.#lastError = undefined;
    this.#attempt = 0;
    this.#nextAttemptAt = undefined;
    this.#options.observer.connected(this.type, Date.now() - started, reconnect);
    this.#logger.info({ ms: Date.now() - started, reconnect }, 'session connected');
    await this.#startWatching();
    this.#scheduleKeepalive();
  }

  /** Starts the connector's watcher on the watched folders; a folder that cannot be watched is logged, not fatal. */
  async #startWatching(): Promise<void> {
    const watcher = this.#connector.watcher;
    if (!watcher || this.#watch.length === 0) return;
    const publish = this.#options.onEvent;
    try {
      await watcher.start(this.#watch, {
        newMessage: (summary) => publish?.('message.new', summary as unknown as Record<string, unknown>),
        deleted: (id, folder) => publish?.('message.deleted', { id, folder }),
        reset: (folder) => publish?.('mailbox.reset', { folder }),
      });
    } catch (err) {
      this.#logger.warn({ code: isAppError(err) ? err.code : 'INTERNAL_ERROR', folders: this.#watch.length }, 'watching for new mail failed: no message.new events until the next reconnect');
    }
  }

  /** Whether the keepalive tick polls the watcher (POP3, EWS, Graph) rather than only reading the summary. */
  #polls(): boolean {
    return this.#connector.watcher?.poll !== undefined && this.#watch.length > 0 && this.#options.watchIntervalMs > 0;
  }

  #scheduleKeepalive(): void {
    this.#timer?.cancel();
    const base = this.#connector.persistent ? this.#options.keepaliveIntervalMs : this.#options.checkIntervalMs;
    const period = this.#polls() ? (base > 0 ? Math.min(base, this.#options.watchIntervalMs) : this.#options.watchIntervalMs) : base;
    if (period <= 0) return;
    // +-10% jitter spreads thousands of sessions created together over the period
    const delay = Math.round(period * (0.9 + Math.random() * 0.2));
    this.#timer = this.#timers.schedule(delay, () => void this.#keepalive());
  }

  async #keepalive(): Promise<void> {
    if (this.#state !== 'connected') return;
    const started = Date.now();
    try {
      await this.#exclusive(async () => {
        if (this.#state !== 'connected') return;
        const polled = this.#polls() ? await this.#connector.watcher!.poll!() : undefined;
        this.#mailbox = polled ?? (await this.#connector.summary());
      });
      this.#options.observer.keepalive(this.type, Date.now() - started, true);
      this.#scheduleKeepalive();
    } catch (err) {
      this.#options.observer.keepalive(this.type, Date.now() - started, false);
      // SESSION_BUSY means a long operation holds the connection: it is alive, try later
      if (isAppError(err) && err.code === 'SESSION_BUSY') this.#scheduleKeepalive();
      else this.#lost(err);
    }
  }

  #onDrop(err: unknown): void {
    if (this.#state !== 'connected') return;
    this.#lost(err);
  }

  /** An established connection is gone: reconnect with backoff, or fail when retrying cannot help. */
  #lost(err: unknown): void {
    if (this.#state === 'closed' || this.#awaitAuthorization(err)) return;
    this.#lastError = toSessionError(err);
    this.#retryAfterMs = retryAfterMs(err);
    this.#logger.warn({ code: this.#lastError.code, detail: this.#lastError.message }, 'connection lost');
    if (this.#state !== 'reconnecting') {
      this.#enter('reconnecting');
      this.#attempt = 0;
      this.#options.observer.reconnecting(this.type);
      this.#connector.watcher?.stop();
      void this.#exclusive(() => this.#connector.close()).catch(() => {});
    }
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    this.#timer?.cancel();
    const { maxAttempts } = this.#options.reconnect;
    if (PERMANENT.has(this.#lastError!.code) || (maxAttempts > 0 && this.#attempt >= maxAttempts)) {
      this.#enter('failed');
      this.#nextAttemptAt = undefined;
      this.#options.observer.failed(this.type, this.#lastError!.code);
      this.#logger.warn({ code: this.#lastError!.code, attempts: this.#attempt }, 'session failed: not retrying');
      return;
    }
    // never sooner than the server asked (retrying a LOGIN-DELAY early only earns another refusal)
    const delay = Math.max(backoffDelay(this.#attempt, this.#options.reconnect), this.#retryAfterMs);
    this.#nextAttemptAt = new Date(Date.now() + delay);
    this.#timer = this.#timers.schedule(delay, () => void this.#reconnect());
  }

  async #reconnect(): Promise<void> {
    const report = await this.#options.limiter.acquire(this.#options.host ?? '');
    if (this.#state !== 'reconnecting') return report(UNUSED_TURN);
    this.#attempt += 1;
    const started = Date.now();
    try {
      await this.#exclusive(() => this.#connect(true));
      report({ ok: true, ms: Date.now() - started });
    } catch (err) {
      report({ ok: false, ms: Date.now() - started, overload: isOverload(err) });
      if (this.#state !== 'reconnecting') return;
      this.#lastError = toSessionError(err);
      this.#retryAfterMs = retryAfterMs(err);
      this.#logger.info({ attempt: this.#attempt, code: this.#lastError.code }, 'reconnect failed');
      this.#scheduleReconnect();
    }
  }

  /** Moves to awaiting_authorization when `err` asks for a sign-in; says whether it did. */
  #awaitAuthorization(err: unknown): boolean {
    if (!isAppError(err) || err.code !== 'AUTHORIZATION_REQUIRED' || this.#state === 'closed') return false;
    this.#timer?.cancel();
    this.#authorizationUrl = typeof err.extra.authorizationUrl === 'string' ? err.extra.authorizationUrl : undefined;
    this.#lastError = toSessionError(err);
    this.#enter('awaiting_authorization');
    this.#logger.info('session awaits authorization');
    return true;
  }

  #scheduleExpiry(): void {
    const idle = this.#options.idleTimeoutMs;
    if (idle <= 0) return;
    const due = this.#lastUsedAt.getTime() + idle - Date.now();
    this.#expiryTimer = this.#timers.schedule(Math.max(0, due), () => {
      if (this.#state === 'closed') return;
      // touched since the timer was set: look again at the new due time
      if (this.#lastUsedAt.getTime() + idle > Date.now()) return this.#scheduleExpiry();
      this.#logger.info({ idleTimeoutMs: idle }, 'session expired: idle too long');
      this.#options.onExpired(this);
    });
  }
}
