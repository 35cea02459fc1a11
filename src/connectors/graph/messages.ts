import { AppError, isAppError } from '../../errors.js';
import { type Download, type Folder, type ListQuery, type MessageDetail, type MessagePage, type MessageReader } from '../../domain/mail.js';
import type { GraphClient } from './client.js';
import { SUMMARY_EXPAND, SUMMARY_SELECT, bodyOf, headersOf, messageIds, safeContentType, toSummary, type GraphMessage } from './convert.js';
import type { GraphFolders } from './folders.js';
import { graphId } from './ids.js';
import { buildFilter, decodeCursor, encodeCursor, pagingOf, pinOf, queryFingerprint, queryString } from './query.js';

export interface ReaderContext {
  client: GraphClient;
  folders: GraphFolders;
  /** https://<host>/v1.0/me or .../users/{id} */
  mailboxUrl: string;
  host: string;
  /** Budget of one Graph request, retries included (timeouts.commandMs). */
  budgetMs: () => number;
  /** Most bytes of a message's JSON read for a detail or a page (MSB_PARSE_MAX_BYTES). */
  parseMaxBytes: number;
}

/** Graph renders an HTML body as plain text on request (one body type per request). */
const AS_TEXT = 'outlook.body-content-type="text"';

function asMessage(value: unknown): GraphMessage | undefined {
  const m = value as { id?: unknown } | null;
  return typeof m === 'object' && m !== null && typeof m.id === 'string' && m.id.length > 0 && m.id.length <= 1024 ? (m as GraphMessage) : undefined;
}

/**
 * Reading an Outlook mailbox through Microsoft Graph. Ids are Graph's immutable ids (every request
 * carries Prefer: IdType="ImmutableId"), base64url-encoded, so they survive moves between folders.
 */
export class GraphReader implements MessageReader {
  readonly #ctx: ReaderContext;

  constructor(ctx: ReaderContext) {
    this.#ctx = ctx;
  }

  folders(): Promise<Folder[]> {
    return this.#ctx.folders.list();
  }

  /**
   * One page: $filter / $orderby / $top on the folder's messages, with the attachments' metadata and the
   * size expanded. The next page continues Graph's own paging (@odata.nextLink's $skip) with the same
   * query; a newest-first listing is pinned to the messages received up to its first page's newest one,
   * so mail that arrives meanwhile does not shift later pages (it shows on the next listing).
   */
  async list(q: ListQuery): Promise<MessagePage> {
    const c = this.#ctx;
    const state = q.cursor ? decodeCursor(q.cursor, q) : undefined;
    let folder = state ? { id: state.folderId, path: state.folderPath } : await c.folders.resolve(q.folder);
    const params: [string, string][] = [
      ['$filter', buildFilter(q, state?.pin)],
      ['$orderby', `receivedDateTime ${q.order === 'newest' ? 'desc' : 'asc'}`],
      ['$top', String(q.limit)],
      ['$select', q.includeText ? `${SUMMARY_SELECT},body` : SUMMARY_SELECT],
      ['$expand', SUMMARY_EXPAND],
      ...(state?.paging ?? []),
    ];
    const read = () =>
      c.client.json({
        url: new URL(`${c.mailboxUrl}/mailFolders/${encodeURIComponent(folder.id)}/messages?${queryString(params)}`),
        budgetMs: c.budgetMs(),
        maxBytes: c.parseMaxBytes,
        item: 'folder',
        what: 'list messages',
        ...(q.includeText ? { prefer: [AS_TEXT] } : {}),
      });
    let answer;
    try {
      answer = await read();
    } catch (err) {
      if (!isAppError(err) || err.code !== 'FOLDER_NOT_FOUND' || state) throw err;
      // the cached id of the path may be stale (the folder was deleted and made again): look once more
      c.folders.forget();
      const again = await c.folders.resolve(q.folder);
      if (again.id === folder.id) throw err;
      folder = again;
      answer = await read();
    }
    if (answer.tooLarge) {
      throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${c.host}: the page is larger than ${c.parseMaxBytes} bytes; ask for a smaller limit${q.includeText ? ' or without include=text' : ''}`);
    }
    const body = answer.body as { value?: unknown; '@odata.nextLink'?: unknown } | undefined;
    if (!body || !Array.isArray(body.value)) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${c.host}: the page of messages is not JSON with a value array`);
    const items = body.value.map(asMessage).filter((m): m is GraphMessage => m !== undefined);
    const messages = items.map((m) => {
      const summary = toSummary(m, folder.path);
      if (q.includeText) summary.text = bodyOf(m)?.content ?? null;
      return summary;
    });
    const next = body['@odata.nextLink'];
    if (next === undefined || next === null || items.length === 0) return { messages, nextCursor: null };
    const paging = pagingOf(next, new URL(c.mailboxUrl).origin, c.host);
    // newest first: later pages see only what existed at the first page (its newest message's receipt)
    const pin = state?.pin ?? (q.order === 'newest' ? pinOf(items[0]!.receivedDateTime) : undefined);
    const nextCursor = encodeCursor({ query: queryFingerprint(q), folderId: folder.id, folderPath: folder.path, ...(pin ? { pin } : {}), paging });
    return { messages, nextCursor };
  }

  /**
   * The message with its body as Graph stores it (HTML or text) and the transport headers; for an HTML
   * body a second request asks Graph for its plain-text rendering. A message whose JSON is larger than
   * the parse limit comes without bodies and headers, `truncated: true`. markAsRead PATCHes isRead.
   */
  async get(id: string, options: { markAsRead: boolean }): Promise<MessageDetail> {
    const c = this.#ctx;
    const mid = this.#messageId(id);
    const base = `${c.mailboxUrl}/messages/${encodeURIComponent(mid)}`;
    const read = (select: string, prefer: string[] = []) =>
      c.client.json({
        url: new URL(`${base}?${queryString([['$select', select], ['$expand', SUMMARY_EXPAND]])}`),
        budgetMs: c.budgetMs(),
        maxBytes: c.parseMaxBytes,
        item: 'message',
        what: 'get message',
        prefer,
      });
    let answer = await read(`${SUMMARY_SELECT},body,internetMessageHeaders`);
    const truncated = answer.tooLarge === true;
    if (truncated) answer = await read(SUMMARY_SELECT);
    const message = asMessage(answer.body);
    if (!message || answer.tooLarge) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${c.host}: the message came ${answer.tooLarge ? `larger than ${c.parseMaxBytes} bytes` : 'without JSON'}`);
    const folder = typeof message.parentFolderId === 'string' ? await c.folders.pathOf(message.parentFolderId) : '';
    const summary = toSummary(message, folder);
    const body = bodyOf(message);
    let text = body?.type === 'text' ? body.content : null;
    let textTruncated = false;
    if (body?.type === 'html') {
      const rendered = await c.client.json({ url: new URL(`${base}?$select=body`), budgetMs: c.budgetMs(), maxBytes: c.parseMaxBytes, item: 'message', what: 'get message text', prefer: [AS_TEXT] });
      const asText = asMessage(rendered.body);
      text = asText ? (bodyOf(asText)?.content ?? null) : null;
      textTruncated = rendered.tooLarge === true;
    }
    const headers = headersOf(message);
    const header = (name: string) => headers.find((h) => h.name.toLowerCase() === name)?.value;
    if (options.markAsRead && summary.seen !== true) {
      await c.client.json({ method: 'PATCH', url: new URL(base), body: { isRead: true }, budgetMs: c.budgetMs(), item: 'message', what: 'mark as read' });
      summary.seen = true;
    }
    return {
      ...summary,
      text,
      html: body?.type === 'html' ? body.content : null,
      headers,
      inReplyTo: messageIds(header('in-reply-to'))[0] ?? null,
      references: messageIds(header('references')),
      truncated: truncated || textTruncated,
    };
  }

  /** The message's MIME content (/$value), streamed as Graph sends it. */
  async raw(id: string): Promise<Download> {
    const c = this.#ctx;
    const mid = this.#messageId(id);
    const { headers, stream } = await c.client.open({ url: new URL(`${c.mailboxUrl}/messages/${encodeURIComponent(mid)}/$value`), budgetMs: c.budgetMs(), item: 'message', what: 'raw message' });
    return { contentType: 'message/rfc822', filename: null, size: lengthOf(headers['content-length']), stream };
  }

  /**
   * One attachment: its metadata (name, type; never contentBytes, which Graph would inline in base64),
   * then its /$value streamed. An attached Outlook item streams as MIME; a link to a cloud file has no
   * bytes here.
   */
  async attachment(id: string, attachmentId: string): Promise<Download> {
    const c = this.#ctx;
    const mid = this.#messageId(id);
    const aid = graphId(attachmentId);
    if (!aid) throw new AppError('ATTACHMENT_NOT_FOUND', 'the message has no attachment with this id');
    const base = `${c.mailboxUrl}/messages/${encodeURIComponent(mid)}/attachments/${encodeURIComponent(aid)}`;
    let meta: Record<string, unknown> | undefined;
    try {
      const answer = await c.client.json({ url: new URL(`${base}?$select=id,name,contentType,size,isInline`), budgetMs: c.budgetMs(), item: 'attachment', what: 'attachment' });
      meta = answer.body as Record<string, unknown> | undefined;
    } catch (err) {
      // Graph says 404 for a missing message and a missing attachment alike: ask which
      if (isAppError(err) && err.code === 'ATTACHMENT_NOT_FOUND') await this.#requireMessage(mid);
      throw err;
    }
    if (typeof meta !== 'object' || meta === null) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${c.host}: the attachment came without JSON`);
    const type = typeof meta['@odata.type'] === 'string' ? meta['@odata.type'] : '';
    if (/referenceAttachment$/i.test(type)) {
      throw new AppError('OPERATION_NOT_SUPPORTED', 'this attachment is a link to a file in the cloud (referenceAttachment), not bytes in the message: open it from the message in Outlook');
    }
    const item = /itemAttachment$/i.test(type);
    const name = typeof meta.name === 'string' ? meta.name : null;
    const { headers, stream } = await c.client.open({ url: new URL(`${base}/$value`), budgetMs: c.budgetMs(), item: 'attachment', what: 'attachment bytes' });
    return {
      contentType: item ? safeContentType(headers['content-type'], 'message/rfc822') : safeContentType(meta.contentType),
      filename: item && name && !/\.eml$/i.test(name) ? `${name}.eml` : name,
      size: lengthOf(headers['content-length']),
      stream,
    };
  }

  #messageId(id: string): string {
    const mid = graphId(id);
    if (!mid) throw new AppError('MESSAGE_NOT_FOUND', 'no message with this id in this session');
    return mid;
  }

  async #requireMessage(mid: string): Promise<void> {
    const c = this.#ctx;
    await c.client.json({ url: new URL(`${c.mailboxUrl}/messages/${encodeURIComponent(mid)}?$select=id`), budgetMs: c.budgetMs(), item: 'message', what: 'message exists' });
  }
}

function lengthOf(value: string | string[] | undefined): number | null {
  return typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : null;
}
