import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { Type, type Static } from 'typebox';
import type { EventHub } from '../domain/events.js';
import type { SessionPool } from '../domain/pool.js';
import type { Download, ListQuery, MessageFilter } from '../domain/mail.js';
import { SessionName } from '../schemas/common.js';
import {
  AttachmentId,
  MessageId,
  FolderListSchema,
  ListMessagesQuery,
  MessageDetailSchema,
  MessagePageSchema,
  filterFields,
} from '../schemas/message.js';
import { problemResponses } from '../schemas/problem.js';
import { jsonResponse, ref } from '../schemas/shared.js';
import { contentDisposition } from './content-disposition.js';
import { MessageParams, NameParams, SESSION_ERRORS, sessionOf } from './mail-route.js';

export interface MessageRoutesOptions {
  pool: SessionPool;
  events: EventHub;
}

/** "a;b; c" -> ["a", "b", "c"]: the alternatives of a filter, as in Automation Anywhere's loop. */
function alternatives(text: string | undefined): string[] {
  return (text ?? '').split(';').map((s) => s.trim()).filter((s) => s.length > 0);
}

/** ISO 8601 instant or date (its start in UTC); the schema's pattern has checked the shape. */
function instant(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const at = new Date(/T/.test(text) ? text : `${text}T00:00:00Z`);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

type FilterInput = { [K in keyof typeof filterFields]?: Static<(typeof filterFields)[K]> };

/** The `where` of the loop's filters, as the domain takes it. */
export function toFilter(input: FilterInput): MessageFilter {
  const since = instant(input.since);
  const before = instant(input.before);
  return {
    status: input.status ?? 'all',
    subject: alternatives(input.subject),
    from: alternatives(input.from),
    ...(since ? { since } : {}),
    ...(before ? { before } : {}),
  };
}

/** Resolves when the session publishes new mail (or a folder reset), when `ms` pass, or when the caller goes away. */
function nextEvent(events: EventHub, owner: string, session: string, ms: number, raw: IncomingMessage): Promise<'event' | 'timeout' | 'closed'> {
  return new Promise((resolve) => {
    const finish = (why: 'event' | 'timeout' | 'closed') => {
      clearTimeout(timer);
      unsubscribe();
      raw.socket?.off('close', onClose);
      resolve(why);
    };
    const onClose = () => finish('closed');
    const timer = setTimeout(() => finish('timeout'), ms);
    const unsubscribe = events.subscribe(owner, { session }, (event) => {
      if (event.type === 'message.new' || event.type === 'mailbox.reset') finish('event');
    });
    raw.socket?.once('close', onClose);
  });
}

function sendDownload(reply: FastifyReply, download: Download, disposition: 'inline' | 'attachment', fallbackName: string) {
  reply.header('content-type', download.contentType);
  reply.header('content-disposition', contentDisposition(disposition, download.filename ?? fallbackName));
  if (download.size !== null) reply.header('content-length', String(download.size));
  return reply.send(download.stream);
}

/**
 * Reading mail through a session (contract: "Read"). Every handler finds the caller's session and runs
 * one operation of its `reader` capability; nothing here knows a protocol.
 */
export const messageRoutes: FastifyPluginAsyncTypebox<MessageRoutesOptions> = async (app, { pool, events }) => {
  app.get(
    '/v1/sessions/:name/folders',
    {
      schema: {
        operationId: 'listFolders',
        tags: ['messages'],
        summary: 'List the folders of the mailbox',
        description: 'Every folder with its path, delimiter and special use. POP3 has only INBOX.',
        params: NameParams,
        response: { 200: jsonResponse('The folders.', ref(FolderListSchema)), ...problemResponses(SESSION_ERRORS) },
      },
    },
    async (request) => ({ folders: await sessionOf(pool, request).run('reader', (r) => r.folders()) }),
  );

  app.get(
    '/v1/sessions/:name/messages',
    {
      schema: {
        operationId: 'listMessages',
        tags: ['messages'],
        summary: 'List messages with the loop\'s filters, a page at a time',
        description:
          'Automation Anywhere\'s "Loop: for each mail in the mailbox": a page of summaries matching every filter given, newest first by default. Pages stay correct while new mail arrives: follow `nextCursor` until it is null. Reading never changes the read status.',
        params: NameParams,
        querystring: ListMessagesQuery,
        response: { 200: jsonResponse('A page of messages.', ref(MessagePageSchema)), ...problemResponses({ 400: 'VALIDATION_ERROR: a filter, limit or cursor is not valid.', ...SESSION_ERRORS }) },
      },
    },
    async (request) => {
      const q = request.query;
      const query: ListQuery = {
        ...toFilter(q),
        folder: q.folder ?? 'INBOX',
        limit: q.limit ?? 50,
        order: q.order ?? 'newest',
        includeText: q.include === 'text',
        ...(q.cursor ? { cursor: q.cursor } : {}),
      };
      const session = sessionOf(pool, request);
      const first = await session.run('reader', (r) => r.list(query));
      if (!q.wait || first.messages.length > 0 || query.cursor) return first;
      // long-poll: list again when the session reports new mail (or its folder was reset), until the wait ends;
      // the session is not held meanwhile
      const deadline = Date.now() + q.wait * 1000;
      while (Date.now() < deadline) {
        const woke = await nextEvent(events, session.owner, session.name, deadline - Date.now(), request.raw);
        if (woke === 'closed') return first;
        const page = await session.run('reader', (r) => r.list(query));
        if (page.messages.length > 0 || woke === 'timeout') return page;
      }
      return first;
    },
  );

  app.get(
    '/v1/sessions/:name/messages/:id',
    {
      schema: {
        operationId: 'getMessage',
        tags: ['messages'],
        summary: 'Read one message: text, HTML, headers and the list of attachments',
        description: 'By default reading changes nothing; markAsRead=true sets the read status, as Automation Anywhere\'s loop does.',
        params: MessageParams,
        querystring: Type.Object(
          { markAsRead: Type.Optional(Type.Boolean({ default: false, description: 'Mark the message read (not on POP3).' })) },
          { additionalProperties: false },
        ),
        response: { 200: jsonResponse('The message.', ref(MessageDetailSchema)), ...problemResponses(SESSION_ERRORS) },
      },
    },
    async (request) => sessionOf(pool, request).run('reader', (r) => r.get(request.params.id, { markAsRead: request.query.markAsRead ?? false })),
  );

  app.get(
    '/v1/sessions/:name/messages/:id/raw',
    {
      schema: {
        operationId: 'getMessageRaw',
        tags: ['messages'],
        summary: 'Save the message as an .eml file (message/rfc822), streamed',
        description: 'Automation Anywhere\'s "Save email". The session is busy while the message streams; other calls on it wait (at most MSB_LOCK_TIMEOUT_MS, then SESSION_BUSY).',
        params: MessageParams,
        produces: ['message/rfc822'],
        response: {
          200: { description: 'The message as the server holds it.', content: { 'message/rfc822': { schema: Type.String({ format: 'binary' }) } } },
          ...problemResponses(SESSION_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const download = await sessionOf(pool, request).download('reader', (r) => r.raw(request.params.id));
      return sendDownload(reply, download, 'attachment', `${request.params.id.slice(0, 64)}.eml`);
    },
  );

  app.get(
    '/v1/sessions/:name/messages/:id/attachments/:attachmentId',
    {
      schema: {
        operationId: 'getAttachment',
        tags: ['messages'],
        summary: 'Save one attachment, streamed',
        description: 'Automation Anywhere\'s "Save attachments": the decoded bytes with their Content-Type and a Content-Disposition that carries the file name (RFC 6266).',
        params: Type.Object({ name: SessionName, id: MessageId, attachmentId: AttachmentId }),
        response: {
          // any media type: the attachment's own (application/pdf, image/png, message/rfc822...)
          200: { description: 'The attachment\'s bytes, with its own Content-Type.', content: { '*/*': { schema: Type.String({ format: 'binary' }) } } },
          ...problemResponses(SESSION_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const { id, attachmentId } = request.params;
      const download = await sessionOf(pool, request).download('reader', (r) => r.attachment(id, attachmentId));
      return sendDownload(reply, download, 'attachment', `attachment-${attachmentId}`);
    },
  );
};
