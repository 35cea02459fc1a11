import type { Readable } from 'node:stream';
import type Pop3Command from 'node-pop3';
import { AppError, isAppError } from '../../errors.js';
import { withDeadline } from '../deadline.js';
import { readCapabilities } from './capa.js';
import { collect, multiline } from './multiline.js';

/** One message of the maildrop: its number in this login and its UIDL. */
export interface MaildropEntry {
  n: number;
  uid: string;
}

/** Longest UIDL or LIST answer read (about 200,000 messages); a longer one is a protocol error, not a buffer. */
const LISTING_MAX = 16 * 1024 * 1024;

/**
 * A logged-in POP3 connection (node-pop3 for login, STAT and QUIT; multiline.ts for the multi-line answers),
 * every command bounded by the command timeout. A timeout or a stream stopped midway destroys the connection:
 * `quit()` then only makes sure it is gone.
 */
export class Pop3Link {
  readonly #pop: Pop3Command;
  readonly #where: string;
  readonly #commandMs: number;
  readonly #toError: (err: unknown) => AppError;

  constructor(pop: Pop3Command, where: string, commandMs: number, toError: (err: unknown) => AppError) {
    this.#pop = pop;
    this.#where = where;
    this.#commandMs = commandMs;
    this.#toError = toError;
  }

  /** Whether the connection is gone (a command timed out, or a stream was stopped before its end). */
  get broken(): boolean {
    const socket = this.#pop._socket;
    return !socket || socket.destroyed;
  }

  destroy(): void {
    this.#pop._socket?.destroy();
  }

  async #bounded<T>(what: string, promise: Promise<T>): Promise<T> {
    try {
      return await withDeadline(promise, this.#commandMs, `${this.#where} ${what}`, () => this.destroy());
    } catch (err) {
      throw isAppError(err) ? err : this.#toError(err);
    }
  }

  /** The server's CAPA list (capa.ts), undefined when it has none. */
  capabilities(): Promise<string[] | undefined> {
    return this.#bounded('CAPA', readCapabilities(this.#pop));
  }

  stat(): Promise<string> {
    return this.#bounded('STAT', this.#pop.STAT());
  }

  /** UIDL: every message's number and unique id, in maildrop order. */
  async uidl(): Promise<MaildropEntry[]> {
    const entries: MaildropEntry[] = [];
    for (const [n, uid] of await this.#listing('UIDL')) {
      if (uid !== undefined) entries.push({ n, uid });
    }
    return entries;
  }

  /** LIST: every message's size in octets, by number. */
  async sizes(): Promise<Map<number, number>> {
    const sizes = new Map<number, number>();
    for (const [n, size] of await this.#listing('LIST')) {
      if (size !== undefined && /^[0-9]{1,15}$/.test(size)) sizes.set(n, Number(size));
    }
    return sizes;
  }

  async #listing(command: 'UIDL' | 'LIST'): Promise<[number, string | undefined][]> {
    const { bytes, complete } = await this.#bounded(command, multiline(this.#pop, command, this.#where).then((body) => collect(body, LISTING_MAX)));
    if (!complete) throw new AppError('MAIL_PROTOCOL_ERROR', `${this.#where}: the ${command} answer is longer than ${LISTING_MAX} bytes`);
    const out: [number, string | undefined][] = [];
    for (const line of bytes.toString('latin1').split(/\r?\n/)) {
      const [n, value] = line.trim().split(/\s+/);
      if (n && /^[0-9]{1,9}$/.test(n)) out.push([Number(n), value]);
    }
    return out;
  }

  /** TOP n lines: the header (and `lines` body lines), keeping the first `keep` bytes. */
  top(n: number, lines: number, keep: number): Promise<{ bytes: Buffer; complete: boolean }> {
    return this.#bounded('TOP', multiline(this.#pop, `TOP ${n} ${lines}`, this.#where).then((body) => collect(body, keep)));
  }

  /**
   * RETR n as a stream of the message exactly as the maildrop holds it (CRLF lines, dot-stuffing undone).
   * Only the start is bounded here: a stalled stream is the reader's to stop (the session's download watchdog).
   */
  retr(n: number): Promise<Readable> {
    return this.#bounded('RETR', multiline(this.#pop, `RETR ${n}`, this.#where));
  }

  /** DELE n: marks the message deleted; the server removes it only at QUIT (commit()). */
  dele(n: number): Promise<string> {
    return this.#bounded('DELE', this.#pop.DELE(n));
  }

  /**
   * QUIT, which enters the UPDATE state (RFC 1939 6): only its +OK says the DELEs of this login took effect.
   * Rejects when the server refused it or the connection is gone: the deletions are then not made.
   */
  async commit(): Promise<void> {
    if (this.broken) throw new AppError('MAIL_NETWORK_ERROR', `${this.#where}: the connection closed before QUIT: no message was deleted`);
    await this.#bounded('QUIT', this.#pop.QUIT());
  }

  /** QUIT when the connection is still in step; else only makes sure it is closed. Never rejects. */
  async quit(): Promise<void> {
    if (this.broken) return this.destroy();
    await withDeadline(this.#pop.QUIT(), this.#commandMs, `${this.#where} QUIT`, () => this.destroy()).catch(() => this.destroy());
  }
}
