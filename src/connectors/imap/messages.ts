import type { FetchMessageObject, FetchQueryObject, ImapFlow, MailboxObject, MessageAddressObject, SearchObject } from 'imapflow';
import type { Download, Folder, ListQuery, MailAddress, MessageDetail, MessagePage, MessageReader, MessageSummary, SpecialUse } from '../../domain/mail.js';
import { AppError, isAppError } from '../../errors.js';
import { isoDate } from '../../mime/headers.js';
import { HEADER_MAX_BYTES } from '../../mime/limits.js';
import { withDeadline } from '../deadline.js';
import { decodeCursor, decodeMessageId, encodeCursor, encodeMessageId, messageCheck, pathHash, type MessageRef } from './ids.js';
import { dateWindows, isUnfiltered, matchesNothing, searchQuery } from './search.js';
import { contentByParts, contentOfWhole, DOWNLOAD_CHUNK, notFound, previews, type Run } from './content.js';
import { attachmentInfo, readStructure, type MessageStructure } from './structure.js';

/** What the reader needs of its connector: the live client, the limits, and the error translation. */
export interface ImapReaderContext {
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
interface OpenFolder {
  client: ImapFlow;
  mailbox: MailboxObject;
  release: () => Promise<void>;
}

const SPECIAL_USE: Readonly<Record<string, SpecialUse>> = {
  '\\Inbox': 'inbox', '\\Sent': 'sent', '\\Drafts': 'drafts', '\\Trash': 'trash', '\\Junk': 'junk', '\\Archive': 'archive', '\\All': 'all', '\\Flagged': 'flagged',
};

const SUMMARY_QUERY: FetchQueryObject = { uid: true, flags: true, envelope: true, internalDate: true, size: true, bodyStructure: true };

/** What a read fetches to check that an id's UID still names its message (ids.ts). */
const MARKS_QUERY: FetchQueryObject = { uid: true, envelope: true, internalDate: true, size: true };

const marks = (row: FetchMessageObject) => ({ messageId: row.envelope?.messageId, internalDate: row.internalDate, size: row.size });

function address(a: MessageAddressObject | undefined): MailAddress | null {
  return a ? { name: a.name || null, address: a.address || null } : null;
}

function addresses(list: MessageAddressObject[] | undefined): MailAddress[] {
  return (list ?? []).map((a) => address(a)!);
}

/**
 * Reading through the session's one IMAP connection (imapflow). Every operation opens its folder afresh
 * (EXAMINE, read-only, so nothing it does can set \Seen; SELECT only for markAsRead), which also gives the
 * folder's current UIDVALIDITY to check ids and cursors against, and closes it when done (#deselect).
 * Commands are bounded by the command timeout; one that times out closes the connection, and the session
 * reconnects.
 *
 * Order is arrival order: UIDs grow as messages arrive (RFC 9051 2.3.1.1), so "newest" is the highest UID.
 * A page is chosen by UID SEARCH (or, without filters, by sequence numbers, so the first page costs the same
 * in a folder of 10 or 100,000 messages); only the page's messages are fetched (ENVELOPE, FLAGS,
 * INTERNALDATE, RFC822.SIZE, BODYSTRUCTURE). The cursor is the last UID shown plus UIDVALIDITY: mail arriving
 * meanwhile has higher UIDs and neither shifts nor repeats a page.
 */
export class ImapReader implements MessageReader {
  readonly #ctx: ImapReaderContext;

  constructor(ctx: ImapReaderContext) {
    this.#ctx = ctx;
  }

  async folders(): Promise<Folder[]> {
    // not listOnly: imapflow assigns special-use (the server's SPECIAL-USE flags, else well-known names) after LSUB
    const entries = await this.#cmd('LIST', (c) => c.list());
    return entries
      .filter((e) => ![...e.flags].some((f) => /^\\(noselect|nonexistent)$/i.test(f)))
      .map((e) => ({ path: e.path, name: e.name, delimiter: e.delimiter || null, specialUse: (e.specialUse && SPECIAL_USE[e.specialUse]) || null }))
      .sort((a, b) => (a.path === 'INBOX' ? -1 : b.path === 'INBOX' ? 1 : a.path.localeCompare(b.path)));
  }

  async list(q: ListQuery): Promise<MessagePage> {
    const folder = await this.#open(q.folder, true);
    try {
      const { client, mailbox } = folder;
      const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
      if (q.cursor !== undefined) {
        if (!cursor || cursor.path !== mailbox.path || cursor.order !== q.order) {
          throw new AppError('VALIDATION_ERROR', 'cursor is not a nextCursor of this folder and order: start again without cursor');
        }
        if (cursor.uidValidity !== mailbox.uidValidity) {
          throw new AppError('VALIDATION_ERROR', 'the folder was re-created since this cursor was made (its UIDVALIDITY changed): start again without cursor');
        }
      }
      const newest = q.order === 'newest';
      let page: number[];
      let hasMore: boolean;
      let rows: FetchMessageObject[];
      if (matchesNothing(q) || (newest && cursor?.uid === 1)) {
        return { messages: [], nextCursor: null };
      } else if (!cursor && isUnfiltered(q)) {
        // the first page without filters needs no SEARCH: sequence numbers follow UID order
        const exists = mailbox.exists;
        if (exists === 0) return { messages: [], nextCursor: null };
        const from = newest ? Math.max(1, exists - q.limit + 1) : 1;
        const to = newest ? exists : Math.min(exists, q.limit);
        hasMore = newest ? from > 1 : exists > to;
        rows = await this.#cmd('FETCH', () => client.fetchAll(`${from}:${to}`, SUMMARY_QUERY));
        page = rows.map((r) => r.uid).sort((a, b) => (newest ? b - a : a - b));
      } else {
        const range = cursor ? (newest ? `1:${cursor.uid - 1}` : `${cursor.uid + 1}:*`) : undefined;
        let uids = await this.#search(client, searchQuery(q, range));
        // "n:*" also matches the highest UID when it is below n (RFC 3501 6.4.8): keep only what is past the cursor
        if (cursor) uids = uids.filter((u) => (newest ? u < cursor.uid : u > cursor.uid));
        uids = await this.#exactDates(client, q, uids, range);
        uids.sort((a, b) => (newest ? b - a : a - b));
        page = uids.slice(0, q.limit);
        hasMore = uids.length > q.limit;
        rows = page.length ? await this.#cmd('FETCH', () => client.fetchAll(page, SUMMARY_QUERY, { uid: true })) : [];
      }
      const byUid = new Map(rows.map((r) => [r.uid, r]));
      const structures = new Map(rows.map((r) => [r.uid, readStructure(r.bodyStructure)]));
      const texts = q.includeText ? await previews(this.#run, client, structures) : undefined;
      const messages = page.flatMap((uid) => {
        const row = byUid.get(uid);
        if (!row) return []; // expunged since the search
        const summary = this.#summary(mailbox, row, structures.get(uid)!);
        return [texts ? { ...summary, text: texts.get(uid) ?? null } : summary];
      });
      const last = page[page.length - 1];
      return {
        messages,
        nextCursor: hasMore && last !== undefined ? encodeCursor({ path: mailbox.path, uidValidity: mailbox.uidValidity, uid: last, order: q.order }) : null,
      };
    } finally {
      await folder.release();
    }
  }

  async get(id: string, options: { markAsRead: boolean }): Promise<MessageDetail> {
    const { folder, ref } = await this.#openMessage(id, !options.markAsRead);
    try {
      const { client, mailbox } = folder;
      const headerMax = Math.min(HEADER_MAX_BYTES, this.#ctx.parseMaxBytes);
      const row = await this.#cmd('FETCH', () =>
        client.fetchOne(String(ref.uid), { ...SUMMARY_QUERY, bodyParts: [{ key: 'header', start: 0, maxLength: headerMax }] }, { uid: true }),
      );
      if (!row || messageCheck(marks(row)) !== ref.check) throw notFound();
      const run = this.#run;
      const content = row.bodyStructure
        ? await contentByParts(run, client, row, headerMax, this.#ctx.parseMaxBytes)
        : await contentOfWhole(run, client, row, this.#ctx.parseMaxBytes);
      let seen = row.flags?.has('\\Seen') ?? false;
      if (options.markAsRead && !seen) {
        await this.#cmd('STORE', () => client.messageFlagsAdd(String(ref.uid), ['\\Seen'], { uid: true }));
        seen = true;
      }
      const summary = this.#summary(mailbox, row, readStructure(row.bodyStructure));
      return { ...summary, ...content, seen, hasAttachments: content.attachments.some((a) => !a.inline) };
    } finally {
      await folder.release();
    }
  }

  async raw(id: string): Promise<Download> {
    const { folder, ref } = await this.#openMessage(id, true);
    return this.#download(folder, async (client) => {
      const row = await this.#cmd('FETCH', () => client.fetchOne(String(ref.uid), MARKS_QUERY, { uid: true }));
      if (!row || messageCheck(marks(row)) !== ref.check) throw notFound();
      const result = await this.#cmd('FETCH', () => client.download(String(ref.uid), undefined, { uid: true, chunkSize: DOWNLOAD_CHUNK }));
      if (!('content' in result) || !result.content) throw notFound();
      // RFC822.SIZE is the server's count: not sent as Content-Length, so that a server that miscounts cannot break the response
      return { contentType: 'message/rfc822', filename: null, size: null, stream: result.content };
    });
  }

  async attachment(id: string, attachmentId: string): Promise<Download> {
    const { folder, ref } = await this.#openMessage(id, true);
    return this.#download(folder, async (client) => {
      const row = await this.#cmd('FETCH', () => client.fetchOne(String(ref.uid), { ...MARKS_QUERY, bodyStructure: true }, { uid: true }));
      if (!row || messageCheck(marks(row)) !== ref.check) throw notFound();
      // without a readable BODYSTRUCTURE (see #whole) the id is a section number the server can still answer
      const part = row.bodyStructure
        ? readStructure(row.bodyStructure).attachments.find((a) => a.id === attachmentId)
        : /^[1-9][0-9]{0,4}(\.[1-9][0-9]{0,4}){0,20}$/.test(attachmentId)
          ? { id: attachmentId, downloadType: undefined, filename: undefined }
          : undefined;
      if (!part) throw new AppError('ATTACHMENT_NOT_FOUND', `the message has no attachment "${attachmentId}"`);
      // decodeText: false gives the file's own bytes (a text attachment keeps its charset), only the transfer encoding removed
      const result = await this.#cmd('FETCH', () => client.download(String(ref.uid), part.id, { uid: true, decodeText: false, chunkSize: DOWNLOAD_CHUNK }));
      if (!('content' in result) || !result.content) throw new AppError('ATTACHMENT_NOT_FOUND', `the message has no attachment "${attachmentId}"`);
      const type = part.downloadType ?? (result.meta.contentType && /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(result.meta.contentType) ? result.meta.contentType : 'application/octet-stream');
      return { contentType: type, filename: part.filename ?? (result.meta.filename || null), size: null, stream: result.content };
    });
  }

  /** #cmd for the content module. */
  readonly #run: Run = (what, fn) => this.#cmd(what, fn);

  /** Runs one imapflow call with the command deadline; a timeout closes the connection (the session reconnects). */
  async #cmd<T>(what: string, fn: (client: ImapFlow) => Promise<T>): Promise<T> {
    const client = this.#ctx.client();
    try {
      return await withDeadline(fn(client), this.#ctx.commandMs, `IMAP ${this.#ctx.host}:${this.#ctx.port} ${what}`, () => client.close());
    } catch (err) {
      throw isAppError(err) ? err : this.#ctx.toError(err);
    }
  }

  /** EXAMINE (readOnly) or SELECT `path` and take imapflow's mailbox lock on it; FOLDER_NOT_FOUND when it cannot be opened. */
  async #open(path: string, readOnly: boolean): Promise<OpenFolder> {
    const client = this.#ctx.client();
    let mailbox: MailboxObject;
    try {
      const what = `IMAP ${this.#ctx.host}:${this.#ctx.port} ${readOnly ? 'EXAMINE' : 'SELECT'}`;
      mailbox = await withDeadline(client.mailboxOpen(path, { readOnly }), this.#ctx.commandMs, what, () => client.close());
    } catch (err) {
      if (isAppError(err)) throw err;
      // imapflow marks a folder that LIST does not know; any other NO (\Noselect, no rights) cannot be opened either
      const e = err as { mailboxMissing?: unknown; responseStatus?: unknown };
      if (e.mailboxMissing === true || e.responseStatus === 'NO') throw new AppError('FOLDER_NOT_FOUND', `no folder "${path.slice(0, 200)}" that can be opened`);
      throw this.#ctx.toError(err);
    }
    // the session runs one operation at a time, so the lock is granted at once; it guards imapflow's own
    // bookkeeping, and a wait for it is bounded all the same
    const lock = await this.#cmd('lock', (c) => c.getMailboxLock(mailbox.path, { readOnly, acquireTimeout: this.#ctx.commandMs }));
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
   * removes nothing from a folder opened read-only (RFC 9051 6.4.1); one opened for markAsRead is first opened
   * read-only again, so that CLOSE cannot expunge messages another client flagged \Deleted. Failures are left
   * to the next command (the connection is then gone, and the session reconnects).
   */
  async #deselect(client: ImapFlow, path: string, readOnly: boolean): Promise<void> {
    try {
      if (!readOnly) await this.#cmd('EXAMINE', () => client.mailboxOpen(path, { readOnly: true }));
      await this.#cmd('CLOSE', () => client.mailboxClose());
    } catch {
      // nothing to do: see above
    }
  }

  /** Opens the folder of message `id` and checks that the id still names a message of it (same UIDVALIDITY). */
  async #openMessage(id: string, readOnly: boolean): Promise<{ folder: OpenFolder; ref: MessageRef }> {
    const ref = decodeMessageId(id);
    if (!ref) throw notFound();
    const path = ref.path ?? (await this.#pathOf(ref.pathHash!));
    let folder: OpenFolder;
    try {
      folder = await this.#open(path, readOnly);
    } catch (err) {
      throw isAppError(err) && err.code === 'FOLDER_NOT_FOUND' ? notFound() : err;
    }
    if (folder.mailbox.uidValidity !== ref.uidValidity) {
      await folder.release();
      throw notFound();
    }
    return { folder, ref };
  }

  /** The folder whose path hashes to `hash` (ids of folders with very long paths carry the hash). */
  async #pathOf(hash: string): Promise<string> {
    const entries = await this.#cmd('LIST', (c) => c.list({ listOnly: true }));
    const match = entries.find((e) => pathHash(e.path) === hash);
    if (!match) throw notFound();
    return match.path;
  }

  /** Hands out a download whose stream keeps the folder's lock until it closes; releases it if none is made. */
  async #download(folder: OpenFolder, make: (client: ImapFlow) => Promise<Download>): Promise<Download> {
    let download: Download;
    try {
      download = await make(folder.client);
    } catch (err) {
      await folder.release();
      throw err;
    }
    download.stream.once('close', () => void folder.release());
    return download;
  }

  async #search(client: ImapFlow, query: SearchObject): Promise<number[]> {
    const result = await this.#cmd('SEARCH', () => client.search(query, { uid: true }));
    if (!Array.isArray(result)) throw new AppError('MAIL_PROTOCOL_ERROR', `IMAP ${this.#ctx.host}:${this.#ctx.port}: the server refused the search`);
    return result;
  }

  /**
   * Drops from `uids` the messages outside the exact since/before instants: only those in the boundary days
   * (dateWindows) have their INTERNALDATE fetched and compared.
   */
  async #exactDates(client: ImapFlow, q: ListQuery, uids: number[], range: string | undefined): Promise<number[]> {
    const windows = dateWindows(q);
    if (!windows.length || !uids.length) return uids;
    const candidates = new Set(uids);
    const drop = new Set<number>();
    for (const w of windows) {
      const inWindow = (await this.#search(client, range ? { ...w.search, uid: range } : w.search)).filter((u) => candidates.has(u));
      if (!inWindow.length) continue;
      const rows = await this.#cmd('FETCH', () => client.fetchAll(inWindow, { uid: true, internalDate: true }, { uid: true }));
      for (const row of rows) {
        const at = row.internalDate instanceof Date ? row.internalDate : new Date(String(row.internalDate));
        if (Number.isNaN(at.getTime()) || !w.keep(at)) drop.add(row.uid);
      }
    }
    return drop.size ? uids.filter((u) => !drop.has(u)) : uids;
  }

  #summary(mailbox: MailboxObject, row: FetchMessageObject, structure: MessageStructure): MessageSummary {
    const env = row.envelope;
    const attachments = structure.attachments.map(attachmentInfo);
    return {
      id: encodeMessageId(mailbox.path, mailbox.uidValidity, row.uid, messageCheck(marks(row))),
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
}
