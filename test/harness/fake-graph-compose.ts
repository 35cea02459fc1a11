// Messages the fake Graph makes itself: drafts (POST /messages, createReply...), the copies sendMail keeps
// in Sent Items, and the mail it delivers to the recipients' mailboxes when they are mailboxes of the fake.
// Graph's message JSON is checked the way Graph checks it (recipients, body, fileAttachment), then
// composed into real MIME with nodemailer's composer and stored like seeded mail, so that it reads back
// through every route (JSON, /$value, attachments) as Exchange would show it.
import { randomBytes } from 'node:crypto';
import { ODataError } from './fake-graph-json.js';
import type { FakeAddress, FakeAttachment, FakeMailbox, FakeMessage } from './fake-graph-mailbox.js';
import { compose } from './graph-mail-seed.js';

/** A message as a Graph request describes it, checked. */
export interface MessageInput {
  subject: string;
  body: { contentType: 'html' | 'text'; content: string };
  to: FakeAddress[];
  cc: FakeAddress[];
  bcc: FakeAddress[];
  replyTo: FakeAddress[];
  attachments: FakeAttachment[];
}

/** The JSON of a message that was sent, as the fake received it (for assertions). */
export interface SentRecord {
  /** The mailbox that sent it. */
  mailbox: string;
  action: 'sendMail' | 'send' | 'reply' | 'replyAll' | 'forward';
  /** The request body as received. */
  request: unknown;
  internetMessageId: string;
  /** The copy in Sent Items (undefined with saveToSentItems: false). */
  copy?: FakeMessage;
}

/** Graph's attachment limit for a request (larger ones need an upload session). */
export const INLINE_ATTACHMENT_MAX = 3 * 1024 * 1024;

function bad(code: string, message: string): ODataError {
  return new ODataError(400, code, message);
}

function recipients(value: unknown, field: string): FakeAddress[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw bad('RequestBodyRead', `An unexpected 'StartObject' node was found for property named '${field}' when reading from the JSON reader. A 'StartArray' node was expected.`);
  return value.map((r: { emailAddress?: { name?: unknown; address?: unknown } }) => {
    const address = r?.emailAddress?.address;
    if (typeof address !== 'string' || !/^[^\s@<>]+@[^\s@<>]+$/.test(address)) throw bad('ErrorInvalidRecipients', 'At least one recipient is not valid.');
    return { name: typeof r.emailAddress!.name === 'string' ? r.emailAddress!.name : '', address };
  });
}

/** A fileAttachment of a request (itemAttachment and referenceAttachment are not modelled). */
export function fileAttachment(value: unknown): FakeAttachment {
  const a = value as { '@odata.type'?: unknown; name?: unknown; contentBytes?: unknown; contentType?: unknown; isInline?: unknown; contentId?: unknown } | null;
  if (a?.['@odata.type'] !== '#microsoft.graph.fileAttachment') throw bad('ErrorInvalidRequest', "The attachment's @odata.type must be #microsoft.graph.fileAttachment.");
  if (typeof a.name !== 'string' || a.name.length === 0) throw bad('ErrorInvalidRequest', 'The attachment has no name.');
  if (typeof a.contentBytes !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(a.contentBytes)) throw bad('ErrorInvalidRequest', 'contentBytes is not base64.');
  const bytes = Buffer.from(a.contentBytes, 'base64');
  if (bytes.length > INLINE_ATTACHMENT_MAX) throw new ODataError(413, 'ErrorAttachmentSizeShouldNotBeLessThanMinimumSize', 'Attachment size exceeds 3 MB: use an upload session.');
  return {
    id: `AAkAAtt${randomBytes(12).toString('base64url')}=`,
    kind: 'file',
    name: a.name,
    contentType: typeof a.contentType === 'string' ? a.contentType : 'application/octet-stream',
    isInline: a.isInline === true,
    contentId: typeof a.contentId === 'string' ? a.contentId : null,
    bytes,
  };
}

/** Checks a message of a request body (sendMail's `message`, POST /messages, a reply's `message`). */
export function messageInput(value: unknown, required: { recipients: boolean }): MessageInput {
  const m = (value ?? {}) as Record<string, unknown>;
  if (typeof m !== 'object') throw bad('RequestBodyRead', 'The message is not an object.');
  const body = m.body as { contentType?: unknown; content?: unknown } | undefined;
  const type = typeof body?.contentType === 'string' ? body.contentType.toLowerCase() : 'text';
  if (body !== undefined && (type !== 'html' && type !== 'text')) throw bad('RequestBodyRead', `The value '${String(body.contentType)}' is not a valid BodyType.`);
  if (body !== undefined && typeof body.content !== 'string') throw bad('RequestBodyRead', 'body.content must be a string.');
  const input: MessageInput = {
    subject: typeof m.subject === 'string' ? m.subject : '',
    body: { contentType: type as 'html' | 'text', content: typeof body?.content === 'string' ? body.content : '' },
    to: recipients(m.toRecipients, 'toRecipients'),
    cc: recipients(m.ccRecipients, 'ccRecipients'),
    bcc: recipients(m.bccRecipients, 'bccRecipients'),
    replyTo: recipients(m.replyTo, 'replyTo'),
    attachments: Array.isArray(m.attachments) ? m.attachments.map(fileAttachment) : [],
  };
  if (required.recipients && input.to.length + input.cc.length + input.bcc.length === 0) throw bad('ErrorInvalidRecipients', 'At least one recipient is required, but none were found.');
  return input;
}

export function newInternetMessageId(): string {
  return `<${randomBytes(16).toString('hex').toUpperCase()}@fake.graph.test>`;
}

/**
 * Stores a message made from `input` in `folder` of `mb`: real MIME from the composer, then the fields
 * that MIME does not carry (Bcc, draft, read status).
 */
export async function store(
  mb: FakeMailbox,
  folder: string,
  input: MessageInput,
  options: { from: FakeAddress; internetMessageId: string; isDraft: boolean; isRead: boolean; inReplyTo?: string | null; references?: string[] },
): Promise<FakeMessage> {
  const mime = await compose({
    from: options.from,
    to: input.to,
    cc: input.cc,
    ...(input.replyTo.length ? { replyTo: input.replyTo } : {}),
    subject: input.subject,
    messageId: options.internetMessageId,
    ...(options.inReplyTo ? { inReplyTo: options.inReplyTo } : {}),
    ...(options.references?.length ? { references: options.references } : {}),
    ...(input.body.contentType === 'html' ? { html: input.body.content } : { text: input.body.content }),
    attachments: input.attachments.map((a) => ({
      filename: a.name,
      content: a.bytes,
      contentType: a.contentType ?? 'application/octet-stream',
      ...(a.contentId ? { cid: a.contentId } : {}),
      contentDisposition: a.isInline ? ('inline' as const) : ('attachment' as const),
    })),
  });
  const m = await mb.addMessage(folder, mime, { isRead: options.isRead });
  m.bcc = input.bcc;
  m.isDraft = options.isDraft;
  // Exchange keeps no transport headers on mail it did not receive
  if (options.isDraft || folder === 'sentitems') m.headers = [];
  // the attachments as given (ids, names and bytes), not as re-read from MIME
  m.attachments = input.attachments.map((a) => ({ ...a }));
  return m;
}

/** The Message-IDs of a stored message's References and its own, for a reply's threading headers. */
function thread(original: FakeMessage): { inReplyTo: string | null; references: string[] } {
  const header = (name: string) => original.headers.find((h) => h.name.toLowerCase() === name)?.value ?? '';
  const references = [...header('references').matchAll(/<[^<>\s]+>/g)].map((x) => x[0]);
  return original.internetMessageId ? { inReplyTo: original.internetMessageId, references: [...references, original.internetMessageId] } : { inReplyTo: null, references };
}

/** "RE: " / "FW: " once, as Exchange writes them. */
function prefixed(prefix: 'RE' | 'FW', subject: string | null): string {
  const s = subject ?? '';
  return new RegExp(`^${prefix}:`, 'i').test(s) ? s : `${prefix}: ${s}`;
}

function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/**
 * A reply, reply-all or forward of `original` as Exchange composes it: the recipients (reply-all without
 * the mailbox itself), "RE:" / "FW:", the comment above the original's header block and body, the
 * original's attachments on a forward, threading headers.
 */
export function response(
  mb: FakeMailbox,
  original: FakeMessage,
  kind: 'reply' | 'replyAll' | 'forward',
  comment: string,
  extra: { toRecipients?: FakeAddress[]; message?: MessageInput },
): { input: MessageInput; inReplyTo: string | null; references: string[] } {
  const self = mb.address.toLowerCase();
  const seen = new Set<string>();
  const unique = (list: FakeAddress[]) =>
    list.filter((a) => {
      const key = a.address.toLowerCase();
      if (key === self || seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  const sender = original.replyTo.length ? original.replyTo : original.from ? [original.from] : [];
  const to = kind === 'forward' ? [...(extra.toRecipients ?? []), ...(extra.message?.to ?? [])] : kind === 'reply' ? unique(sender) : unique([...sender, ...original.to]);
  const cc = kind === 'replyAll' ? unique(original.cc) : [];
  const quoted = original.body.contentType === 'html' ? original.body.content : `<div>${escapeHtml(original.body.content)}</div>`;
  const head = `<div id="divRplyFwdMsg"><b>From:</b> ${escapeHtml(original.from?.address ?? '')}<br><b>Subject:</b> ${escapeHtml(original.subject ?? '')}</div>`;
  const input: MessageInput = {
    subject: prefixed(kind === 'forward' ? 'FW' : 'RE', original.subject),
    body: { contentType: 'html', content: `<html><body><div>${comment}</div><hr>${head}${quoted}</body></html>` },
    to,
    cc: [...cc, ...(extra.message?.cc ?? [])],
    bcc: extra.message?.bcc ?? [],
    replyTo: [],
    attachments: kind === 'forward' ? original.attachments.filter((a) => a.kind === 'file').map((a) => ({ ...a })) : [],
  };
  return { input, ...(kind === 'forward' ? { inReplyTo: null, references: [] } : thread(original)) };
}

/** Puts a copy of a sent message into each recipient's Inbox that is a mailbox of the fake. */
export async function deliver(boxes: Map<string, FakeMailbox>, from: FakeAddress, input: MessageInput, internetMessageId: string, thread: { inReplyTo: string | null; references: string[] }): Promise<void> {
  const targets = new Set([...input.to, ...input.cc, ...input.bcc].map((a) => a.address.toLowerCase()));
  for (const address of targets) {
    const box = boxes.get(address);
    if (!box) continue;
    const copy = await store(box, 'inbox', { ...input, bcc: [] }, { from, internetMessageId, isDraft: false, isRead: false, ...thread });
    copy.attachments = input.attachments.map((a) => ({ ...a, id: `AAkAAtt${randomBytes(12).toString('base64url')}=` }));
  }
}
