import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import { problemResponse } from '../schemas/problem.js';

export const metricsRoutes: FastifyPluginAsync<{ registry: Registry }> = async (app, { registry }) => {
  app.get(
    '/metrics',
    {
      schema: {
        operationId: 'getMetrics',
        tags: ['operations'],
        security: [],
        summary: 'Prometheus metrics',
        description: 'Sessions by type and state, connects, reconnects, failures by code, connect latency, keepalive round trip, process metrics.',
        produces: ['text/plain'],
        response: {
          200: { type: 'string', description: 'Prometheus text exposition format.' },
          '4xx': problemResponse('A request that cannot be read (e.g. MALFORMED_REQUEST): RFC 9457 problem details.'),
        },
      },
    },
    async (_request, reply) => {
      const text = await registry.metrics();
      return reply.type(registry.contentType).send(text);
    },
  );
};
