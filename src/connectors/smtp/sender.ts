import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { Logger } from 'pino';
import type { ForwardRequest, MessageDetail, MessageReader, MessageSender, OutgoingAttachment, OutgoingMessage, Recipient, ReplyRequest, SendResult } from '../../domain/mail.js';
import { AppError, isAppError } from '../../errors.js';
import { forwardedHtml, forwardedText, forwardSubject, quotedHtml, quotedText, replyRecipients, replySubject, threading } from './compose.js';
import type { SmtpSettings } from './settings.js';
import type { SmtpTransport } from './transport.js';

/** What the mailbox side does after a send (IMAP); absent for POP3, which has no folders and no flags. */
export interface SentMailbox {
  /** APPENDs the message to the \Sent folder with \Seen. */
  appendSent(raw: Buffer, date: Date): Promise<void>;
  /** Sets \Answered on the original of a reply. */
  markAnswered(id: string): Promise<void>;
}

export interface SmtpSenderContext {
  settings: SmtpSettings;
  transport: SmtpTransport;
  reader: MessageReader;
  mailbox?: SentMailbox | undefined;
  logger: Logger;
}

/** An attachment as nodemailer takes it. */
interface ComposedAttachment {
  filename: string;
  content: Buffer;
  contentType?: string;
  cid?: string;
  contentDisposition?: 'attachment' | 'inline';
}

interface Composition {
  to: Recipient[];
  cc: Recipient[];
  bcc: Recipient[];
  subject: string;
  text: string | null;
  html: string | null;
  attachments: ComposedAttachment[];
  inReplyTo?: string;
  references?: string[];
}

const address = (r: Recipient) => (r.name ? { name: r.name, address: r.address } : r.address);

function own(attachments: readonly OutgoingAttachment[]): ComposedAttachment[] {
  return attachments.map((a) => ({ filename: a.filename, content: a.content, ...(a.contentType ? { contentType: a.contentType } : {}) }));
}

/**
 * Sending for IMAP and POP3 sessions: the message is composed once by nodemailer's MailComposer (which
 * encodes every header; recipients go in as parsed name/address pairs), handed to the SMTP server
 * (transport.ts), and for IMAP the same message, with its Bcc kept, is appended to \Sent. A reply or a
 * forward reads the original through the session's reader (so POP3 works the same way), quotes it below
 * the new text, and threads a reply (In-Reply-To, References, "Re:" once); a forward carries the
 * original's attachments, inline images included.
 *
 * A message counts as sent when the server took it. What fails after that (the copy in Sent, \Answered)
 * does not undo it: the answer is still 201, with a `warnings` entry, and the failure is logged by code.
 */
export class SmtpSender implements MessageSender {
  readonly #ctx: SmtpSenderContext;

  constructor(ctx: SmtpSenderContext) {
    this.#ctx = ctx;
  }

  send(message: OutgoingMessage): Promise<SendResult> {
    return this.#deliver({ ...message, attachments: own(message.attachments) });
  }

  async reply(id: string, request: ReplyRequest): Promise<SendResult> {
    const original = await this.#ctx.reader.get(id, { markAsRead: false });
    const { to, cc } = replyRecipients(original, request.replyAll, this.#ownAddresses());
    if (to.length === 0) {
      throw new AppError('VALIDATION_ERROR', '/params/id the message has no sender or recipient to reply to', { errors: [{ path: '/params/id', message: 'has no address to reply to' }] });
    }
    const result = await this.#deliver({
      to,
      cc,
      bcc: [],
      subject: replySubject(original.subject),
      ...this.#bodies(request, original, quotedText, quotedHtml),
      attachments: own(request.attachments),
      ...threading(original),
    });
    const mailbox = this.#ctx.mailbox;
    if (!mailbox) return result;
    const warning = await this.#afterSend('answered', () => mailbox.markAnswered(id), 'the reply was sent, but the original could not be marked answered');
    return warning ? { ...result, warnings: [...(result.warnings ?? []), warning] } : result;
  }

  async forward(id: string, request: ForwardRequest): Promise<SendResult> {
    // the text beyond MSB_PARSE_MAX_BYTES is not quoted; the attachments are read whole (within MSB_SEND_MAX_BYTES)
    const original = await this.#ctx.reader.get(id, { markAsRead: false });
    const attachments = own(request.attachments);
    const ownBytes = Buffer.byteLength(request.text ?? '') + Buffer.byteLength(request.html ?? '') + attachments.reduce((n, a) => n + a.content.length, 0);
    attachments.push(...(await this.#originalAttachments(id, original, this.#ctx.settings.maxBytes - ownBytes)));
    return this.#deliver({
      to: request.to,
      cc: request.cc,
      bcc: request.bcc,
      subject: forwardSubject(original.subject),
      ...this.#bodies(request, original, forwardedText, forwardedHtml),
      attachments,
    });
  }

  /**
   * The text part when text is given (or nothing is), the HTML part when HTML is given; each with the
   * original below it. An HTML-only request gets no derived text part (the recipient's client shows the HTML).
   */
  #bodies(
    request: { text: string | null; html: string | null },
    original: MessageDetail,
    text: (t: string | null, o: MessageDetail) => string,
    html: (h: string, o: MessageDetail) => string,
  ): { text: string | null; html: string | null } {
    return {
      text: request.text !== null || request.html === null ? text(request.text, original) : null,
      html: request.html !== null ? html(request.html, original) : null,
    };
  }

  /** Every attachment of the original (inline images with their Content-ID), read whole, at most `budget` bytes in all. */
  async #originalAttachments(id: string, original: MessageDetail, budget: number): Promise<ComposedAttachment[]> {
    const out: ComposedAttachment[] = [];
    let left = budget;
    for (const a of original.attachments) {
      const download = await this.#ctx.reader.attachment(id, a.id);
      const content = await readAtMost(download.stream, left);
      left -= content.length;
      const cid = a.contentId?.replace(/^<|>$/g, '');
      out.push({
        filename: a.filename ?? download.filename ?? 'attachment',
        content,
        contentType: a.contentType,
        ...(a.inline && cid ? { cid, contentDisposition: 'inline' as const } : {}),
      });
    }
    return out;
  }

  async #deliver(m: Composition): Promise<SendResult> {
    const s = this.#ctx.settings;
    const date = new Date();
    const domain = s.from.address.slice(s.from.address.lastIndexOf('@') + 1);
    const messageId = `<${randomUUID()}@${domain}>`;
    const options = {
      from: address(s.from),
      to: m.to.map(address),
      cc: m.cc.map(address),
      bcc: m.bcc.map(address),
      subject: m.subject,
      messageId,
      date,
      ...(m.text !== null ? { text: m.text } : {}),
      ...(m.html !== null ? { html: m.html } : {}),
      attachments: m.attachments,
      ...(m.inReplyTo ? { inReplyTo: m.inReplyTo } : {}),
      ...(m.references ? { references: m.references } : {}),
      // the same boundaries in the message sent and in the copy kept
      baseBoundary: randomUUID().replaceAll('-', ''),
      xMailer: false as const,
      disableFileAccess: true,
      disableUrlAccess: true,
    };
    const composed = new MailComposer(options).compile();
    const envelope = composed.getEnvelope();
    const raw = await composed.build();
    const delivery = await this.#ctx.transport.send({ from: s.from.address, to: envelope.to }, raw);
    const result: SendResult = { messageId, accepted: delivery.accepted, rejected: delivery.rejected };
    const mailbox = this.#ctx.mailbox;
    if (!mailbox || !s.saveToSent) return result;
    // the copy keeps the Bcc header, as mail clients keep it in Sent
    const copy = new MailComposer(options).compile();
    copy.keepBcc = true;
    const kept = await copy.build();
    const warning = await this.#afterSend('sent copy', () => mailbox.appendSent(kept, date), 'the message was sent, but its copy could not be saved in the Sent folder');
    return warning ? { ...result, warnings: [warning] } : result;
  }

  /** Runs a step after a successful send; its failure is a warning (by code), never the answer. */
  async #afterSend(step: string, op: () => Promise<void>, message: string): Promise<string | undefined> {
    try {
      await op();
      return undefined;
    } catch (err) {
      const code = isAppError(err) ? err.code : 'INTERNAL_ERROR';
      this.#ctx.logger.warn({ step, code }, 'a step after sending failed; the message was sent');
      return `${message} (${code})`;
    }
  }

  #ownAddresses(): string[] {
    const s = this.#ctx.settings;
    return [s.from.address, ...(s.username.includes('@') ? [s.username] : [])];
  }
}

/** The whole stream, or MESSAGE_TOO_LARGE (and the stream destroyed) once it passes `max` bytes. */
async function readAtMost(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      size += buffer.length;
      if (size > max) throw new AppError('MESSAGE_TOO_LARGE', 'the new parts and the original\'s attachments exceed MSB_SEND_MAX_BYTES');
      chunks.push(buffer);
    }
  } finally {
    if (!stream.destroyed) stream.destroy();
  }
  return Buffer.concat(chunks);
}
