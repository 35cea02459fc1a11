import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { principalOf } from '../plugins/auth.js';
import type { SecretStore } from '../security/secret-store.js';
import type { OutboundPolicy } from '../security/outbound-policy.js';
import { prepareSession } from '../kinds/prepare-session.js';
import type { SessionPool } from '../domain/pool.js';
import { CreateSessionBody } from '../kinds/index.js';
import type { KindServices } from '../kinds/kind.js';
import { SessionName } from '../schemas/common.js';
import { codesByStatus, problemResponses } from '../schemas/problem.js';
import { SessionListSchema, SessionSchema } from '../schemas/session.js';
import { jsonResponse, ref } from '../schemas/shared.js';

export interface SessionRoutesOptions {
  pool: SessionPool;
  outbound: OutboundPolicy;
  config: Config;
  services: KindServices;
  secrets: SecretStore;
}

/** Whose sessions a request acts on: its own, or, for an admin, the `owner` it names. */
function ownerOf(request: FastifyRequest, owner: string | undefined): string {
  if (owner === undefined || owner === principalOf(request).name) return principalOf(request).name;
  if (principalOf(request).role !== 'admin') throw new AppError('FORBIDDEN', 'only an admin key may act on another principal\'s sessions');
  return owner;
}

const NameParams = Type.Object({ name: SessionName });
const OwnerQuery = {
  owner: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'Admin only: the principal whose session this is (default: the caller).' })),
};
const NAME_ERRORS = {
  400: 'VALIDATION_ERROR: the name is not a valid session name.',
  403: 'FORBIDDEN: owner names another principal and the key is not an admin key.',
  404: 'SESSION_NOT_FOUND: no session with this name.',
};

const imapExample = {
  name: 'invoices',
  type: 'imap',
  host: 'mail.example.com',
  port: 993,
  secure: true,
  username: 'bot@example.com',
  password: 'app-password',
};

/** The session lifecycle routes. Handlers only translate HTTP to pool calls. */
export const sessionRoutes: FastifyPluginAsyncTypebox<SessionRoutesOptions> = async (app, { pool, outbound, config, services, secrets }) => {
  app.post(
    '/v1/sessions',
    {
      schema: {
        operationId: 'createSession',
        tags: ['sessions'],
        summary: 'Create a named session and connect it',
        description:
          'Connects and logs in before answering: 201 means the login succeeded. Creating a name that exists with the same settings returns it (200); with other settings is a 409 SESSION_CONFLICT. A session that fails to connect is not kept.',
        body: { ...CreateSessionBody, examples: [imapExample] },
        response: {
          200: jsonResponse('The session already existed with the same settings.', ref(SessionSchema)),
          201: jsonResponse('Created and connected.', ref(SessionSchema)),
          202: jsonResponse('Created; waits for an OAuth2 sign-in at authorizationUrl (state awaiting_authorization).', ref(SessionSchema)),
          ...problemResponses(codesByStatus([400, 403, 409, 413, 415, 422, 429, 502, 503, 504])),
        },
      },
    },
    async (request, reply) => {
      const prepared = await prepareSession(request.body, principalOf(request), { config, services, secrets, outbound });
      const { session, created } = await pool.create(principalOf(request).name, request.body.name, prepared);
      reply.header('location', `/v1/sessions/${encodeURIComponent(session.name)}`);
      const status = !created ? 200 : session.state === 'awaiting_authorization' ? 202 : 201;
      return reply.code(status).send(session.view());
    },
  );

  app.get(
    '/v1/sessions',
    {
      schema: {
        operationId: 'listSessions',
        tags: ['sessions'],
        summary: 'List sessions',
        description: "The caller's sessions, with cached mailbox summaries (inspect one for a live one). An admin key lists every principal's sessions with all=true.",
        querystring: Type.Object({ all: Type.Optional(Type.Boolean({ description: 'Admin only: every principal\'s sessions.' })) }),
        response: {
          200: jsonResponse("The caller's sessions (every principal's with all=true).", ref(SessionListSchema)),
          ...problemResponses({ 403: 'FORBIDDEN: all=true needs an admin key.', 503: 'STORE_UNAVAILABLE: with replicas, Redis (where the list is kept) cannot be reached; with Retry-After.' }),
        },
      },
    },
    async (request) => {
      if (request.query.all && principalOf(request).role !== 'admin') throw new AppError('FORBIDDEN', 'only an admin key may list every principal\'s sessions');
      return { sessions: pool.list(request.query.all ? undefined : principalOf(request).name).map((s) => s.view()) };
    },
  );

  app.get(
    '/v1/sessions/:name',
    {
      schema: {
        operationId: 'getSession',
        tags: ['sessions'],
        summary: 'Inspect a session',
        description: `Includes a mailbox summary read from the server when the cached one is older than MSB_SUMMARY_MAX_AGE_MS (${config.MSB_SUMMARY_MAX_AGE_MS} ms here). Without refresh, inspect always answers 200 and shows the state and lastError. With refresh=true the summary is read live, and a session that is not connected answers like a mail action: 503 SESSION_RECONNECTING with Retry-After, 409 AUTHORIZATION_REQUIRED or SESSION_NOT_READY.`,
        params: NameParams,
        querystring: Type.Object({ refresh: Type.Optional(Type.Boolean({ description: 'Read the mailbox summary live.' })), ...OwnerQuery }),
        response: {
          200: jsonResponse('The session.', ref(SessionSchema)),
          ...problemResponses({
            ...NAME_ERRORS,
            409: 'With refresh=true: SESSION_NOT_READY (failed) or AUTHORIZATION_REQUIRED.',
            503: 'With refresh=true: SESSION_RECONNECTING or SESSION_BUSY, with Retry-After. With replicas also STORE_UNAVAILABLE (Redis cannot be reached) or SESSION_RECONNECTING (moving between replicas).',
          }),
        },
      },
    },
    async (request) => {
      const session = pool.get(ownerOf(request, request.query.owner), request.params.name);
      session.touch();
      // a live read is a use of the mailbox: it answers like a mail action would on a session that is not ready
      if (request.query.refresh) session.requireConnected();
      await session.refresh(request.query.refresh ? 0 : config.MSB_SUMMARY_MAX_AGE_MS);
      return session.view();
    },
  );

  app.delete(
    '/v1/sessions/:name',
    {
      schema: {
        operationId: 'deleteSession',
        tags: ['sessions'],
        summary: 'Close a session',
        description: 'Logs out from the server (LOGOUT / QUIT) and removes the session from the pool.',
        params: NameParams,
        querystring: Type.Object(OwnerQuery),
        response: {
          204: Type.Null({ description: 'Closed.' }),
          ...problemResponses({ ...NAME_ERRORS, 503: 'With replicas: STORE_UNAVAILABLE (Redis cannot be reached) or SESSION_RECONNECTING (the session is moving between replicas), with Retry-After.' }),
        },
      },
    },
    async (request, reply) => {
      await pool.close(ownerOf(request, request.query.owner), request.params.name);
      return reply.code(204).send(null);
    },
  );
};
