import { AppError } from '../../errors.js';
import type { ForwardRequest, MessageSender, OutgoingAttachment, OutgoingMessage, Recipient, ReplyRequest, SendResult } from '../../domain/mail.js';
import { attachToDraft, fileAttachment, INLINE_ATTACHMENT_MAX, type UploadContext } from './attachments-upload.js';
import type { GraphClient } from './client.js';
import { graphId } from './ids.js';

export interface SenderContext extends UploadContext {
  client: GraphClient;
  /** Most bytes of a draft's JSON read (MSB_PARSE_MAX_BYTES): a reply's draft quotes the whole original. */
  parseMaxBytes: number;
}

/** Graph's largest request body; a sendMail with its attachments must fit in it. */
const REQUEST_MAX = 4_000_000;

function recipients(list: readonly Recipient[]): { emailAddress: { name?: string; address: string } }[] {
  return list.map((r) => ({ emailAddress: { ...(r.name ? { name: r.name } : {}), address: r.address } }));
}

function addresses(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value
    .map((r: { emailAddress?: { address?: unknown } } | null) => r?.emailAddress?.address)
    .filter((a): a is string => typeof a === 'string' && a.length > 0);
}

function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

/**
 * The new text of a reply or forward as Graph's `comment`, which Exchange puts as HTML above the quoted
 * original: the HTML when given, else the text escaped with its line breaks kept.
 */
export function commentOf(request: { text: string | null; html: string | null }): string {
  if (request.html !== null) return request.html;
  return escapeHtml(request.text ?? '').replace(/\r?\n/g, '<br>');
}

function messageIdOf(id: string): string {
  const mid = graphId(id);
  if (!mid) throw new AppError('MESSAGE_NOT_FOUND', 'no message with this id in this session');
  return mid;
}

/**
 * Sending through Microsoft Graph. A new message is one POST /sendMail (saveToSentItems: true, so Exchange
 * keeps the copy in Sent Items) when it fits in one request (attachments of up to 3 MB, 4 MB in all);
 * larger ones are a draft (POST /messages), its attachments (upload sessions above 3 MB), then POST
 * .../send. A reply or reply-all is always a draft (createReply / createReplyAll, attachments, send): only
 * the draft tells who Exchange addressed it to (reply-all leaves the mailbox itself out). A forward is one
 * POST .../forward, or a draft (createForward) when attachments are added.
 *
 * Graph reports no recipient as accepted or refused (a refusal comes later as a non-delivery report), so
 * `accepted` is every recipient. Graph's sendMail, forward and send answer 202 without the message:
 * `messageId` is the draft's internetMessageId when there was a draft (Exchange sends the draft with it),
 * null otherwise.
 */
export class GraphSender implements MessageSender {
  readonly #ctx: SenderContext;

  constructor(ctx: SenderContext) {
    this.#ctx = ctx;
  }

  async send(message: OutgoingMessage): Promise<SendResult> {
    const c = this.#ctx;
    const accepted = [...message.to, ...message.cc, ...message.bcc].map((r) => r.address);
    const json = {
      subject: message.subject,
      body: message.html !== null ? { contentType: 'HTML', content: message.html } : { contentType: 'Text', content: message.text ?? '' },
      toRecipients: recipients(message.to),
      ccRecipients: recipients(message.cc),
      bccRecipients: recipients(message.bcc),
    };
    const inline = message.attachments.every((a) => a.content.length <= INLINE_ATTACHMENT_MAX);
    const body = { message: { ...json, ...(message.attachments.length ? { attachments: message.attachments.map(fileAttachment) } : {}) }, saveToSentItems: true };
    if (inline && Buffer.byteLength(JSON.stringify(body)) <= REQUEST_MAX) {
      await c.client.json({ method: 'POST', url: new URL(`${c.mailboxUrl}/sendMail`), body, budgetMs: c.budgetMs(), permission: 'Mail.Send', what: 'send mail' });
      return { messageId: null, accepted, rejected: [] };
    }
    const draft = await this.#json('POST', `${c.mailboxUrl}/messages`, json, 'create draft');
    return this.#finish(draft, message.attachments, accepted);
  }

  async reply(id: string, request: ReplyRequest): Promise<SendResult> {
    const c = this.#ctx;
    const mid = messageIdOf(id);
    const action = request.replyAll ? 'createReplyAll' : 'createReply';
    const draft = await this.#json('POST', `${c.mailboxUrl}/messages/${encodeURIComponent(mid)}/${action}`, { comment: commentOf(request) }, request.replyAll ? 'create reply all' : 'create reply', 'message');
    return this.#finish(draft, request.attachments, undefined);
  }

  async forward(id: string, request: ForwardRequest): Promise<SendResult> {
    const c = this.#ctx;
    const mid = messageIdOf(id);
    const accepted = [...request.to, ...request.cc, ...request.bcc].map((r) => r.address);
    const body = {
      comment: commentOf(request),
      toRecipients: recipients(request.to),
      ...(request.cc.length || request.bcc.length ? { message: { ccRecipients: recipients(request.cc), bccRecipients: recipients(request.bcc) } } : {}),
    };
    const path = `${c.mailboxUrl}/messages/${encodeURIComponent(mid)}`;
    if (request.attachments.length === 0) {
      await c.client.json({ method: 'POST', url: new URL(`${path}/forward`), body, budgetMs: c.budgetMs(), item: 'message', permission: 'Mail.Send', what: 'forward' });
      return { messageId: null, accepted, rejected: [] };
    }
    const draft = await this.#json('POST', `${path}/createForward`, body, 'create forward', 'message');
    return this.#finish(draft, request.attachments, accepted);
  }

  /**
   * Adds the attachments to a draft and sends it. A draft that could not be completed is deleted; once
   * its send was asked for it is left alone (it may have been sent: deleting it could remove the copy
   * in Sent Items).
   */
  async #finish(draft: Record<string, unknown>, attachments: readonly OutgoingAttachment[], accepted: string[] | undefined): Promise<SendResult> {
    const c = this.#ctx;
    const id = typeof draft.id === 'string' && draft.id.length > 0 && draft.id.length <= 1024 ? draft.id : undefined;
    if (!id) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${c.host}: the draft came without an id`);
    const path = `${c.mailboxUrl}/messages/${encodeURIComponent(id)}`;
    try {
      await attachToDraft(c, id, attachments);
    } catch (err) {
      await c.client.json({ method: 'POST', url: new URL(`${path}/permanentDelete`), budgetMs: c.budgetMs(), item: 'message', what: 'delete unsent draft' }).catch(() => undefined);
      throw err;
    }
    await c.client.json({ method: 'POST', url: new URL(`${path}/send`), budgetMs: c.budgetMs(), item: 'message', permission: 'Mail.Send', what: 'send draft' });
    const messageId = typeof draft.internetMessageId === 'string' && draft.internetMessageId.length <= 998 ? draft.internetMessageId : null;
    return {
      messageId,
      accepted: accepted ?? [...addresses(draft.toRecipients), ...addresses(draft.ccRecipients), ...addresses(draft.bccRecipients)],
      rejected: [],
    };
  }

  async #json(method: 'POST', url: string, body: unknown, what: string, item?: 'message'): Promise<Record<string, unknown>> {
    const c = this.#ctx;
    const answer = await c.client.json({ method, url: new URL(url), body, budgetMs: c.budgetMs(), maxBytes: c.parseMaxBytes, ...(item ? { item } : {}), what });
    if (typeof answer.body !== 'object' || answer.body === null) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${c.host}: the draft came without JSON`);
    return answer.body as Record<string, unknown>;
  }
}
