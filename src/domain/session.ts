import type { Logger } from 'pino';
import type { Connector, MailboxSummary } from '../connectors/connector.js';
import { AppError, isAppError, type ErrorCode } from '../errors.js';
import type { PreparedSession, SessionSettingsView } from '../kinds/kind.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import type { RateLimiter } from './rate-limiter.js';
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
  /** Close after this long without an API call naming the session; 0 = never. */
  idleTimeoutMs: number;
  /** Longest wait for the operation before this one to finish. */
  lockTimeoutMs: number;
  reconnect: BackoffPolicy & { maxAttempts: number };
  limiter: RateLimiter;
  outbound: OutboundPolicy;
  observer: SessionObserver;
  onExpired: (session: Session) => void;
}

/** Errors that another attempt cannot fix: reconnecting would only hammer the server. */
const PERMANENT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'MAIL_AUTH_FAILED',
  'MAIL_HOST_NOT_FOUND',
  'MAIL_TLS_FAILED',
  'MAIL_STARTTLS_UNAVAILABLE',
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
  readonly createdAt = new Date();
  readonly #view: SessionSettingsView;
  readonly #liveView: (() => SessionSettingsView) | undefined;
  readonly #connector: Connector;
  readonly #options: SessionOptions;
  readonly #logger: Logger;
  readonly #queue = new SerialQueue();
  #state: SessionState = 'connecting';
  #connectedAt: Date | undefined;
  #lastUsedAt = new Date();
  #lastError: SessionError | undefined;
  #mailbox: MailboxSummary | undefined;
  #authorizationUrl: string | undefined;
  #opening: Promise<void> | undefined;
  #attempt = 0;
  #nextAttemptAt: Date | undefined;
  #timer: NodeJS.Timeout | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;

  constructor(owner: string, name: string, prepared: PreparedSession, options: SessionOptions) {
    this.owner = owner;
    this.name = name;
    this.type = prepared.type;
    this.fingerprint = prepared.fingerprint;
    this.#view = prepared.view;
    this.#liveView = prepared.liveView;
    this.#options = options;
    this.#logger = options.logger;
    this.#connector = prepared.createConnector({
      logger: options.mailLogger,
      outbound: options.outbound,
      onDrop: (err) => this.#onDrop(err),
      resume: () => this.resume(),
    });
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

  /** Connects again after an OAuth2 sign-in completed (the redirect endpoint calls this). */
  resume(): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(new AppError('SESSION_NOT_FOUND', `session "${this.name}" is closed`));
    this.#state = 'connecting';
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

  /** Marks the session used now (every API call that names it), which postpones its expiry. */
  touch(): void {
    this.#lastUsedAt = new Date();
  }

  /** Logs out and marks the session closed; safe to call in any state, more than once. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#timer);
    clearTimeout(this.#expiryTimer);
    // waits for an operation in flight (bounded by its own deadline), so LOGOUT never interleaves with it
    await this.#queue.run(() => this.#connector.close(), 2 ** 31 - 1);
    this.#logger.info('session closed');
  }

  view(): SessionView {
    const idle = this.#options.idleTimeoutMs;
    return {
      name: this.name,
      owner: this.owner,
      type: this.type,
      state: this.#state,
      createdAt: this.createdAt.toISOString(),
      connectedAt: this.#connectedAt?.toISOString() ?? null,
      lastUsedAt: this.#lastUsedAt.toISOString(),
      expiresAt: idle > 0 && this.#state !== 'closed' ? new Date(this.#lastUsedAt.getTime() + idle).toISOString() : null,
      idleTimeoutMs: idle,
      lastError: this.#lastError ?? null,
      reconnect:
        this.#state === 'reconnecting' ? { attempt: this.#attempt, nextAttemptAt: this.#nextAttemptAt?.toISOString() ?? null } : null,
      mailbox: this.#mailbox ?? null,
      warnings: [],
      ...this.#view,
      ...this.#liveView?.(),
      ...(this.#state === 'awaiting_authorization' && this.#authorizationUrl ? { authorizationUrl: this.#authorizationUrl } : {}),
    };
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
      if (this.#awaitAuthorization(err)) return;
      if (!reconnect) {
        this.#lastError = toSessionError(err);
        if (this.#state !== 'closed') this.#state = 'failed';
        this.#options.observer.failed(this.type, this.#lastError.code);
      }
      throw err;
    }
    if (this.#state === 'closed') {
      await this.#connector.close();
      throw new AppError('SESSION_NOT_FOUND', `session "${this.name}" was closed while connecting`);
    }
    this.#state = 'connected';
    this.#connectedAt = new Date();
    // lastError describes what is wrong now; the history of drops is in the metrics and the log
    this.#lastError = undefined;
    this.#attempt = 0;
    this.#nextAttemptAt = undefined;
    this.#options.observer.connected(this.type, Date.now() - started, reconnect);
    this.#logger.info({ ms: Date.now() - started, reconnect }, 'session connected');
    this.#scheduleKeepalive();
  }

  #scheduleKeepalive(): void {
    clearTimeout(this.#timer);
    const period = this.#connector.persistent ? this.#options.keepaliveIntervalMs : this.#options.checkIntervalMs;
    if (period <= 0) return;
    // +-10% jitter spreads thousands of sessions created together over the period
    const delay = Math.round(period * (0.9 + Math.random() * 0.2));
    this.#timer = setTimeout(() => void this.#keepalive(), delay);
    this.#timer.unref();
  }

  async #keepalive(): Promise<void> {
    if (this.#state !== 'connected') return;
    const started = Date.now();
    try {
      await this.#exclusive(async () => {
        if (this.#state !== 'connected') return;
        this.#mailbox = await this.#connector.summary();
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
    this.#logger.warn({ code: this.#lastError.code, detail: this.#lastError.message }, 'connection lost');
    if (this.#state !== 'reconnecting') {
      this.#state = 'reconnecting';
      this.#attempt = 0;
      this.#options.observer.reconnecting(this.type);
      void this.#exclusive(() => this.#connector.close()).catch(() => {});
    }
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    clearTimeout(this.#timer);
    const { maxAttempts } = this.#options.reconnect;
    if (PERMANENT.has(this.#lastError!.code) || (maxAttempts > 0 && this.#attempt >= maxAttempts)) {
      this.#state = 'failed';
      this.#nextAttemptAt = undefined;
      this.#options.observer.failed(this.type, this.#lastError!.code);
      this.#logger.warn({ code: this.#lastError!.code, attempts: this.#attempt }, 'session failed: not retrying');
      return;
    }
    const delay = backoffDelay(this.#attempt, this.#options.reconnect);
    this.#nextAttemptAt = new Date(Date.now() + delay);
    this.#timer = setTimeout(() => void this.#reconnect(), delay);
    this.#timer.unref();
  }

  async #reconnect(): Promise<void> {
    await this.#options.limiter.acquire();
    if (this.#state !== 'reconnecting') return;
    this.#attempt += 1;
    try {
      await this.#exclusive(() => this.#connect(true));
    } catch (err) {
      if (this.#state !== 'reconnecting') return;
      this.#lastError = toSessionError(err);
      this.#logger.info({ attempt: this.#attempt, code: this.#lastError.code }, 'reconnect failed');
      this.#scheduleReconnect();
    }
  }

  /** Moves to awaiting_authorization when `err` asks for a sign-in; says whether it did. */
  #awaitAuthorization(err: unknown): boolean {
    if (!isAppError(err) || err.code !== 'AUTHORIZATION_REQUIRED' || this.#state === 'closed') return false;
    clearTimeout(this.#timer);
    this.#state = 'awaiting_authorization';
    this.#authorizationUrl = typeof err.extra.authorizationUrl === 'string' ? err.extra.authorizationUrl : undefined;
    this.#lastError = toSessionError(err);
    this.#logger.info('session awaits authorization');
    return true;
  }

  #scheduleExpiry(): void {
    const idle = this.#options.idleTimeoutMs;
    if (idle <= 0) return;
    const due = this.#lastUsedAt.getTime() + idle - Date.now();
    this.#expiryTimer = setTimeout(() => {
      if (this.#state === 'closed') return;
      // touched since the timer was set: look again at the new due time
      if (this.#lastUsedAt.getTime() + idle > Date.now()) return this.#scheduleExpiry();
      this.#logger.info({ idleTimeoutMs: idle }, 'session expired: idle too long');
      this.#options.onExpired(this);
    }, Math.max(0, due));
    this.#expiryTimer.unref();
  }
}
