import type { Logger } from 'pino';
import type { Connector, MailboxSummary } from '../connectors/connector.js';
import { AppError, isAppError, type ErrorCode } from '../errors.js';
import type { PreparedSession, SessionSettingsView } from '../kinds/kind.js';

export type SessionState = 'connecting' | 'connected' | 'reconnecting' | 'awaiting_authorization' | 'failed' | 'closed';

export interface SessionError {
  code: ErrorCode;
  message: string;
  at: string;
}

/** What inspect and list show: built only from public fields, never from settings that hold secrets. */
export interface SessionView extends SessionSettingsView {
  name: string;
  type: string;
  state: SessionState;
  createdAt: string;
  connectedAt: string | null;
  lastUsedAt: string;
  lastError: SessionError | null;
  mailbox: MailboxSummary | null;
  warnings: string[];
  /** Set while the state is awaiting_authorization: where a person signs in. */
  authorizationUrl?: string;
}

/**
 * One named session and its state machine:
 *   connecting -> connected | failed;  connected -> failed (connection lost);  any -> closed.
 * Operations on the connector are serialized: one protocol command sequence at a time.
 */
export class Session {
  readonly name: string;
  readonly type: string;
  readonly fingerprint: string;
  readonly createdAt = new Date();
  readonly #view: SessionSettingsView;
  readonly #connector: Connector;
  readonly #logger: Logger;
  #state: SessionState = 'connecting';
  #connectedAt: Date | undefined;
  #lastUsedAt = new Date();
  #lastError: SessionError | undefined;
  #mailbox: MailboxSummary | undefined;
  #authorizationUrl: string | undefined;
  #tail: Promise<void> = Promise.resolve();
  #opening: Promise<void> | undefined;

  /** `mailLogger` is handed to the mail library; it has its own level (protocol traces are noisy). */
  constructor(name: string, prepared: PreparedSession, logger: Logger, mailLogger: Logger = logger) {
    this.name = name;
    this.type = prepared.type;
    this.fingerprint = prepared.fingerprint;
    this.#view = prepared.view;
    this.#logger = logger;
    this.#connector = prepared.createConnector({ logger: mailLogger, onDrop: (err) => this.#onDrop(err), resume: () => this.resume() });
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
    this.#opening ??= this.#exclusive(() => this.#connect());
    return this.#opening;
  }

  /** Connects again after an OAuth2 sign-in completed (the redirect endpoint calls this). */
  resume(): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(new AppError('SESSION_NOT_FOUND', `session "${this.name}" is closed`));
    this.#state = 'connecting';
    this.#authorizationUrl = undefined;
    return this.#exclusive(() => this.#connect());
  }

  async #connect(): Promise<void> {
    const started = Date.now();
    try {
      await this.#connector.connect();
      this.#mailbox = await this.#connector.summary();
      if (this.#state === 'closed') throw new AppError('SESSION_NOT_FOUND', `session "${this.name}" was closed while connecting`);
      this.#state = 'connected';
      this.#connectedAt = new Date();
      this.#lastError = undefined;
      this.#logger.info({ ms: Date.now() - started }, 'session connected');
    } catch (err) {
      if (this.#awaitAuthorization(err)) return;
      this.#fail(err);
      await this.#connector.close();
      throw err;
    }
  }

  /** Moves to awaiting_authorization when `err` asks for a sign-in; says whether it did. */
  #awaitAuthorization(err: unknown): boolean {
    if (!isAppError(err) || err.code !== 'AUTHORIZATION_REQUIRED' || this.#state === 'closed') return false;
    this.#state = 'awaiting_authorization';
    this.#authorizationUrl = typeof err.extra.authorizationUrl === 'string' ? err.extra.authorizationUrl : undefined;
    this.#recordError(err);
    this.#logger.info('session awaits authorization');
    return true;
  }

  /** Returns the mailbox summary, read live when the cached one is older than maxAgeMs. */
  async refresh(maxAgeMs: number): Promise<void> {
    if (this.#state !== 'connected') return;
    const age = this.#mailbox ? Date.now() - Date.parse(this.#mailbox.checkedAt) : Infinity;
    if (age <= maxAgeMs) return;
    await this.#exclusive(async () => {
      if (this.#state !== 'connected') return;
      try {
        this.#mailbox = await this.#connector.summary();
      } catch (err) {
        // inspect must answer even when the mailbox does not; the error is shown in lastError
        this.#recordError(err);
      }
    });
  }

  /** Marks the session used now (every API call that names it). */
  touch(): void {
    this.#lastUsedAt = new Date();
  }

  /** Logs out and marks the session closed; safe to call in any state, more than once. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    // wait for an operation in flight, so LOGOUT never interleaves with it
    await this.#exclusive(() => this.#connector.close());
    this.#logger.info('session closed');
  }

  view(): SessionView {
    return {
      name: this.name,
      type: this.type,
      state: this.#state,
      createdAt: this.createdAt.toISOString(),
      connectedAt: this.#connectedAt?.toISOString() ?? null,
      lastUsedAt: this.#lastUsedAt.toISOString(),
      lastError: this.#lastError ?? null,
      mailbox: this.#mailbox ?? null,
      warnings: [],
      ...this.#view,
      ...(this.#state === 'awaiting_authorization' && this.#authorizationUrl ? { authorizationUrl: this.#authorizationUrl } : {}),
    };
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((resolve) => (release = resolve));
    return previous.then(fn).finally(release);
  }

  #onDrop(err: unknown): void {
    if (this.#state === 'closed' || this.#awaitAuthorization(err)) return;
    this.#logger.warn({ err }, 'connection lost');
    this.#fail(err);
  }

  #fail(err: unknown): void {
    this.#recordError(err);
    if (this.#state !== 'closed') this.#state = 'failed';
  }

  #recordError(err: unknown): void {
    const appError = isAppError(err) ? err : new AppError('INTERNAL_ERROR', 'unexpected error');
    this.#lastError = { code: appError.code, message: appError.message, at: new Date().toISOString() };
  }
}
