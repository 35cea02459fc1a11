import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import type { Config } from '../config.js';
import type { IdempotencyStore } from '../domain/idempotency.js';
import type { MessageSender, OutgoingAttachment, Recipient, SendResult } from '../domain/mail.js';
import type { SessionPool } from '../domain/pool.js';
import type { SendQuota } from '../domain/send-quota.js';
import { AppError } from '../errors.js';
import { parseRecipients } from '../mime/addresses.js';
import { principalOf } from '../plugins/auth.js';
import { problemResponses } from '../schemas/problem.js';
import { jsonResponse, ref } from '../schemas/shared.js';
import { AttachmentBody, ForwardBody, IdempotencyKeyHeader, ReplyBody, SendBody, SendResultSchema } from '../schemas/send.js';
import { MessageParams, NameParams, SESSION_ERRORS, sessionOf } from './mail-route.js';

export interface SendRoutesOptions {
  pool: SessionPool;
  config: Config;
  idempotency: IdempotencyStore;
  quota: SendQuota;
}

const SEND_ERRORS = {
  ...SESSION_ERRORS,
  409: 'SMTP_NOT_CONFIGURED (an IMAP/POP3 session created without smtp), IDEMPOTENCY_KEY_REUSED, SESSION_NOT_READY or AUTHORIZATION_REQUIRED.',
  413: 'MESSAGE_TOO_LARGE: text, HTML and attachments exceed MSB_SEND_MAX_BYTES.',
  422: 'SMTP_AUTH_FAILED, SMTP_REJECTED (with the server\'s reply code), or OPERATION_NOT_SUPPORTED.',
  429: 'SEND_RATE_LIMITED: more than MSB_SEND_PER_MINUTE messages this minute; Retry-After says when.',
  502: 'SMTP_UNAVAILABLE or a mail-server failure: the message was not reported sent.',
};

function attachmentsOf(list: Static<typeof AttachmentBody>[] | undefined): OutgoingAttachment[] {
  return (list ?? []).map((a) => ({ filename: a.filename, contentType: a.contentType ?? null, content: Buffer.from(a.content, 'base64') }));
}

/** Refuses a message over the size or recipient limits before anything is sent. */
function checkLimits(config: Config, recipients: Recipient[], parts: { text?: string | undefined; html?: string | undefined; attachments: OutgoingAttachment[] }): void {
  if (recipients.length > config.MSB_SEND_MAX_RECIPIENTS) {
    const message = `has ${recipients.length} recipients; at most ${config.MSB_SEND_MAX_RECIPIENTS} (MSB_SEND_MAX_RECIPIENTS)`;
    throw new AppError('VALIDATION_ERROR', `/body ${message}`, { errors: [{ path: '/body', message }] });
  }
  const bytes =
    Buffer.byteLength(parts.text ?? '') + Buffer.byteLength(parts.html ?? '') + parts.attachments.reduce((sum, a) => sum + a.content.length, 0);
  if (bytes > config.MSB_SEND_MAX_BYTES) {
    throw new AppError('MESSAGE_TOO_LARGE', `the message holds ${bytes} bytes; at most ${config.MSB_SEND_MAX_BYTES} (MSB_SEND_MAX_BYTES)`);
  }
}

/**
 * Sending through a session (contract: "Send"): new mail, replies and forwards. With an Idempotency-Key a
 * retry answers the first result (header Idempotent-Replayed: true) instead of sending twice; the key is
 * scoped to the caller and the session.
 */
export const sendRoutes: FastifyPluginAsyncTypebox<SendRoutesOptions> = async (app, { pool, config, idempotency, quota }) => {
  // base64 makes attachments a third larger; the JSON around them is small
  const bodyLimit = Math.ceil((config.MSB_SEND_MAX_BYTES * 4) / 3) + 1_048_576;

  async function send(
    request: FastifyRequest<{ Params: { name: string; id?: string }; Headers: Static<typeof IdempotencyKeyHeader> }>,
    reply: FastifyReply,
    operation: string,
    op: (sender: MessageSender) => Promise<SendResult>,
  ) {
    const session = sessionOf(pool, request);
    const principal = principalOf(request).name;
    const run = () => {
      quota.take(principal);
      return session.run('sender', op, { operation, fields: (r) => ({ accepted: r.accepted.length, rejected: r.rejected.length }) });
    };
    const key = request.headers['idempotency-key'];
    if (key === undefined) return reply.code(201).send(await run());
    const scope = `${principal}\u0000${session.name}\u0000${key}`;
    const fingerprint = createHash('sha256').update(`${operation}\u0000${request.params.id ?? ''}\u0000${JSON.stringify(request.body)}`).digest('hex');
    const { result, replayed } = await idempotency.run(scope, fingerprint, run);
    if (replayed) reply.header('idempotent-replayed', 'true');
    return reply.code(201).send(result);
  }

  app.post(
    '/v1/sessions/:name/send',
    {
      bodyLimit,
      schema: {
        operationId: 'sendMessage',
        tags: ['send'],
        summary: 'Send a new message',
        description:
          'Automation Anywhere\'s "Send". IMAP/POP3 sessions send over the SMTP server given at create (smtp), then keep a copy in the Sent folder unless smtp.saveToSent is false; EWS and Outlook sessions send through Exchange / Graph, which keeps the copy.',
        params: NameParams,
        headers: IdempotencyKeyHeader,
        body: ref(SendBody),
        response: { 201: jsonResponse('The server took the message.', ref(SendResultSchema)), ...problemResponses(SEND_ERRORS) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const to = parseRecipients(b.to, '/body/to');
      const cc = parseRecipients(b.cc, '/body/cc');
      const bcc = parseRecipients(b.bcc, '/body/bcc');
      const attachments = attachmentsOf(b.attachments);
      checkLimits(config, [...to, ...cc, ...bcc], { text: b.text, html: b.html, attachments });
      const message = { to, cc, bcc, subject: b.subject, text: b.text ?? null, html: b.html ?? null, attachments };
      return send(request, reply, 'send', (sender) => sender.send(message));
    },
  );

  app.post(
    '/v1/sessions/:name/messages/:id/reply',
    {
      bodyLimit,
      schema: {
        operationId: 'replyToMessage',
        tags: ['send'],
        summary: 'Reply to a message (or reply all)',
        description:
          'Automation Anywhere\'s "Reply": to the sender, or with replyAll to every recipient but this mailbox; threaded (In-Reply-To, References), "Re:" once, the original quoted below the new text.',
        params: MessageParams,
        headers: IdempotencyKeyHeader,
        body: ref(ReplyBody),
        response: { 201: jsonResponse('The server took the reply.', ref(SendResultSchema)), ...problemResponses(SEND_ERRORS) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const attachments = attachmentsOf(b.attachments);
      checkLimits(config, [], { text: b.text, html: b.html, attachments });
      const req = { text: b.text ?? null, html: b.html ?? null, replyAll: b.replyAll ?? false, attachments };
      return send(request, reply, 'reply', (sender) => sender.reply(request.params.id, req));
    },
  );

  app.post(
    '/v1/sessions/:name/messages/:id/forward',
    {
      bodyLimit,
      schema: {
        operationId: 'forwardMessage',
        tags: ['send'],
        summary: 'Forward a message with its attachments',
        description: 'Automation Anywhere\'s "Forward": "Fw:" once, the original and its attachments below the new text.',
        params: MessageParams,
        headers: IdempotencyKeyHeader,
        body: ref(ForwardBody),
        response: { 201: jsonResponse('The server took the message.', ref(SendResultSchema)), ...problemResponses(SEND_ERRORS) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const to = parseRecipients(b.to, '/body/to');
      const cc = parseRecipients(b.cc, '/body/cc');
      const bcc = parseRecipients(b.bcc, '/body/bcc');
      const attachments = attachmentsOf(b.attachments);
      checkLimits(config, [...to, ...cc, ...bcc], { text: b.text, html: b.html, attachments });
      const req = { to, cc, bcc, text: b.text ?? null, html: b.html ?? null, attachments };
      return send(request, reply, 'forward', (sender) => sender.forward(request.params.id, req));
    },
  );
};
