import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { SessionPool } from '../domain/pool.js';
import {
  BulkDeleteBody,
  BulkDeleteResultSchema,
  BulkMoveBody,
  BulkMoveResultSchema,
  BulkUpdateBody,
  BulkUpdateResultSchema,
  FlagChangeBody,
  MessageSummarySchema,
  MoveBody,
  MoveResultSchema,
} from '../schemas/message.js';
import { problemResponses } from '../schemas/problem.js';
import { jsonResponse, ref } from '../schemas/shared.js';
import { toFilter } from './messages.js';
import { MessageParams, NameParams, SESSION_ERRORS, sessionOf } from './mail-route.js';

export interface ChangeRoutesOptions {
  pool: SessionPool;
}

const BULK_ERRORS = {
  ...SESSION_ERRORS,
  502: 'The mail server failed midway (MAIL_*); `partial` says what was done before it stopped. Retrying is safe: the filter selects what is left.',
};

/**
 * Changing mail through a session (contract: "Change"): flags, moves and deletes, one message or every
 * message matching the loop's filters. Each is logged at info with its operation and count, never content.
 */
export const changeRoutes: FastifyPluginAsyncTypebox<ChangeRoutesOptions> = async (app, { pool }) => {
  app.patch(
    '/v1/sessions/:name/messages/:id',
    {
      schema: {
        operationId: 'updateMessage',
        tags: ['changes'],
        summary: 'Change the read or flagged status of a message',
        description: 'Automation Anywhere\'s "Change status". Answers the updated summary.',
        params: MessageParams,
        body: ref(FlagChangeBody),
        response: { 200: jsonResponse('The message after the change.', ref(MessageSummarySchema)), ...problemResponses(SESSION_ERRORS) },
      },
    },
    async (request) => sessionOf(pool, request).run('flagger', (f) => f.update(request.params.id, request.body), { operation: 'update', fields: () => ({ count: 1 }) }),
  );

  app.post(
    '/v1/sessions/:name/messages/:id/move',
    {
      schema: {
        operationId: 'moveMessage',
        tags: ['changes'],
        summary: 'Move a message to another folder',
        description: 'Answers the message\'s new id. Repeating a move whose answer was lost answers 404 MESSAGE_NOT_FOUND: the old id never names another message.',
        params: MessageParams,
        body: ref(MoveBody),
        response: { 200: jsonResponse('Moved.', ref(MoveResultSchema)), ...problemResponses(SESSION_ERRORS) },
      },
    },
    async (request) => sessionOf(pool, request).run('mover', (m) => m.move(request.params.id, request.body.to), { operation: 'move', fields: () => ({ count: 1 }) }),
  );

  app.delete(
    '/v1/sessions/:name/messages/:id',
    {
      schema: {
        operationId: 'deleteMessage',
        tags: ['changes'],
        summary: 'Delete a message',
        description:
          'Moves it to the mailbox\'s trash folder (IMAP \\Trash, EWS Deleted Items, Graph deleteditems) unless it is already there; with permanent=true, or where there is no trash (POP3), removes it for good. Repeating a delete whose answer was lost answers 404 MESSAGE_NOT_FOUND.',
        params: MessageParams,
        querystring: Type.Object({ permanent: Type.Optional(Type.Boolean({ default: false, description: 'Remove for good.' })) }, { additionalProperties: false }),
        response: { 204: Type.Null({ description: 'Deleted.' }), ...problemResponses(SESSION_ERRORS) },
      },
    },
    async (request, reply) => {
      const permanent = request.query.permanent ?? false;
      await sessionOf(pool, request).run('deleter', (d) => d.delete(request.params.id, { permanent }), { operation: 'delete', fields: () => ({ count: 1, permanent }) });
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/sessions/:name/messages/move',
    {
      schema: {
        operationId: 'moveMessages',
        tags: ['changes'],
        summary: 'Move every message matching the filters ("Move all")',
        description: 'Automation Anywhere\'s "Move all emails". Moves in one server operation where the protocol allows (IMAP MOVE, EWS MoveItem, Graph JSON batches); answers how many moved and, per message, its new id when the server tells it.',
        params: NameParams,
        body: ref(BulkMoveBody),
        response: { 200: jsonResponse('What was moved.', ref(BulkMoveResultSchema)), ...problemResponses(BULK_ERRORS) },
      },
    },
    async (request) => {
      const { folder = 'INBOX', where, to } = request.body;
      return sessionOf(pool, request).run('mover', (m) => m.moveMany(folder, toFilter(where), to), { operation: 'moveMany', fields: (r) => ({ count: r.moved }) });
    },
  );

  app.post(
    '/v1/sessions/:name/messages/delete',
    {
      schema: {
        operationId: 'deleteMessages',
        tags: ['changes'],
        summary: 'Delete every message matching the filters',
        description: 'Automation Anywhere\'s "Delete all emails". By default the messages go to the Trash (Deleted Items); permanent=true removes them for good.',
        params: NameParams,
        body: ref(BulkDeleteBody),
        response: { 200: jsonResponse('How many were deleted.', ref(BulkDeleteResultSchema)), ...problemResponses(BULK_ERRORS) },
      },
    },
    async (request) => {
      const { folder = 'INBOX', where, permanent = false } = request.body;
      return sessionOf(pool, request).run('deleter', (d) => d.deleteMany(folder, toFilter(where), { permanent }), {
        operation: 'deleteMany',
        fields: (r) => ({ count: r.deleted, permanent }),
      });
    },
  );

  app.post(
    '/v1/sessions/:name/messages/update',
    {
      schema: {
        operationId: 'updateMessages',
        tags: ['changes'],
        summary: 'Change the read or flagged status of every message matching the filters',
        description: 'Automation Anywhere\'s "Change status" over a whole folder or a filtered set, in as few server round trips as the protocol allows.',
        params: NameParams,
        body: ref(BulkUpdateBody),
        response: { 200: jsonResponse('How many were changed.', ref(BulkUpdateResultSchema)), ...problemResponses(BULK_ERRORS) },
      },
    },
    async (request) => {
      // the schema requires seen or flagged
      const { folder = 'INBOX', where, seen, flagged } = request.body;
      const change = { ...(seen !== undefined ? { seen } : {}), ...(flagged !== undefined ? { flagged } : {}) };
      return sessionOf(pool, request).run('flagger', (f) => f.updateMany(folder, toFilter(where), change), { operation: 'updateMany', fields: (r) => ({ count: r.updated }) });
    },
  );
};
