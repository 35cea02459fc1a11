import type { FetchMessageObject, ImapFlow } from 'imapflow';
import type { Download, Folder, ListQuery, MessageDetail, MessagePage, MessageReader, SpecialUse } from '../../domain/mail.js';
import { AppError } from '../../errors.js';
import { HEADER_MAX_BYTES } from '../../mime/limits.js';
import { decodeCursor, encodeCursor, messageCheck } from './ids.js';
import { isUnfiltered, matchesNothing, searchQuery } from './search.js';
import { contentByParts, contentOfWhole, DOWNLOAD_CHUNK, notFound, previews, type Run } from './content.js';
import { readStructure } from './structure.js';
import { ImapAccess, MARKS_QUERY, SUMMARY_QUERY, marks, summaryOf, type ImapAccessContext, type OpenFolder } from './access.js';

/** What the reader needs of its connector (access.ts). */
export type ImapReaderContext = ImapAccessContext;

const SPECIAL_USE: Readonly<Record<string, SpecialUse>> = {
  '\\Inbox': 'inbox', '\\Sent': 'sent', '\\Drafts': 'drafts', '\\Trash': 'trash', '\\Junk': 'junk', '\\Archive': 'archive', '\\All': 'all', '\\Flagged': 'flagged',
};

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
  readonly #access: ImapAccess;

  constructor(access: ImapAccess) {
    this.#access = access;
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
    const folder = await this.#access.open(q.folder, true);
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
        let uids = await this.#access.search(client, searchQuery(q, range));
        // "n:*" also matches the highest UID when it is below n (RFC 3501 6.4.8): keep only what is past the cursor
        if (cursor) uids = uids.filter((u) => (newest ? u < cursor.uid : u > cursor.uid));
        uids = await this.#access.exactDates(client, q, uids, range);
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
        const summary = summaryOf(mailbox, row, structures.get(uid)!);
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
    const { folder, ref } = await this.#access.openMessage(id, !options.markAsRead);
    try {
      const { client, mailbox } = folder;
      const headerMax = Math.min(HEADER_MAX_BYTES, this.#access.ctx.parseMaxBytes);
      const row = await this.#cmd('FETCH', () =>
        client.fetchOne(String(ref.uid), { ...SUMMARY_QUERY, bodyParts: [{ key: 'header', start: 0, maxLength: headerMax }] }, { uid: true }),
      );
      if (!row || messageCheck(marks(row)) !== ref.check) throw notFound();
      const run = this.#run;
      const content = row.bodyStructure
        ? await contentByParts(run, client, row, headerMax, this.#access.ctx.parseMaxBytes)
        : await contentOfWhole(run, client, row, this.#access.ctx.parseMaxBytes);
      let seen = row.flags?.has('\\Seen') ?? false;
      if (options.markAsRead && !seen) {
        await this.#cmd('STORE', () => client.messageFlagsAdd(String(ref.uid), ['\\Seen'], { uid: true }));
        seen = true;
      }
      const summary = summaryOf(mailbox, row, readStructure(row.bodyStructure));
      return { ...summary, ...content, seen, hasAttachments: content.attachments.some((a) => !a.inline) };
    } finally {
      await folder.release();
    }
  }

  async raw(id: string): Promise<Download> {
    const { folder, ref } = await this.#access.openMessage(id, true);
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
    const { folder, ref } = await this.#access.openMessage(id, true);
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

  /** Runs one imapflow call with the command deadline (access.ts). */
  #cmd<T>(what: string, fn: (client: ImapFlow) => Promise<T>): Promise<T> {
    return this.#access.cmd(what, fn);
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
}
