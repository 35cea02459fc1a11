import { AppError } from '../../errors.js';
import type { OutgoingAttachment } from '../../domain/mail.js';
import type { GraphClient } from './client.js';

export interface UploadContext {
  client: GraphClient;
  /** https://<host>/v1.0/me or .../users/{id} */
  mailboxUrl: string;
  host: string;
  budgetMs: () => number;
}

/** Graph takes an attachment of up to 3 MB in a request; larger ones go through an upload session. */
export const INLINE_ATTACHMENT_MAX = 3 * 1024 * 1024;
/** Graph's largest attachment through an upload session. */
export const UPLOAD_ATTACHMENT_MAX = 150 * 1024 * 1024;
/** One PUT of an upload session: under Graph's 4 MB, a multiple of 320 KiB as its upload sessions like. */
const CHUNK = 9 * 320 * 1024;

/** A file attachment as Graph's JSON carries it (base64 contentBytes). */
export function fileAttachment(a: OutgoingAttachment): Record<string, unknown> {
  return {
    '@odata.type': '#microsoft.graph.fileAttachment',
    name: a.filename,
    contentType: a.contentType ?? 'application/octet-stream',
    contentBytes: a.content.toString('base64'),
  };
}

/**
 * Adds attachments to a draft: one of up to 3 MB with POST .../attachments, a larger one through an
 * upload session (createUploadSession, then PUTs of byte ranges to the URL Graph hands out, which carries
 * its own authorization: it gets no token, and its host passes the outbound policy).
 */
export async function attachToDraft(ctx: UploadContext, draftId: string, attachments: readonly OutgoingAttachment[]): Promise<void> {
  const base = `${ctx.mailboxUrl}/messages/${encodeURIComponent(draftId)}/attachments`;
  for (const a of attachments) {
    if (a.content.length <= INLINE_ATTACHMENT_MAX) {
      await ctx.client.json({ method: 'POST', url: new URL(base), body: fileAttachment(a), budgetMs: ctx.budgetMs(), item: 'message', what: 'add attachment' });
      continue;
    }
    if (a.content.length > UPLOAD_ATTACHMENT_MAX) {
      throw new AppError('MESSAGE_TOO_LARGE', `the attachment "${a.filename.slice(0, 100)}" has ${a.content.length} bytes; Microsoft Graph takes at most ${UPLOAD_ATTACHMENT_MAX} bytes (150 MB) per attachment`);
    }
    await upload(ctx, base, a);
  }
}

async function upload(ctx: UploadContext, base: string, a: OutgoingAttachment): Promise<void> {
  const session = await ctx.client.json({
    method: 'POST',
    url: new URL(`${base}/createUploadSession`),
    body: { AttachmentItem: { attachmentType: 'file', name: a.filename, size: a.content.length, contentType: a.contentType ?? 'application/octet-stream' } },
    budgetMs: ctx.budgetMs(),
    item: 'message',
    what: 'attachment upload session',
  });
  const raw = (session.body as { uploadUrl?: unknown } | undefined)?.uploadUrl;
  let url: URL;
  try {
    url = new URL(typeof raw === 'string' ? raw : '');
  } catch {
    throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${ctx.host}: the upload session came without an upload URL`);
  }
  const total = a.content.length;
  let offset = 0;
  // bounded: every round moves at least one byte forward, or stops
  for (let round = 0; offset < total; round++) {
    if (round > Math.ceil(total / CHUNK) * 2 + 2) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${ctx.host}: the attachment upload does not move forward`);
    const end = Math.min(offset + CHUNK, total);
    const answer = await ctx.client.json({
      method: 'PUT',
      url,
      preauthenticated: true,
      body: a.content.subarray(offset, end),
      headers: { 'content-range': `bytes ${offset}-${end - 1}/${total}` },
      budgetMs: ctx.budgetMs(),
      what: 'attachment upload',
    });
    if (answer.status === 201 || end === total) return;
    // Graph says where to go on; it may have kept less than was sent
    const next = (answer.body as { nextExpectedRanges?: unknown } | undefined)?.nextExpectedRanges;
    const start = Array.isArray(next) && typeof next[0] === 'string' ? /^(\d+)-/.exec(next[0])?.[1] : undefined;
    const at = start !== undefined ? Number(start) : end;
    if (!Number.isSafeInteger(at) || at <= offset || at > total) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${ctx.host}: the upload session expects an impossible range`);
    offset = at;
  }
}
