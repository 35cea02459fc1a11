import type { MailboxSummary } from '../../domain/connector.js';
import type { MailWatcher, MessageSummary, WatchListener } from '../../domain/mail.js';
import { HEADER_MAX_BYTES } from '../../mime/limits.js';
import { parseMessage } from '../../mime/parse.js';
import type { Pop3Link } from './link.js';
import { encodeMessageId, summaryOf } from './messages.js';

export interface Pop3WatcherContext {
  /** One login, `fn`, QUIT. */
  use<T>(fn: (link: Pop3Link) => Promise<T>): Promise<T>;
  /** How long the server's LOGIN-DELAY still forbids a login; 0 when one may log in now. */
  loginWaitMs(): number;
  /** STAT on the link, recorded as the connector's last summary. */
  summaryFrom(link: Pop3Link): Promise<MailboxSummary>;
}

/** Summaries one poll reads at most (TOP n 0 each); more new mail is reported at the next polls. */
const REPORT_MAX = 200;

/**
 * New mail in a POP3 maildrop, by asking: POP3 tells nothing by itself and a connection sees only the
 * snapshot of its login, so each poll() (every MSB_WATCH_INTERVAL_MS, in the session's queue) is one login:
 * UIDL, compared with the UIDs seen before. A UIDL not seen is message.new (its summary from TOP n 0, as the
 * list reads it); one gone is message.deleted. STAT on the same login is the session's summary, so a watching
 * session logs in once per period. The baseline (what is there is not new) is the UIDL of the connect's own
 * login when the session said beforehand that it watches INBOX (expect), else start() takes it with a login;
 * where the server's LOGIN-DELAY forbids that login, the first poll allowed takes it instead, and mail that
 * arrived before it is baseline too. Polls within the LOGIN-DELAY do nothing.
 */
export class Pop3Watcher implements MailWatcher {
  readonly #ctx: Pop3WatcherContext;
  #known: Set<string> | undefined;
  #listener: WatchListener | undefined;
  /** INBOX will be watched: the next login takes the baseline on its way out. */
  #wanted = false;

  constructor(ctx: Pop3WatcherContext) {
    this.#ctx = ctx;
  }

  expect(folders: readonly string[]): void {
    this.#wanted = folders.some((f) => f.toUpperCase() === 'INBOX');
  }

  /** On a login about to end: the baseline (UIDL) when INBOX is to be watched and none is known yet. */
  async takeBaseline(link: Pop3Link): Promise<void> {
    if (!this.#wanted || this.#known || link.broken) return;
    this.#known = new Set((await link.uidl()).map((e) => e.uid));
  }

  async start(folders: readonly string[], listener: WatchListener): Promise<void> {
    // POP3 has INBOX only; the UIDs seen stay from before a reconnect, so what arrived meanwhile is reported
    this.#listener = folders.some((f) => f.toUpperCase() === 'INBOX') ? listener : undefined;
    // a baseline read on the connect's login needs no login of its own; should it have failed, this takes one
    if (this.#listener && !this.#known && this.#ctx.loginWaitMs() === 0) await this.poll();
  }

  async poll(): Promise<MailboxSummary | void> {
    if (!this.#listener || this.#ctx.loginWaitMs() > 0) return;
    return this.#ctx.use(async (link) => {
      const entries = await link.uidl();
      const summary = await this.#ctx.summaryFrom(link);
      const known = this.#known;
      if (!known) {
        this.#known = new Set(entries.map((e) => e.uid));
        return summary;
      }
      const present = new Set(entries.map((e) => e.uid));
      for (const uid of [...known]) {
        if (present.has(uid)) continue;
        known.delete(uid);
        this.#listener?.deleted(encodeMessageId(uid), 'INBOX');
      }
      const fresh = entries.filter((e) => !known.has(e.uid)).slice(0, REPORT_MAX);
      if (fresh.length === 0) return summary;
      const sizes = await link.sizes();
      const found: MessageSummary[] = [];
      for (const entry of fresh) {
        const top = await link.top(entry.n, 0, HEADER_MAX_BYTES);
        found.push(summaryOf(entry, sizes.get(entry.n), await parseMessage(top.bytes, { maxBytes: top.bytes.length + 1 }), false));
        known.add(entry.uid);
      }
      for (const s of found) this.#listener?.newMessage(s);
      return summary;
    });
  }

  stop(): void {
    this.#listener = undefined;
  }
}
