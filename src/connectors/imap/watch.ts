import type { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import type { MailWatcher, WatchListener } from '../../domain/mail.js';
import { AppError, isAppError } from '../../errors.js';
import { withDeadline } from '../deadline.js';
import { MARKS_QUERY, SUMMARY_QUERY, idOf, summaryOf } from './access.js';
import { readStructure } from './structure.js';

export interface ImapWatcherContext {
  /** A new logged-in connection of the session's own; `onClose` hears when it is lost. */
  connect(onClose: (err: AppError) => void): Promise<ImapFlow>;
  logger: Logger;
  commandMs: number;
  host: string;
  port: number;
  toError(err: unknown): AppError;
}

/** Ids remembered per folder for message.deleted: the newest at start, and every message that arrives since. */
export const TRACKED = 1000;
/** First wait before a lost watch connection is opened again; doubles up to RESTART_MAX_MS. */
const RESTART_BASE_MS = 1000;
const RESTART_MAX_MS = 60_000;
/** Attempts to open a lost watch again (about 8 minutes at the longest waits) before giving the folder up. */
const RESTART_ATTEMPTS = 12;
/** New messages one start() reports that arrived while the session was reconnecting (the newest of them). */
const CATCH_UP_MAX = 1000;

/** What outlives a reconnect: a folder's identity and how far it was seen. */
interface FolderState {
  uidValidity: bigint;
  lastUid: number;
  /** uid -> id of the tracked messages (insertion order: oldest first). */
  ids: Map<number, string>;
}

interface Watch {
  path: string;
  client: ImapFlow;
  /** Every UID of the folder known here, ascending. */
  uids: number[];
  /** A re-read of the UIDs after an EXPUNGE is queued. */
  resyncing: boolean;
  state: FolderState;
  /** Fetches of new mail, one after the other. */
  chain: Promise<void>;
}

/**
 * New mail as it arrives, by IMAP IDLE (RFC 2177) on a connection of its own per watched folder.
 *
 * Why a second connection: the session's connection keeps nothing selected between operations (a folder
 * stays open only for one request, messages.ts), and IDLE needs the folder selected and the connection free;
 * interleaving IDLE with requests on one connection would delay every request by a DONE and cost a SELECT
 * per request. The watch connection EXAMINEs its folder (read-only: it changes nothing) and IDLEs at once
 * (imapflow's autoIdleDelay 0, restarted every 4 minutes), so a held session costs no polling: the server
 * says `* n EXISTS` when mail arrives, which the watcher answers with one UID FETCH of what is new
 * (message.new with its summary); `* n EXPUNGE` (or VANISHED) becomes message.deleted for the TRACKED newest messages (an
 * id needs the message's check, which is fetched for those only), after one UID SEARCH ALL tells which went. A server without IDLE is polled by imapflow
 * (NOOP every maxIdleTime).
 *
 * Each (re)start of a folder's watch compares the folder with what it saw: another UIDVALIDITY reports
 * mailbox.reset (every old id is void) and starts afresh; else what arrived meanwhile is reported as new (at
 * most CATCH_UP_MAX), and tracked messages that are gone as deleted. A lost watch connection is opened again
 * by the watcher itself, after 1 s doubling up to 60 s (Dovecot closes it when its folder is deleted, GreenMail
 * now and then while another client appends): the session's own connection, and the requests on it, are not
 * disturbed. When the server is down for good, the session's keepalive notices, and its reconnect calls start().
 */
export class ImapWatcher implements MailWatcher {
  readonly #ctx: ImapWatcherContext;
  readonly #states = new Map<string, FolderState>();
  #watches: Watch[] = [];
  #listener: WatchListener | undefined;
  #generation = 0;

  constructor(ctx: ImapWatcherContext) {
    this.#ctx = ctx;
  }

  async start(folders: readonly string[], listener: WatchListener): Promise<void> {
    this.stop();
    const generation = ++this.#generation;
    this.#listener = listener;
    for (const path of new Set(folders)) await this.#watchFolder(path, generation);
  }

  /** Opens a watch connection on `path` and starts watching; false when the folder cannot be opened. */
  async #watchFolder(path: string, generation: number): Promise<boolean> {
    let watch: Watch | undefined;
    const client = await this.#ctx.connect(() => {
      // a connection of a stopped (or older) watch is no loss
      if (generation !== this.#generation || !watch || !this.#watches.includes(watch)) return;
      this.#watches = this.#watches.filter((w) => w !== watch);
      this.#ctx.logger.warn('IMAP: the watch connection was lost; opening it again');
      this.#restart(path, generation, 0);
    });
    if (generation !== this.#generation) {
      client.close();
      return false;
    }
    try {
      watch = await this.#open(client, path);
    } catch (err) {
      client.close();
      throw err;
    }
    if (!watch) {
      client.close();
      return false;
    }
    this.#watches.push(watch);
    return true;
  }

  /** Opens the watch of `path` again after a backoff; a folder that stays missing is given up after RESTART_ATTEMPTS. */
  #restart(path: string, generation: number, attempt: number): void {
    if (attempt >= RESTART_ATTEMPTS) {
      this.#ctx.logger.warn({ attempts: attempt }, 'IMAP: a watched folder could not be opened again; it is no longer watched (until the session reconnects)');
      return;
    }
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** attempt);
    setTimeout(() => {
      if (generation !== this.#generation) return;
      this.#watchFolder(path, generation).then(
        (watching) => {
          if (!watching) this.#restart(path, generation, attempt + 1);
        },
        (err: unknown) => {
          this.#ctx.logger.warn({ code: isAppError(err) ? err.code : 'INTERNAL_ERROR', attempt: attempt + 1 }, 'IMAP: opening the watch connection again failed');
          this.#restart(path, generation, attempt + 1);
        },
      );
    }, delay).unref();
  }

  /**
   * Checks that each watched folder is still the one its watch has selected: `uidValidityOf` asks the session's
   * own connection (STATUS, with nothing selected there), run with the session's keepalive. Neither the watch
   * connection nor its IDLE can tell: Dovecot does not always end the IDLE of a folder deleted under it (an
   * untagged NO, which imapflow does not surface), and answers STATUS of the selected folder from the selected
   * (old) view. A folder that is gone or has another UIDVALIDITY has its watch opened again (which reports
   * mailbox.reset once it exists again).
   */
  async verify(uidValidityOf: (path: string) => Promise<bigint | undefined>): Promise<void> {
    for (const watch of [...this.#watches]) {
      const current = await uidValidityOf(watch.path);
      if (current !== watch.state.uidValidity && this.#watches.includes(watch)) {
        this.#ctx.logger.info('IMAP: a watched folder was deleted or re-created; watching it afresh');
        watch.client.close();
      }
    }
  }

  stop(): void {
    this.#generation += 1;
    this.#listener = undefined;
    const watches = this.#watches;
    this.#watches = [];
    for (const w of watches) {
      w.client.removeAllListeners('exists');
      w.client.removeAllListeners('expunge');
      void withDeadline(w.client.logout(), this.#ctx.commandMs, 'IMAP LOGOUT', () => w.client.close()).catch(() => w.client.close());
    }
  }

  /** EXAMINE the folder, take or compare its baseline, and listen; undefined when the folder cannot be opened. */
  async #open(client: ImapFlow, path: string): Promise<Watch | undefined> {
    let mailbox;
    try {
      mailbox = await this.#cmd(client, 'EXAMINE', () => client.mailboxOpen(path, { readOnly: true }));
    } catch (err) {
      if (isAppError(err) && err.code === 'FOLDER_NOT_FOUND') {
        this.#ctx.logger.warn({ code: err.code }, 'IMAP: a watched folder cannot be opened; it is not watched');
        return undefined;
      }
      throw err;
    }
    const uids = (await this.#cmd(client, 'SEARCH', () => client.search({ all: true }, { uid: true }))) || [];
    uids.sort((a, b) => a - b);
    let state = this.#states.get(mailbox.path);
    if (state && state.uidValidity !== mailbox.uidValidity) {
      this.#listener?.reset(mailbox.path);
      state = undefined;
    }
    const watch: Watch = { path: mailbox.path, client, uids, state: state ?? { uidValidity: mailbox.uidValidity, lastUid: 0, ids: new Map() }, chain: Promise.resolve(), resyncing: false };
    this.#states.set(mailbox.path, watch.state);
    if (state) {
      const present = new Set(uids);
      for (const [uid, id] of state.ids) {
        if (present.has(uid)) continue;
        state.ids.delete(uid);
        this.#listener?.deleted(id, mailbox.path);
      }
      const missed = uids.filter((u) => u > state!.lastUid).slice(-CATCH_UP_MAX);
      if (missed.length) await this.#report(watch, missed);
    } else {
      const newest = uids.slice(-TRACKED);
      const rows = newest.length ? await this.#cmd(client, 'FETCH', () => client.fetchAll(newest, MARKS_QUERY, { uid: true })) : [];
      for (const row of rows.sort((a, b) => a.uid - b.uid)) watch.state.ids.set(row.uid, idOf(mailbox, row));
    }
    watch.state.lastUid = Math.max(watch.state.lastUid, uids[uids.length - 1] ?? 0, Number(mailbox.uidNext) - 1);
    client.on('exists', () => {
      watch.chain = watch.chain.then(() => this.#fetchNew(watch)).catch((err: unknown) => this.#failed(watch, err));
    });
    client.on('expunge', (event: { seq?: number; uid?: number; vanished?: boolean }) => this.#expunged(watch, event));
    return watch;
  }

  /** What arrived after lastUid: one UID FETCH, each a message.new. */
  async #fetchNew(watch: Watch): Promise<void> {
    if (!this.#watches.includes(watch)) return;
    const rows = await this.#cmd(watch.client, 'FETCH', () => watch.client.fetchAll(`${watch.state.lastUid + 1}:*`, { uid: true }, { uid: true }));
    // "n:*" names the highest UID even when it is below n (RFC 9051 6.4.8)
    const fresh = rows.map((r) => r.uid).filter((u) => u > watch.state.lastUid).sort((a, b) => a - b);
    if (fresh.length) await this.#report(watch, fresh);
  }

  /** Summaries of `uids` (ascending, all newer than lastUid), reported as message.new and tracked. */
  async #report(watch: Watch, uids: number[]): Promise<void> {
    const mailbox = watch.client.mailbox;
    if (!mailbox) return;
    const rows = await this.#cmd(watch.client, 'FETCH', () => watch.client.fetchAll(uids, SUMMARY_QUERY, { uid: true }));
    const known = new Set(watch.uids);
    for (const row of rows.sort((a, b) => a.uid - b.uid)) {
      if (row.uid <= watch.state.lastUid) continue;
      watch.state.lastUid = row.uid;
      if (!known.has(row.uid)) watch.uids.push(row.uid);
      const summary = summaryOf(mailbox, row, readStructure(row.bodyStructure));
      watch.state.ids.set(row.uid, summary.id);
      if (watch.state.ids.size > TRACKED) watch.state.ids.delete(watch.state.ids.keys().next().value!);
      this.#listener?.newMessage(summary);
    }
  }

  /**
   * An expunge: with QRESYNC's VANISHED the UID is told; a sequence number is only trusted as a cue, and the
   * folder's UIDs are read again (one UID SEARCH ALL per burst of expunges): GreenMail repeats EXPUNGE lines, and
   * a sequence number counted wrong once would name the wrong message for every later one.
   */
  #expunged(watch: Watch, event: { seq?: number; uid?: number; vanished?: boolean }): void {
    if (event.vanished && typeof event.uid === 'number') {
      this.#gone(watch, [event.uid]);
      return;
    }
    if (watch.resyncing) return;
    watch.resyncing = true;
    watch.chain = watch.chain
      .then(async () => {
        watch.resyncing = false;
        if (!this.#watches.includes(watch)) return;
        const now = new Set((await this.#cmd(watch.client, 'SEARCH', () => watch.client.search({ all: true }, { uid: true }))) || []);
        // what is new is left to #fetchNew (its EXISTS comes too)
        this.#gone(watch, watch.uids.filter((u) => !now.has(u)));
      })
      .catch((err: unknown) => this.#failed(watch, err));
  }

  /** Drops `uids` from the folder's list and reports the tracked ones as message.deleted. */
  #gone(watch: Watch, uids: number[]): void {
    if (!uids.length) return;
    const gone = new Set(uids);
    watch.uids = watch.uids.filter((u) => !gone.has(u));
    for (const uid of uids) {
      const id = watch.state.ids.get(uid);
      if (id === undefined) continue;
      watch.state.ids.delete(uid);
      this.#listener?.deleted(id, watch.path);
    }
  }

  /** A fetch that failed: the connection is the session's to recover (a command timeout closed it). */
  #failed(watch: Watch, err: unknown): void {
    if (!this.#watches.includes(watch)) return;
    this.#ctx.logger.warn({ code: isAppError(err) ? err.code : 'INTERNAL_ERROR' }, 'IMAP: reading new mail of a watched folder failed');
    watch.client.close();
  }

  async #cmd<T>(client: ImapFlow, what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(fn(), this.#ctx.commandMs, `IMAP ${this.#ctx.host}:${this.#ctx.port} ${what} (watch)`, () => client.close());
    } catch (err) {
      if (isAppError(err)) throw err;
      const e = err as { mailboxMissing?: unknown; responseStatus?: unknown };
      if (what === 'EXAMINE' && (e.mailboxMissing === true || e.responseStatus === 'NO')) throw new AppError('FOLDER_NOT_FOUND', 'the watched folder cannot be opened');
      throw this.#ctx.toError(err);
    }
  }
}
