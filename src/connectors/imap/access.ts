import type { FetchMessageObject, FetchQueryObject, ImapFlow, MailboxObject, MessageAddressObject, SearchObject } from 'imapflow';
import type { MailAddress, MessageFilter, MessageSummary } from '../../domain/mail.js';
import { AppError, isAppError } from '../../errors.js';
import { isoDate } from '../../mime/headers.js';
import { withDeadline } from '../deadline.js';
import { notFound } from './content.js';
import { decodeMessageId, encodeMessageId, messageCheck, pathHash, type MessageRef } from './ids.js';
import { dateWindows, searchQuery } from './search.js';
import { attachmentInfo, type MessageStructure } from './structure.js';

/** What reading and changing need of their connector: the live client, the limits, and the error translation. */
export interface ImapAccessContext {
  /** The connected client; throws a connection-level AppError when there is none. */
  client(): ImapFlow;
  host: string;
  port: number;
  commandMs: number;
  parseMaxBytes: number;
  /** toImapError with the connection's context (secrets scrubbed). */
  toError(err: unknown): AppError;
}

/** An opened folder, with the imapflow lock; `release` (always: in finally, or when a download closes) also deselects it. */
export interface OpenFolder {
  client: ImapFlow;
  mailbox: MailboxObject;
  release: () => Promise<void>;
}

export const SUMMARY_QUERY: FetchQueryObject = { uid: true, flags: true, envelope: true, internalDate: true, size: true, bodyStructure: true };

/** What an operation fetches to check that an id's UID still names its message (ids.ts). */
export const MARKS_QUERY: FetchQueryObject = { uid: true, envelope: true, internalDate: true, size: true };

export const marks = (row: FetchMessageObject) => ({ messageId: row.envelope?.messageId, internalDate: row.internalDate, size: row.size });

/** The id of a fetched row (fetched with at least MARKS_QUERY). */
export const idOf = (mailbox: { path: string; uidValidity: bigint }, row: FetchMessageObject) => encodeMessageId(mailbox.path, mailbox.uidValidity, row.uid, messageCheck(marks(row)));

function address(a: MessageAddressObject | undefined): MailAddress | null {
  return a ? { name: a.name || null, address: a.address || null } : null;
}

function addresses(list: MessageAddressObject[] | undefined): MailAddress[] {
  return (list ?? []).map((a) => address(a)!);
}

/** A row fetched with SUMMARY_QUERY as the service's MessageSummary. */
export function summaryOf(mailbox: { path: string; uidValidity: bigint }, row: FetchMessageObject, structure: MessageStructure): MessageSummary {
  const env = row.envelope;
  const attachments = structure.attachments.map(attachmentInfo);
  return {
    id: idOf(mailbox, row),
    folder: mailbox.path,
    messageId: env?.messageId || null,
    subject: env?.subject ?? null,
    from: address(env?.from?.[0]),
    to: addresses(env?.to),
    cc: addresses(env?.cc),
    date: isoDate(env?.date),
    receivedAt: isoDate(row.internalDate),
    size: row.size ?? null,
    seen: row.flags?.has('\\Seen') ?? false,
    flagged: row.flags?.has('\\Flagged') ?? false,
    answered: row.flags?.has('\\Answered') ?? false,
    hasAttachments: attachments.some((a) => !a.inline),
    attachments,
  };
}

/**
 * The commands reading (messages.ts) and changing (changes.ts) share on the session's one connection: each
 * imapflow call under the command deadline, folders opened and closed again (nothing stays selected between
 * operations), ids resolved and checked, and the loop's filters searched.
 */
export class ImapAccess {
  readonly ctx: ImapAccessContext;

  constructor(ctx: ImapAccessContext) {
    this.ctx = ctx;
  }

  /** Runs one imapflow call with the command deadline; a timeout closes the connection (the session reconnects). */
  async cmd<T>(what: string, fn: (client: ImapFlow) => Promise<T>): Promise<T> {
    const client = this.ctx.client();
    try {
      return await withDeadline(fn(client), this.ctx.commandMs, `IMAP ${this.ctx.host}:${this.ctx.port} ${what}`, () => client.close());
    } catch (err) {
      throw isAppError(err) ? err : this.ctx.toError(err);
    }
  }

  /** EXAMINE (readOnly) or SELECT `path` and take imapflow's mailbox lock on it; FOLDER_NOT_FOUND when it cannot be opened. */
  async open(path: string, readOnly: boolean): Promise<OpenFolder> {
    const client = this.ctx.client();
    let mailbox: MailboxObject;
    try {
      const what = `IMAP ${this.ctx.host}:${this.ctx.port} ${readOnly ? 'EXAMINE' : 'SELECT'}`;
      mailbox = await withDeadline(client.mailboxOpen(path, { readOnly }), this.ctx.commandMs, what, () => client.close());
    } catch (err) {
      if (isAppError(err)) throw err;
      // imapflow marks a folder that LIST does not know; any other NO (\Noselect, no rights) cannot be opened either
      const e = err as { mailboxMissing?: unknown; responseStatus?: unknown };
      if (e.mailboxMissing === true || e.responseStatus === 'NO') throw new AppError('FOLDER_NOT_FOUND', `no folder "${path.slice(0, 200)}" that can be opened`);
      throw this.ctx.toError(err);
    }
    // the session runs one operation at a time, so the lock is granted at once; it guards imapflow's own
    // bookkeeping, and a wait for it is bounded all the same
    const lock = await this.cmd('lock', (c) => c.getMailboxLock(mailbox.path, { readOnly, acquireTimeout: this.ctx.commandMs }));
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      lock.release();
      await this.#deselect(client, mailbox.path, readOnly);
    };
    return { client, mailbox, release };
  }

  /**
   * Leaves the connection with nothing selected between operations, as the session expects: the server then
   * keeps no folder open for an idle session (10,000 of them), sends it no updates, and a folder deleted by
   * another client meanwhile cannot break it (GreenMail drops a connection whose selected folder goes). CLOSE
   * removes nothing from a folder opened read-only (RFC 9051 6.4.1); one opened read-write is first opened
   * read-only again, so that CLOSE cannot expunge messages another client flagged \Deleted. Failures are left
   * to the next command (the connection is then gone, and the session reconnects).
   */
  async #deselect(client: ImapFlow, path: string, readOnly: boolean): Promise<void> {
    try {
      if (!readOnly) await this.cmd('EXAMINE', () => client.mailboxOpen(path, { readOnly: true }));
      await this.cmd('CLOSE', () => client.mailboxClose());
    } catch {
      // nothing to do: see above
    }
  }

  /** Opens the folder of message `id` and checks that the id still names a message of it (same UIDVALIDITY). */
  async openMessage(id: string, readOnly: boolean): Promise<{ folder: OpenFolder; ref: MessageRef }> {
    const ref = decodeMessageId(id);
    if (!ref) throw notFound();
    const path = ref.path ?? (await this.#pathOf(ref.pathHash!));
    let folder: OpenFolder;
    try {
      folder = await this.open(path, readOnly);
    } catch (err) {
      throw isAppError(err) && err.code === 'FOLDER_NOT_FOUND' ? notFound() : err;
    }
    if (folder.mailbox.uidValidity !== ref.uidValidity) {
      await folder.release();
      throw notFound();
    }
    return { folder, ref };
  }

  /**
   * Fetches `query` (at least MARKS_QUERY) of the message `ref` names in the open folder; MESSAGE_NOT_FOUND when
   * its UID is gone or names another message (the check differs): what every change does before acting.
   */
  async fetchChecked(folder: OpenFolder, ref: MessageRef, query: FetchQueryObject = MARKS_QUERY): Promise<FetchMessageObject> {
    const row = await this.cmd('FETCH', () => folder.client.fetchOne(String(ref.uid), { ...MARKS_QUERY, ...query }, { uid: true }));
    if (!row || row.uid !== ref.uid || messageCheck(marks(row)) !== ref.check) throw notFound();
    return row;
  }

  /** The folder whose path hashes to `hash` (ids of folders with very long paths carry the hash). */
  async #pathOf(hash: string): Promise<string> {
    const entries = await this.cmd('LIST', (c) => c.list({ listOnly: true }));
    const match = entries.find((e) => pathHash(e.path) === hash);
    if (!match) throw notFound();
    return match.path;
  }

  async search(client: ImapFlow, query: SearchObject): Promise<number[]> {
    const result = await this.cmd('SEARCH', () => client.search(query, { uid: true }));
    if (!Array.isArray(result)) throw new AppError('MAIL_PROTOCOL_ERROR', `IMAP ${this.ctx.host}:${this.ctx.port}: the server refused the search`);
    return result;
  }

  /** Every UID of the open folder that matches `filter` (exact instants for since/before), ascending. */
  async matching(client: ImapFlow, filter: MessageFilter): Promise<number[]> {
    const uids = await this.exactDates(client, filter, await this.search(client, searchQuery(filter)), undefined);
    return uids.sort((a, b) => a - b);
  }

  /**
   * Drops from `uids` the messages outside the exact since/before instants: only those in the boundary days
   * (dateWindows) have their INTERNALDATE fetched and compared.
   */
  async exactDates(client: ImapFlow, q: MessageFilter, uids: number[], range: string | undefined): Promise<number[]> {
    const windows = dateWindows(q);
    if (!windows.length || !uids.length) return uids;
    const candidates = new Set(uids);
    const drop = new Set<number>();
    for (const w of windows) {
      const inWindow = (await this.search(client, range ? { ...w.search, uid: range } : w.search)).filter((u) => candidates.has(u));
      if (!inWindow.length) continue;
      const rows = await this.cmd('FETCH', () => client.fetchAll(inWindow, { uid: true, internalDate: true }, { uid: true }));
      for (const row of rows) {
        const at = row.internalDate instanceof Date ? row.internalDate : new Date(String(row.internalDate));
        if (Number.isNaN(at.getTime()) || !w.keep(at)) drop.add(row.uid);
      }
    }
    return drop.size ? uids.filter((u) => !drop.has(u)) : uids;
  }
}
