import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { AppError } from '../errors.js';
import { problemResponse } from '../schemas/problem.js';
import { jsonResponse, ref, shared } from '../schemas/shared.js';

export interface HealthRoutesOptions {
  /** Whether the service accepts work (false while shutting down). */
  isReady: () => boolean;
  sessionCount: () => number;
}

const Status = shared(
  'HealthStatus',
  Type.Object({
    status: Type.String({ description: 'ok (liveness) or ready (readiness).' }),
    sessions: Type.Optional(Type.Integer({ description: 'Readiness: sessions in the pool.' })),
  }),
);

const MALFORMED = 'A request that cannot be read (e.g. MALFORMED_REQUEST): RFC 9457 problem details.';

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (app, { isReady, sessionCount }) => {
  app.get(
    '/health',
    {
      // probes come every few seconds: the two info lines of each would drown the log; warnings still show
      logLevel: 'warn',
      schema: {
        operationId: 'getHealth',
        tags: ['operations'],
        summary: 'Liveness: the process answers',
        description: 'For a liveness probe: 200 while the process answers, whatever the state of its sessions. Needs no API key.',
        security: [],
        response: { 200: jsonResponse('The process answers.', ref(Status)), '4xx': problemResponse(MALFORMED) },
      },
    },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/ready',
    {
      // probes come every few seconds: the two info lines of each would drown the log; warnings still show
      logLevel: 'warn',
      schema: {
        operationId: 'getReady',
        tags: ['operations'],
        security: [],
        summary: 'Readiness: the service accepts new sessions',
        description: 'For a readiness probe: 200 with the number of sessions, or 503 SHUTTING_DOWN once a shutdown has begun. Needs no API key.',
        response: { 200: jsonResponse('The service accepts new sessions.', ref(Status)), '4xx': problemResponse(MALFORMED), 503: problemResponse('SHUTTING_DOWN: the service is not accepting new sessions.') },
      },
    },
    async () => {
      if (!isReady()) throw new AppError('SHUTTING_DOWN', 'not accepting new sessions');
      return { status: 'ready', sessions: sessionCount() };
    },
  );
};
