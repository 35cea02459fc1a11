import type { Readable } from 'node:stream';
import type { Download, Folder, ListQuery, MessageDetail, MessageFilter, MessagePage, MessageReader, MessageSummary } from '../../domain/mail.js';
import { decodeId, encodeId } from '../../domain/mail.js';
import { AppError } from '../../errors.js';
import { extractAttachment } from '../../mime/extract.js';
import { firstField } from '../../mime/headers.js';
import { HEADER_MAX_BYTES, LIST_TEXT_MAX_BYTES } from '../../mime/limits.js';
import { parseMessage, type ParsedMessage } from '../../mime/parse.js';
import type { MaildropEntry, Pop3Link } from './link.js';

/**
 * Reading a POP3 maildrop (RFC 1939), each operation one login of its own (see connection.ts).
 *
 * POP3 has one folder (INBOX) and no flags: status filters and markAsRead answer OPERATION_NOT_SUPPORTED,
 * `seen`, `flagged` and `answered` are null. Ids are the UIDL (unique and stable per maildrop); message
 * numbers change between logins and are looked up afresh each time. Order is the maildrop's: "newest" is the
 * highest message number (the last delivered). The cursor is the last UIDL shown (with its number, used only
 * when that message was deleted meanwhile), so mail arriving during a loop neither shifts nor repeats a page.
 *
 * A summary is read with TOP n 0 (the header only): `attachments` is [] there (listing them needs the
 * message) and `hasAttachments` is read from the top-level Content-Type (multipart/mixed, or a single part that
 * is not text); GET /messages/{id} reads the message (RETR, at most MSB_PARSE_MAX_BYTES) and lists them.
 * `receivedAt` is the date of the topmost Received header, the best POP3 can tell; since/before filter on it
 * (on the Date header when there is none). Filters other than status are applied here to the headers, reading
 * at most SCAN_MAX headers per page: a page can then hold fewer than `limit` messages while nextCursor is
 * not null.
 */

/** Headers read (TOP n 0) at most to answer one filtered page. */
export const SCAN_MAX = 1000;
/** Body lines TOP reads for include=text (the byte bound is LIST_TEXT_MAX_BYTES). */
const PREVIEW_LINES = 2000;

export interface Pop3ReaderContext {
  /** One login, `fn`, QUIT. */
  use<T>(fn: (link: Pop3Link) => Promise<T>): Promise<T>;
  /** A login whose connection the caller ends (downloads). */
  open(): Promise<Pop3Link>;
  parseMaxBytes: number;
}

const INBOX: Folder = { path: 'INBOX', name: 'INBOX', delimiter: null, specialUse: 'inbox' };

export const notFound = () => new AppError('MESSAGE_NOT_FOUND', 'no message with this id in this maildrop (it was deleted)');
export const noFlags = (what: string) =>
  new AppError('OPERATION_NOT_SUPPORTED', `POP3 keeps no read status: ${what} is not supported on pop3 sessions`, { supportedBy: ['imap', 'ews', 'outlook'] });

export function encodeMessageId(uid: string): string {
  return encodeId(`1:${uid}`);
}

export function decodeMessageId(id: string): string | undefined {
  const text = decodeId(id);
  return text?.startsWith('1:') && text.length > 2 ? text.slice(2) : undefined;
}

interface Cursor {
  order: 'newest' | 'oldest';
  n: number;
  uid: string;
}

function encodeCursor(c: Cursor): string {
  return encodeId(`1:${c.order === 'newest' ? 'n' : 'o'}:${c.n}:${c.uid}`);
}

function decodeCursor(cursor: string): Cursor | undefined {
  const match = /^1:([no]):([0-9]{1,9}):(.+)$/s.exec(decodeId(cursor) ?? '');
  return match ? { order: match[1] === 'n' ? 'newest' : 'oldest', n: Number(match[2]), uid: match[3]! } : undefined;
}

/** Whether the headers say there are attachments, without the body: a guess POP3 cannot do better than. */
function attachmentsLikely(parsed: ParsedMessage): boolean {
  const type = (firstField(parsed.headers, 'content-type') ?? 'text/plain').toLowerCase();
  return type.startsWith('multipart/mixed') || !/^(text\/|multipart\/)/.test(type);
}

function contains(haystack: string | null | undefined, needles: string[]): boolean {
  const text = (haystack ?? '').toLowerCase();
  return needles.some((n) => text.includes(n.toLowerCase()));
}

/** The loop's filters (but status) on what the header tells. */
export function matches(filter: MessageFilter, parsed: ParsedMessage): boolean {
  if (filter.subject.length && !contains(parsed.subject, filter.subject)) return false;
  if (filter.from.length && !contains(parsed.from ? `${parsed.from.name ?? ''} <${parsed.from.address ?? ''}>` : null, filter.from)) return false;
  if (filter.since || filter.before) {
    const at = parsed.receivedAt ?? parsed.date;
    if (at === null) return false;
    const time = Date.parse(at);
    if (filter.since && time < filter.since.getTime()) return false;
    if (filter.before && time >= filter.before.getTime()) return false;
  }
  return true;
}

export function summaryOf(entry: MaildropEntry, size: number | undefined, parsed: ParsedMessage, withAttachments: boolean): MessageSummary {
  const attachments = withAttachments
    ? parsed.attachments.map((a) => ({ id: a.partId, filename: a.filename, contentType: a.contentType, size: a.size, inline: a.inline, contentId: a.contentId }))
    : [];
  return {
    id: encodeMessageId(entry.uid),
    folder: 'INBOX',
    messageId: parsed.messageId,
    subject: parsed.subject,
    from: parsed.from,
    to: parsed.to,
    cc: parsed.cc,
    date: parsed.date,
    receivedAt: parsed.receivedAt,
    size: size ?? null,
    seen: null,
    flagged: null,
    answered: null,
    hasAttachments: withAttachments ? attachments.some((a) => !a.inline) : attachmentsLikely(parsed),
    attachments,
  };
}

export class Pop3Reader implements MessageReader {
  readonly #ctx: Pop3ReaderContext;

  constructor(ctx: Pop3ReaderContext) {
    this.#ctx = ctx;
  }

  async folders(): Promise<Folder[]> {
    return [INBOX];
  }

  async list(q: ListQuery): Promise<MessagePage> {
    if (q.folder.toUpperCase() !== 'INBOX') throw new AppError('FOLDER_NOT_FOUND', 'POP3 has one folder: INBOX');
    if (q.status !== 'all') throw noFlags(`status=${q.status}`);
    const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    if (q.cursor !== undefined && (!cursor || cursor.order !== q.order)) {
      throw new AppError('VALIDATION_ERROR', 'cursor is not a nextCursor of this order: start again without cursor');
    }
    const filtered = q.subject.length > 0 || q.from.length > 0 || q.since !== undefined || q.before !== undefined;
    return this.#ctx.use(async (link) => {
      const entries = await link.uidl();
      if (q.order === 'newest') entries.reverse();
      const start = cursor ? startAfter(entries, cursor) : 0;
      const sizes = await link.sizes();
      const messages: MessageSummary[] = [];
      let scanned = 0;
      let last: MaildropEntry | undefined;
      let i = start;
      for (; i < entries.length && messages.length < q.limit && scanned < Math.max(SCAN_MAX, q.limit); i++) {
        const entry = entries[i]!;
        const top = await link.top(entry.n, q.includeText ? PREVIEW_LINES : 0, q.includeText ? LIST_TEXT_MAX_BYTES : HEADER_MAX_BYTES);
        const parsed = await parseMessage(top.bytes, { maxBytes: top.bytes.length + 1 });
        scanned += 1;
        last = entry;
        if (filtered && !matches(q, parsed)) continue;
        const summary = summaryOf(entry, sizes.get(entry.n), parsed, false);
        messages.push(q.includeText ? { ...summary, text: parsed.text } : summary);
      }
      const nextCursor = i < entries.length && last ? encodeCursor({ order: q.order, n: last.n, uid: last.uid }) : null;
      return { messages, nextCursor };
    });
  }

  async get(id: string, options: { markAsRead: boolean }): Promise<MessageDetail> {
    if (options.markAsRead) throw noFlags('markAsRead');
    const uid = decodeMessageId(id);
    if (uid === undefined) throw notFound();
    return this.#ctx.use(async (link) => {
      const entry = await find(link, uid);
      const sizes = await link.sizes();
      // a message longer than the limit is cut there: parseMessage destroys the stream, #use then drops the connection
      const parsed = await parseMessage(await link.retr(entry.n), { maxBytes: this.#ctx.parseMaxBytes });
      return {
        ...summaryOf(entry, sizes.get(entry.n), parsed, true),
        text: parsed.text,
        html: parsed.html,
        headers: parsed.headers,
        inReplyTo: parsed.inReplyTo,
        references: parsed.references,
        truncated: parsed.truncated,
      };
    });
  }

  async raw(id: string): Promise<Download> {
    const uid = decodeMessageId(id);
    if (uid === undefined) throw notFound();
    return this.#download(async (link) => {
      const entry = await find(link, uid);
      // exactly the maildrop's bytes (RFC 1939 form, CRLF lines); no Content-Length: LIST sizes may be estimates
      return { contentType: 'message/rfc822', filename: null, size: null, stream: await link.retr(entry.n) };
    });
  }

  async attachment(id: string, attachmentId: string): Promise<Download> {
    const uid = decodeMessageId(id);
    if (uid === undefined) throw notFound();
    return this.#download(async (link) => {
      const entry = await find(link, uid);
      const found = await extractAttachment(await link.retr(entry.n), attachmentId, this.#ctx.parseMaxBytes);
      if (!found) throw new AppError('ATTACHMENT_NOT_FOUND', `the message has no attachment "${attachmentId}"`);
      return { contentType: found.contentType, filename: found.filename, size: null, stream: found.stream };
    });
  }

  /** A download on a connection of its own, ended (QUIT, or closed when cut short) when the stream closes. */
  async #download(make: (link: Pop3Link) => Promise<Download>): Promise<Download> {
    const link = await this.#ctx.open();
    let download: Download;
    try {
      download = await make(link);
    } catch (err) {
      await link.quit();
      throw err;
    }
    const end = (stream: Readable) => stream.once('close', () => void link.quit());
    end(download.stream);
    return download;
  }
}

/** Where the page after `cursor` starts in `entries` (already in the page order). */
function startAfter(entries: MaildropEntry[], cursor: Cursor): number {
  const at = entries.findIndex((e) => e.uid === cursor.uid);
  if (at >= 0) return at + 1;
  // the cursor's message was deleted: its number still tells where it stood (a later deletion can shift by a few)
  const next = entries.findIndex((e) => (cursor.order === 'newest' ? e.n < cursor.n : e.n > cursor.n));
  return next < 0 ? entries.length : next;
}

export async function find(link: Pop3Link, uid: string): Promise<MaildropEntry> {
  const entry = (await link.uidl()).find((e) => e.uid === uid);
  if (!entry) throw notFound();
  return entry;
}
