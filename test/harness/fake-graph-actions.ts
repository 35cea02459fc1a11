// The fake Graph's actions on messages, as Graph v1.0 answers them: POST .../move (201 with the message,
// a new REST id unless immutable ids were asked), DELETE (to Deleted Items; from there out of sight),
// POST .../permanentDelete (204), sendMail (202, no body), drafts (POST /messages), createReply /
// createReplyAll / createForward (201 with the draft), reply / replyAll / forward (202), POST .../send
// of a draft (202), file attachments (POST .../attachments, at most 3 MB) and upload sessions for larger
// ones (createUploadSession, then PUT of byte ranges to a pre-authenticated URL that must get no
// Authorization header). Sent mail lands in Sent Items and in the Inbox of every recipient that is a
// mailbox of the fake; each send is recorded with its request body.
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { deliver, fileAttachment, messageInput, newInternetMessageId, response, store, type MessageInput, type SentRecord } from './fake-graph-compose.js';
import { graphError, messageJson, ODataError, parseBody, type Reply, type Representation } from './fake-graph-json.js';
import type { FakeAddress, FakeAttachment, FakeMailbox, FakeMessage } from './fake-graph-mailbox.js';

export interface UploadSession {
  mailbox: FakeMailbox;
  messageId: string;
  name: string;
  contentType: string;
  isInline: boolean;
  size: number;
  received: Buffer[];
  receivedBytes: number;
  token: string;
}

export interface ActionContext {
  mb: FakeMailbox;
  boxes: Map<string, FakeMailbox>;
  rep: Representation;
  origin: string;
  sent: SentRecord[];
  uploads: Map<string, UploadSession>;
}

/** Graph's limit on a JSON request body (sendMail, POST attachments...). */
export const REQUEST_MAX = 4 * 1024 * 1024;
const UPLOAD_MAX = 150 * 1024 * 1024;

/** What an action needs of the token: read, change (Mail.ReadWrite) or send (Mail.Send). */
export function permissionOf(method: string, parts: string[]): 'read' | 'write' | 'send' {
  if (method === 'GET') return 'read';
  const last = parts.at(-1)?.toLowerCase();
  if (method === 'POST' && (last === 'sendmail' || last === 'send' || last === 'reply' || last === 'replyall' || last === 'forward')) return 'send';
  return 'write';
}

function selfAddress(mb: FakeMailbox): FakeAddress {
  return { name: mb.address.split('@')[0]!, address: mb.address };
}

function inputOf(m: FakeMessage): MessageInput {
  return { subject: m.subject ?? '', body: m.body, to: m.to, cc: m.cc, bcc: m.bcc, replyTo: m.replyTo, attachments: m.attachments };
}

function record(ctx: ActionContext, action: SentRecord['action'], request: unknown, internetMessageId: string, copy: FakeMessage | undefined): void {
  ctx.sent.push({ mailbox: ctx.mb.address, action, request, internetMessageId, ...(copy ? { copy } : {}) });
}

/** POST /sendMail: { message, saveToSentItems } -> 202 without a body. */
export async function sendMail(ctx: ActionContext, text: string): Promise<Reply> {
  if (Buffer.byteLength(text) > REQUEST_MAX) return graphError(413, 'RequestEntityTooLarge', 'The request is larger than 4 MB: use an upload session for large attachments.');
  const body = parseBody(text);
  if (typeof body.message !== 'object' || body.message === null) return graphError(400, 'ErrorInvalidParameter', "The value of the parameter 'Message' is empty.");
  const input = messageInput(body.message, { recipients: true });
  const internetMessageId = newInternetMessageId();
  const from = selfAddress(ctx.mb);
  const copy = body.saveToSentItems === false ? undefined : await store(ctx.mb, 'sentitems', input, { from, internetMessageId, isDraft: false, isRead: true });
  await deliver(ctx.boxes, from, input, internetMessageId, { inReplyTo: null, references: [] });
  record(ctx, 'sendMail', body, internetMessageId, copy);
  return { status: 202 };
}

/** POST /messages: a draft in Drafts -> 201 with it. */
export async function createDraft(ctx: ActionContext, text: string): Promise<Reply> {
  if (Buffer.byteLength(text) > REQUEST_MAX) return graphError(413, 'RequestEntityTooLarge', 'The request is larger than 4 MB.');
  const input = messageInput(parseBody(text), { recipients: false });
  const draft = await store(ctx.mb, 'drafts', input, { from: selfAddress(ctx.mb), internetMessageId: newInternetMessageId(), isDraft: true, isRead: true });
  return { status: 201, json: messageJson(ctx.mb, draft, ctx.rep) };
}

/** POST /messages/{id}/{action}: the actions on one message. */
export async function messageAction(ctx: ActionContext, m: FakeMessage, action: string, text: string): Promise<Reply> {
  const mb = ctx.mb;
  const body = parseBody(text);
  switch (action.toLowerCase()) {
    case 'move': {
      const destination = typeof body.destinationId === 'string' ? mb.folder(body.destinationId) : undefined;
      if (!destination || destination.id === mb.rootId) return graphError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
      mb.move(m.immutableId, destination.id);
      return { status: 201, json: messageJson(mb, m, ctx.rep) };
    }
    case 'permanentdelete':
      mb.remove(m);
      return { status: 204 };
    case 'reply':
    case 'replyall':
    case 'forward':
    case 'createreply':
    case 'createreplyall':
    case 'createforward':
      return respond(ctx, m, action.toLowerCase().replace(/^create/, ''), action.toLowerCase().startsWith('create'), body);
    case 'send': {
      if (!m.isDraft) return graphError(400, 'ErrorInvalidOperation', 'Only a draft can be sent.');
      const input = inputOf(m);
      if (input.to.length + input.cc.length + input.bcc.length === 0) return graphError(400, 'ErrorInvalidRecipients', 'At least one recipient is required, but none were found.');
      m.isDraft = false;
      mb.move(m.immutableId, 'sentitems');
      const threading = draftThreads.get(m.immutableId) ?? { inReplyTo: null, references: [] };
      await deliver(ctx.boxes, selfAddress(mb), input, m.internetMessageId ?? newInternetMessageId(), threading);
      const original = threading.original ? mb.find(threading.original.id) : undefined;
      if (original) {
        original.lastVerb = threading.original!.verb;
        mb.touch(original);
      }
      record(ctx, 'send', body, m.internetMessageId ?? '', m);
      return { status: 202 };
    }
    default:
      return graphError(400, 'BadRequest', `Resource not found for the segment '${action}'.`);
  }
}

/** The threading headers of drafts made by createReply / createReplyAll, for their send. */
const draftThreads = new Map<string, { inReplyTo: string | null; references: string[]; original?: { id: string; verb: number } }>();

/** reply / replyAll / forward (202, sent at once) and their create* forms (201, a draft). */
async function respond(ctx: ActionContext, original: FakeMessage, kind: string, draft: boolean, body: Record<string, unknown>): Promise<Reply> {
  if (body.comment !== undefined && typeof body.comment !== 'string') return graphError(400, 'RequestBodyRead', 'comment must be a string.');
  const extra = {
    ...(body.toRecipients !== undefined ? { toRecipients: messageInput({ toRecipients: body.toRecipients }, { recipients: false }).to } : {}),
    ...(body.message !== undefined ? { message: messageInput(body.message, { recipients: false }) } : {}),
  };
  const k = kind === 'replyall' ? 'replyAll' : (kind as 'reply' | 'forward');
  const composed = response(ctx.mb, original, k, (body.comment as string | undefined) ?? '', extra);
  if (k === 'forward' && composed.input.to.length + composed.input.cc.length + composed.input.bcc.length === 0 && !draft) {
    return graphError(400, 'ErrorInvalidRecipients', 'At least one recipient is required, but none were found.');
  }
  const from = selfAddress(ctx.mb);
  const internetMessageId = newInternetMessageId();
  const thread = { inReplyTo: composed.inReplyTo, references: composed.references };
  if (draft) {
    const m = await store(ctx.mb, 'drafts', composed.input, { from, internetMessageId, isDraft: true, isRead: true, ...thread });
    draftThreads.set(m.immutableId, { ...thread, original: { id: original.immutableId, verb: verbOf(k) } });
    return { status: 201, json: messageJson(ctx.mb, m, ctx.rep) };
  }
  const copy = await store(ctx.mb, 'sentitems', composed.input, { from, internetMessageId, isDraft: false, isRead: true, ...thread });
  await deliver(ctx.boxes, from, composed.input, internetMessageId, thread);
  original.lastVerb = verbOf(k);
  ctx.mb.touch(original);
  record(ctx, k, body, internetMessageId, copy);
  return { status: 202 };
}

/** PR_LAST_VERB_EXECUTED after a reply (102), reply all (103), forward (104). */
function verbOf(kind: 'reply' | 'replyAll' | 'forward'): number {
  return kind === 'reply' ? 102 : kind === 'replyAll' ? 103 : 104;
}

/** DELETE /messages/{id}: to Deleted Items; a message already there goes out of sight (Recoverable Items). */
export function deleteMessage(ctx: ActionContext, m: FakeMessage): Reply {
  const trash = ctx.mb.folder('deleteditems')!;
  if (m.folderId === trash.id) ctx.mb.remove(m);
  else ctx.mb.move(m.immutableId, trash.id);
  return { status: 204 };
}

/** POST /messages/{id}/attachments: one file attachment of at most 3 MB. */
export function addAttachment(ctx: ActionContext, m: FakeMessage, text: string): Reply {
  if (Buffer.byteLength(text) > REQUEST_MAX) return graphError(413, 'RequestEntityTooLarge', 'The request is larger than 4 MB: use an upload session.');
  const a = fileAttachment(parseBody(text));
  m.attachments.push(a);
  ctx.mb.touch(m);
  return { status: 201, json: { '@odata.type': '#microsoft.graph.fileAttachment', id: a.id, name: a.name, contentType: a.contentType, size: a.bytes.length, isInline: a.isInline } };
}

/** POST /messages/{id}/attachments/createUploadSession: { AttachmentItem: { attachmentType, name, size } }. */
export function createUploadSession(ctx: ActionContext, m: FakeMessage, text: string): Reply {
  const item = parseBody(text).AttachmentItem as { attachmentType?: unknown; name?: unknown; size?: unknown; contentType?: unknown; isInline?: unknown } | undefined;
  if (item?.attachmentType !== 'file') return graphError(400, 'ErrorInvalidRequest', 'AttachmentItem.attachmentType must be "file".');
  if (typeof item.name !== 'string' || !Number.isInteger(item.size) || (item.size as number) < 1 || (item.size as number) > UPLOAD_MAX) {
    return graphError(400, 'ErrorInvalidRequest', 'AttachmentItem needs a name and a size of 1 byte to 150 MB.');
  }
  const id = randomBytes(12).toString('hex');
  const token = randomBytes(24).toString('base64url');
  ctx.uploads.set(id, {
    mailbox: ctx.mb,
    messageId: m.immutableId,
    name: item.name,
    contentType: typeof item.contentType === 'string' ? item.contentType : 'application/octet-stream',
    isInline: item.isInline === true,
    size: item.size as number,
    received: [],
    receivedBytes: 0,
    token,
  });
  return {
    status: 201,
    json: {
      '@odata.context': `${ctx.origin}/v1.0/$metadata#microsoft.graph.uploadSession`,
      uploadUrl: `${ctx.origin}/upload/AttachmentSessions('${id}')?authtoken=${token}`,
      expirationDateTime: new Date(Date.now() + 15 * 60_000).toISOString(),
      nextExpectedRanges: ['0-'],
    },
  };
}

/** PUT of one byte range to an upload URL: 200 with the next expected range, 201 once complete. */
export function uploadChunk(uploads: Map<string, UploadSession>, url: URL, headers: IncomingHttpHeaders, bytes: Buffer): Reply {
  const id = /^\/upload\/AttachmentSessions\('([0-9a-f]+)'\)$/.exec(url.pathname)?.[1];
  const session = id ? uploads.get(id) : undefined;
  if (!session || url.searchParams.get('authtoken') !== session.token) return graphError(404, 'ErrorItemNotFound', 'The upload session was not found or has expired.');
  // the URL is its own authorization; a bearer token sent along is refused, as Outlook does
  if (headers.authorization) return graphError(401, 'InvalidAudienceForResource', 'The upload URL is pre-authenticated: send no Authorization header.');
  const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(headers['content-range'] ?? ''));
  if (!range) return graphError(400, 'ErrorInvalidRequest', 'Content-Range is missing or malformed.');
  const [from, to, total] = [Number(range[1]), Number(range[2]), Number(range[3])];
  if (from !== session.receivedBytes || to - from + 1 !== bytes.length || total !== session.size || to >= total) {
    return graphError(416, 'ErrorInvalidRange', `The range does not continue the upload at byte ${session.receivedBytes}.`);
  }
  session.received.push(bytes);
  session.receivedBytes += bytes.length;
  if (session.receivedBytes < session.size) {
    return { status: 200, json: { expirationDateTime: new Date(Date.now() + 15 * 60_000).toISOString(), nextExpectedRanges: [`${session.receivedBytes}-`] } };
  }
  uploads.delete(id!);
  const m = session.mailbox.find(session.messageId);
  if (!m) return graphError(404, 'ErrorItemNotFound', 'The message of the upload session is gone.');
  const attachment: FakeAttachment = {
    id: `AAkAAtt${randomBytes(12).toString('base64url')}=`,
    kind: 'file',
    name: session.name,
    contentType: session.contentType,
    isInline: session.isInline,
    contentId: null,
    bytes: Buffer.concat(session.received),
  };
  m.attachments.push(attachment);
  session.mailbox.touch(m);
  return { status: 201, headers: { location: `${url.origin}/v1.0/users('${session.mailbox.address}')/messages('${m.immutableId}')/attachments('${attachment.id}')` } };
}

export { ODataError };
