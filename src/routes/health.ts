import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { AppError } from '../errors.js';
import { problemResponse } from '../schemas/problem.js';

export interface HealthRoutesOptions {
  /** Whether the service accepts work (false while shutting down). */
  isReady: () => boolean;
  sessionCount: () => number;
}

const Status = Type.Object({ status: Type.String(), sessions: Type.Optional(Type.Integer()) });

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (app, { isReady, sessionCount }) => {
  app.get(
    '/health',
    { schema: { tags: ['operations'], summary: 'Liveness: the process answers', security: [], response: { 200: Status } } },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/ready',
    {
      schema: {
        tags: ['operations'],
        security: [],
        summary: 'Readiness: the service accepts new sessions',
        response: { 200: Status, 503: problemResponse('SHUTTING_DOWN: the service is not accepting new sessions.') },
      },
    },
    async () => {
      if (!isReady()) throw new AppError('SHUTTING_DOWN', 'not accepting new sessions');
      return { status: 'ready', sessions: sessionCount() };
    },
  );
};
