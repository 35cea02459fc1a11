import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type * as EwsApi from 'ews-javascript-api';
import libmime from 'libmime';
import { AppError } from '../../errors.js';
import { decodeId, type Download, type Folder, type ListQuery, type MessageDetail, type MessagePage, type MessageReader, type MessageSummary } from '../../domain/mail.js';
import { itemIdOf, type EwsContext, type EwsRequest } from './context.js';
import { cutPage, decodeCursor, encodeCursor, type Found, type ListCursor } from './cursor.js';
import type { EwsFolders } from './folders.js';
import { attachmentInfos, prop, summaryProperties, toSummary } from './item-mapping.js';
import { listFilter } from './search-filter.js';

export interface EwsReaderLimits {
  /** Bytes of body a detail carries (Exchange 2013+ cuts it server-side: MaximumBodySize); beyond, `truncated`. */
  parseMaxBytes: number;
  /** Largest raw message or attachment downloaded (EWS hands them over base64 in one answer, in memory). */
  maxDownloadBytes: number;
  /** The session's exchangeVersion: TextBody, MaximumBodySize and SuppressReadReceipts need Exchange 2013. */
  exchange2013: boolean;
}

/** A DOWNLOAD_TOO_LARGE answer before any byte is fetched. */
function tooLarge(what: string, size: number, limit: number): AppError {
  return new AppError('DOWNLOAD_TOO_LARGE', `${what} is ${size} bytes, more than this server downloads through EWS (MSB_EWS_MAX_DOWNLOAD_BYTES = ${limit})`);
}

/** Bytes already in memory, handed out in chunks so the reply streams them without another copy. */
function streamOf(bytes: Buffer): Readable {
  const CHUNK = 64 * 1024;
  return Readable.from((function* () {
    for (let i = 0; i < bytes.length; i += CHUNK) yield bytes.subarray(i, i + CHUNK);
  })(), { objectMode: false });
}

/** Exchange hands header values over as they came, encoded words (RFC 2047) and all. */
function decodeHeader(value: string): string {
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

/** A file name from a subject: no path separators or control characters, bounded. */
function emlName(subject: string | null): string {
  const base = (subject ?? '').replace(/[\u0000-\u001f\u007f/\\]+/g, ' ').trim().slice(0, 120);
  return `${base || 'message'}.eml`;
}

/**
 * Reading through EWS: FindFolder for folders, FindItem with a restriction for pages (then one GetItem for
 * the page's details, which FindItem cannot give: recipients, attachments), GetItem for a message,
 * its MIME content for raw, GetAttachment for attachments, UpdateItem for markAsRead.
 */
export class EwsReader implements MessageReader {
  readonly #request: EwsRequest;
  readonly #limits: EwsReaderLimits;
  readonly #logger: Logger;
  readonly #folders: EwsFolders;

  constructor(ctx: EwsContext, limits: EwsReaderLimits) {
    this.#request = ctx.request;
    this.#limits = limits;
    this.#logger = ctx.logger;
    this.#folders = ctx.folders;
  }

  folders(): Promise<Folder[]> {
    return this.#folders.list((count) => this.#logger.warn({ count }, 'EWS folder list cut at its bound'));
  }

  async list(query: ListQuery): Promise<MessagePage> {
    const previous: ListCursor | undefined = query.cursor ? decodeCursor(query, query.cursor) : undefined;
    const folder = await this.#folders.resolve(query.folder);
    const found = await this.#request('FindItem', async (service, ews) => {
      const view = new ews.ItemView(query.limit + (previous?.seen.length ?? 0), previous?.skip ?? 0, ews.OffsetBasePoint.Beginning);
      view.PropertySet = new ews.PropertySet(ews.BasePropertySet.IdOnly, [ews.ItemSchema.DateTimeReceived]);
      view.OrderBy.Add(ews.ItemSchema.DateTimeReceived, query.order === 'newest' ? ews.SortDirection.Descending : ews.SortDirection.Ascending);
      const filter = listFilter(ews, query, previous);
      const parent = new ews.FolderId(folder.id);
      const results = await (filter ? service.FindItems(parent, filter, view) : service.FindItems(parent, view));
      if (!results) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS FindItem returned no answer');
      const entries: Found[] = results.Items.map((item) => ({ itemId: item.Id.UniqueId, receivedMs: prop<EwsApi.DateTime>(item, ews.ItemSchema.DateTimeReceived)?.TotalMilliSeconds ?? NaN }));
      if (entries.some((e) => !Number.isFinite(e.receivedMs))) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS FindItem returned an item without DateTimeReceived');
      return { entries, more: results.MoreAvailable };
    }, 'folder');
    const { page, next } = cutPage(found.entries, found.more, query.limit, previous);
    const messages = page.length ? await this.summaries(page.map((p) => p.itemId), folder.path, query.includeText) : [];
    return { messages, nextCursor: next ? encodeCursor(query, next) : null };
  }

  async get(id: string, options: { markAsRead: boolean }): Promise<MessageDetail> {
    const itemId = itemIdOf(id, 'message');
    const limits = this.#limits;
    const { item, summary, detail } = await this.#request('GetItem', async (service, ews) => {
      const props = new ews.PropertySet(ews.BasePropertySet.IdOnly, [
        ...summaryProperties(ews),
        ews.ItemSchema.Body,
        ews.ItemSchema.InternetMessageHeaders,
        ews.ItemSchema.ParentFolderId,
        ews.ItemSchema.InReplyTo,
        ews.EmailMessageSchema.References,
        ...(limits.exchange2013 ? [ews.ItemSchema.TextBody] : []),
      ]);
      // no RequestedBodyType: the server's default ("Best": HTML when there is some) is what we want, and the
      // library would drop BodyType.HTML anyway (enum value 0, which it takes for "not set")
      if (limits.exchange2013) props.MaximumBodySize = Math.max(1, Math.floor(limits.parseMaxBytes / 1024));
      const item = await ews.Item.Bind(service, new ews.ItemId(itemId), props);
      if (!item) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS GetItem returned no item');
      const body = prop<EwsApi.MessageBody>(item, ews.ItemSchema.Body);
      const html = body && body.BodyType === ews.BodyType.HTML ? (body.Text ?? '') : null;
      const textBody = limits.exchange2013 ? prop<EwsApi.TextBody>(item, ews.ItemSchema.TextBody) : null;
      let text = textBody?.Text ?? (body && body.BodyType === ews.BodyType.Text ? (body.Text ?? '') : null);
      if (text === null && html !== null && !limits.exchange2013) {
        // Exchange 2010 has no TextBody: ask once more, for the body as text (Exchange converts it)
        const asText = new ews.PropertySet(ews.BasePropertySet.IdOnly, [ews.ItemSchema.Body]);
        asText.RequestedBodyType = ews.BodyType.Text;
        const again = await ews.Item.Bind(service, new ews.ItemId(itemId), asText);
        text = again ? (prop<EwsApi.MessageBody>(again, ews.ItemSchema.Body)?.Text ?? null) : null;
      }
      const headers = (prop<EwsApi.InternetMessageHeaderCollection>(item, ews.ItemSchema.InternetMessageHeaders)?.GetEnumerator() ?? []).map((h) => ({ name: h.Name, value: decodeHeader(h.Value ?? '') }));
      const references = (prop<string>(item, ews.EmailMessageSchema.References) ?? '').split(/\s+/).filter((r) => r.length > 0);
      const size = prop<number>(item, ews.ItemSchema.Size);
      return {
        item,
        summary: toSummary(item, '', ews),
        detail: {
          text,
          html,
          headers,
          inReplyTo: prop<string>(item, ews.ItemSchema.InReplyTo),
          references,
          // the whole item beyond the parse limit: Exchange cut the body at MaximumBodySize (it does not tell us whether)
          truncated: typeof size === 'number' && size > limits.parseMaxBytes,
          parent: prop<EwsApi.FolderId>(item, ews.ItemSchema.ParentFolderId)?.UniqueId ?? null,
        },
      };
    }, 'message');
    const { parent, ...rest } = detail;
    summary.folder = parent ? await this.#folders.pathOf(parent) : '';
    if (options.markAsRead && summary.seen === false) {
      await this.#request('UpdateItem', async (_service, e) => {
        if (!(item instanceof e.EmailMessage)) throw new AppError('OPERATION_NOT_SUPPORTED', 'only messages can be marked read, not this kind of Exchange item');
        const message = item;
        message.IsRead = true;
        // no read receipt goes out on the bot's behalf (SuppressReadReceipts, Exchange 2013+)
        await (limits.exchange2013 ? message.Update(e.ConflictResolutionMode.AlwaysOverwrite, true) : message.Update(e.ConflictResolutionMode.AlwaysOverwrite));
      }, 'message');
      summary.seen = true;
    }
    return { ...summary, ...rest };
  }

  async raw(id: string): Promise<Download> {
    const itemId = itemIdOf(id, 'message');
    const { size, subject } = await this.#request('GetItem', async (service, ews) => {
      const item = await ews.Item.Bind(service, new ews.ItemId(itemId), new ews.PropertySet(ews.BasePropertySet.IdOnly, [ews.ItemSchema.Size, ews.ItemSchema.Subject]));
      if (!item) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS GetItem returned no item');
      return { size: prop<number>(item, ews.ItemSchema.Size) ?? 0, subject: prop<string>(item, ews.ItemSchema.Subject) };
    }, 'message');
    if (size > this.#limits.maxDownloadBytes) throw tooLarge('the message', size, this.#limits.maxDownloadBytes);
    const bytes = await this.#request('GetItem', async (service, ews) => {
      const item = await ews.Item.Bind(service, new ews.ItemId(itemId), new ews.PropertySet(ews.BasePropertySet.IdOnly, [ews.ItemSchema.MimeContent]));
      const mime = item ? prop<EwsApi.MimeContent>(item, ews.ItemSchema.MimeContent) : null;
      if (!mime || typeof mime.Content !== 'string') throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS GetItem returned no MIME content');
      return Buffer.from(mime.Content, 'base64');
    }, 'message');
    if (bytes.length > this.#limits.maxDownloadBytes) throw tooLarge('the message', bytes.length, this.#limits.maxDownloadBytes);
    return { contentType: 'message/rfc822', filename: emlName(subject), size: bytes.length, stream: streamOf(bytes) };
  }

  async attachment(id: string, attachmentId: string): Promise<Download> {
    const itemId = itemIdOf(id, 'message');
    const wanted = itemIdOf(attachmentId, 'attachment');
    // the message first: it proves the attachment belongs to it, and tells the size before any byte moves
    const info = await this.#request('GetItem', async (service, ews) => {
      const item = await ews.Item.Bind(service, new ews.ItemId(itemId), new ews.PropertySet(ews.BasePropertySet.IdOnly, [ews.ItemSchema.Attachments]));
      if (!item) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS GetItem returned no item');
      return attachmentInfos(item, ews).find((a) => decodeId(a.id) === wanted);
    }, 'message');
    if (!info) throw new AppError('ATTACHMENT_NOT_FOUND', 'the message has no attachment with this id');
    if (info.size !== null && info.size > this.#limits.maxDownloadBytes) throw tooLarge('the attachment', info.size, this.#limits.maxDownloadBytes);
    const bytes = await this.#request('GetAttachment', async (service, ews) => {
      const responses = await service.GetAttachments([wanted], null as unknown as EwsApi.BodyType, [ews.ItemSchema.MimeContent]);
      const response = responses?.Responses[0];
      if (!response) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS GetAttachment returned no answer');
      if (response.Result === ews.ServiceResult.Error) throw { Response: response, message: response.ErrorMessage };
      const a = response.Attachment;
      if (a instanceof ews.FileAttachment && typeof a.Base64Content === 'string') return Buffer.from(a.Base64Content, 'base64');
      if (a instanceof ews.ItemAttachment && a.Item) {
        const mime = prop<EwsApi.MimeContent>(a.Item, ews.ItemSchema.MimeContent);
        if (mime && typeof mime.Content === 'string') return Buffer.from(mime.Content, 'base64');
      }
      throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS GetAttachment returned no content');
    }, 'attachment');
    if (bytes.length > this.#limits.maxDownloadBytes) throw tooLarge('the attachment', bytes.length, this.#limits.maxDownloadBytes);
    return { contentType: info.contentType, filename: info.filename, size: bytes.length, stream: streamOf(bytes) };
  }

  /**
   * Summaries of the messages with these ItemIds, in `folder` (its path): one GetItem, for a page of the
   * list or for new mail the watcher found. A message deleted in between is left out.
   */
  async summaries(itemIds: string[], folder: string, includeText: boolean): Promise<MessageSummary[]> {
    const limits = this.#limits;
    return this.#request('GetItem', async (service, ews) => {
      const props = new ews.PropertySet(ews.BasePropertySet.IdOnly, summaryProperties(ews));
      if (includeText) {
        if (limits.exchange2013) {
          props.Add(ews.ItemSchema.TextBody);
          props.MaximumBodySize = Math.max(1, Math.floor(limits.parseMaxBytes / 1024));
        } else {
          props.Add(ews.ItemSchema.Body);
          props.RequestedBodyType = ews.BodyType.Text;
        }
      }
      const responses = await service.BindToItems(itemIds.map((i) => new ews.ItemId(i)), props);
      if (!responses) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS GetItem returned no answer');
      const out: MessageSummary[] = [];
      for (const r of responses.Responses) {
        if (r.Result === ews.ServiceResult.Error) {
          const code = (ews.ServiceError as unknown as Record<number, string>)[r.ErrorCode];
          if (code === 'ErrorItemNotFound') continue;
          throw { Response: r, message: r.ErrorMessage };
        }
        if (!r.Item) continue;
        const summary = toSummary(r.Item, folder, ews);
        if (includeText) {
          const body = prop<EwsApi.TextBody | EwsApi.MessageBody>(r.Item, limits.exchange2013 ? ews.ItemSchema.TextBody : ews.ItemSchema.Body);
          summary.text = body?.Text ?? null;
        }
        out.push(summary);
      }
      return out;
    });
  }
}
