import type { Logger } from 'pino';
import { AppError } from '../errors.js';
import type { PreparedSession } from '../kinds/kind.js';
import { Session } from './session.js';

export interface PoolOptions {
  maxSessions: number;
  logger: Logger;
  /** Level of the mail libraries' own logs. */
  mailLogLevel: string;
}

export interface CreateResult {
  session: Session;
  /** false when a session of that name and the same settings already existed. */
  created: boolean;
}

/**
 * The in-memory pool of named sessions. A name is reserved synchronously, before any I/O, so parallel
 * creates of one name share one connection attempt instead of racing.
 */
export class SessionPool {
  readonly #sessions = new Map<string, Session>();
  readonly #options: PoolOptions;
  #closed = false;

  constructor(options: PoolOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#sessions.size;
  }

  async create(name: string, prepared: PreparedSession): Promise<CreateResult> {
    if (this.#closed) throw new AppError('SHUTTING_DOWN', 'the service is shutting down');
    const existing = this.#sessions.get(name);
    if (existing) {
      if (existing.fingerprint !== prepared.fingerprint) {
        throw new AppError('SESSION_CONFLICT', `session "${name}" exists with other settings; close it first or pick another name`);
      }
      await existing.open();
      existing.touch();
      return { session: existing, created: false };
    }
    if (this.#sessions.size >= this.#options.maxSessions) {
      throw new AppError('SESSION_LIMIT_REACHED', `the pool holds its maximum of ${this.#options.maxSessions} sessions`, { retryAfterSeconds: 30 });
    }
    const logger = this.#options.logger.child({ session: name, type: prepared.type, ...prepared.logBindings });
    const session = new Session(name, prepared, logger, logger.child({ lib: prepared.type }, { level: this.#options.mailLogLevel }));
    this.#sessions.set(name, session);
    try {
      await session.open();
    } catch (err) {
      // a session that never connected is not kept: the caller can retry with corrected settings
      if (this.#sessions.get(name) === session) this.#sessions.delete(name);
      throw err;
    }
    return { session, created: true };
  }

  get(name: string): Session {
    const session = this.#sessions.get(name);
    if (!session) throw new AppError('SESSION_NOT_FOUND', `no session named "${name}"`);
    return session;
  }

  list(): Session[] {
    return [...this.#sessions.values()];
  }

  /** Logs out and removes one session. */
  async close(name: string): Promise<void> {
    const session = this.get(name);
    this.#sessions.delete(name);
    await session.close();
  }

  /** Refuses new sessions and logs out of every session. */
  async closeAll(): Promise<void> {
    this.#closed = true;
    const sessions = this.list();
    this.#sessions.clear();
    await Promise.allSettled(sessions.map((s) => s.close()));
  }
}
