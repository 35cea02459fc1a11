import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { SessionPool } from './domain/pool.js';
import type { KindServices } from './kinds/kind.js';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import { metricsRoutes } from './routes/metrics.js';
import { openapiPlugin } from './plugins/openapi.js';
import { problemsPlugin } from './plugins/problems.js';
import { healthRoutes } from './routes/health.js';
import { sessionRoutes } from './routes/sessions.js';

export interface AppDependencies {
  /** Logger to use instead of pino to stdout (tests capture lines through it). */
  logger?: Logger;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Builds the service without listening. Only src/server.ts listens. */
export async function buildApp(config: Config, deps: AppDependencies = {}) {
  const logger = deps.logger ?? createLogger(config);
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: config.MSB_BODY_LIMIT_BYTES,
    requestIdHeader: false,
    // a caller's request id is kept only when it is short and plain; otherwise a fresh one is made
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    ajv: {
      customOptions: {
        // keep unknown fields so they are reported (additionalProperties: false), not silently dropped
        removeAdditional: false,
        discriminator: true,
        allErrors: true,
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const services: KindServices = {};
  const metrics = createMetrics();
  const pool = new SessionPool({ config, logger, observer: metrics.observer });
  metrics.watch(pool);
  let accepting = true;

  // bots send JSON; anything else is a 415 rather than a string that reaches validation
  app.removeContentTypeParser(['text/plain']);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // Fastify drains in-flight requests before onClose: only then are the sessions logged out
  app.addHook('preClose', async () => {
    accepting = false;
  });
  app.addHook('onClose', async () => {
    await pool.closeAll();
  });

  await app.register(problemsPlugin);
  await app.register(openapiPlugin);
  await app.register(healthRoutes, { isReady: () => accepting, sessionCount: () => pool.size });
  await app.register(sessionRoutes, { pool, config, services });
  await app.register(metricsRoutes, { registry: metrics.registry });
  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
