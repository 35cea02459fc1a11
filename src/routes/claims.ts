import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ClaimService } from '../domain/claims.js';
import type { SessionPool } from '../domain/pool.js';
import { SessionName } from '../schemas/common.js';
import { AckBody, AckResultSchema, ClaimBody, ClaimId, ClaimSchema, ExtendBody, ExtendResultSchema } from '../schemas/message.js';
import { problemResponses } from '../schemas/problem.js';
import { jsonResponse, ref } from '../schemas/shared.js';
import { toFilter } from './messages.js';
import { NameParams, SESSION_ERRORS, sessionOf } from './mail-route.js';

export interface ClaimRoutesOptions {
  pool: SessionPool;
  claims: ClaimService;
}

const ClaimParams = Type.Object({ name: SessionName, claim: ClaimId });
const CLAIM_ERRORS = { ...SESSION_ERRORS, 404: 'SESSION_NOT_FOUND, or CLAIM_NOT_FOUND: the claim expired, was released or fully acknowledged.' };

/**
 * Work claims (see domain/claims.ts): lease messages, acknowledge them done (with follow-ups), extend or
 * release the lease. What a claim promises is stated in the README's "Work claims".
 */
export const claimRoutes: FastifyPluginAsyncTypebox<ClaimRoutesOptions> = async (app, { pool, claims }) => {
  app.post(
    '/v1/sessions/:name/claims',
    {
      schema: {
        operationId: 'createClaim',
        tags: ['claims'],
        summary: 'Lease messages to work on, that no other claim holds and none has finished',
        description: 'The fleet pattern: each bot claims a batch, works it, then acknowledges it. A message is handed to one claim at a time; a lease that expires gives its messages back. An empty list means there is nothing to do now.',
        params: NameParams,
        body: ref(ClaimBody),
        response: { 201: jsonResponse('The claim and its messages (possibly none).', ref(ClaimSchema)), ...problemResponses(SESSION_ERRORS) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const result = await claims.claim(sessionOf(pool, request), {
        folder: b.folder ?? 'INBOX',
        where: toFilter(b.where ?? {}),
        max: b.max ?? 10,
        leaseSeconds: b.leaseSeconds ?? 300,
      });
      return reply.code(201).send(result);
    },
  );

  app.post(
    '/v1/sessions/:name/claims/:claim/ack',
    {
      schema: {
        operationId: 'acknowledgeClaim',
        tags: ['claims'],
        summary: 'Mark claimed messages done, then optionally mark read, flag, move or delete them',
        description: 'Acknowledged messages are never claimed again. The follow-up change (then) runs per message; the ones that fail are listed, and stay acknowledged.',
        params: ClaimParams,
        body: ref(AckBody),
        response: { 200: jsonResponse('What was acknowledged, and what failed.', ref(AckResultSchema)), ...problemResponses(CLAIM_ERRORS) },
      },
    },
    async (request) => claims.acknowledge(sessionOf(pool, request), request.params.claim, request.body.ids, request.body.then ?? {}),
  );

  app.post(
    '/v1/sessions/:name/claims/:claim/extend',
    {
      schema: {
        operationId: 'extendClaim',
        tags: ['claims'],
        summary: 'Renew a claim\'s lease',
        description: 'For work that takes longer than the lease. A claim that has already expired answers 404 CLAIM_NOT_FOUND.',
        params: ClaimParams,
        body: ref(ExtendBody),
        response: { 200: jsonResponse('The new expiry.', ref(ExtendResultSchema)), ...problemResponses(CLAIM_ERRORS) },
      },
    },
    async (request) => claims.extend(sessionOf(pool, request), request.params.claim, request.body.leaseSeconds),
  );

  app.delete(
    '/v1/sessions/:name/claims/:claim',
    {
      schema: {
        operationId: 'releaseClaim',
        tags: ['claims'],
        summary: 'Give a claim\'s unacknowledged messages back',
        description: 'Its messages that were not acknowledged can be claimed again at once, by this bot or another.',
        params: ClaimParams,
        response: { 204: Type.Null({ description: 'Released.' }), ...problemResponses(CLAIM_ERRORS) },
      },
    },
    async (request, reply) => {
      await claims.release(sessionOf(pool, request), request.params.claim);
      return reply.code(204).send(null);
    },
  );
};
