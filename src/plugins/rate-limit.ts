import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../errors.js';
import { UNLIMITED_ROUTES } from './failed-requests.js';

/**
 * Requests per minute per principal (@fastify/rate-limit); on routes without a key, per client address.
 * Refused requests are also counted per address before authentication: plugins/failed-requests.ts.
 */
export const rateLimitPlugin = fp(
  async (app: FastifyInstance, { perMinute }: { perMinute: number }) => {
    if (perMinute <= 0) return;
    await app.register(rateLimit, {
      max: perMinute,
      timeWindow: 60_000,
      // after the auth hook, so the key is the principal and one bot cannot starve the others; before
      // body parsing and validation, so that invalid requests count too
      hook: 'preParsing',
      // a forwarded request was counted by the replica the caller sent it to
      allowList: (request) => UNLIMITED_ROUTES.has(request.routeOptions.url ?? '') || request.viaReplica,
      keyGenerator: (request) => (request.principal ? `principal:${request.principal.name}` : `ip:${request.ip}`),
      errorResponseBuilder: (_request, context) =>
        new AppError('RATE_LIMITED', `more than ${context.max} requests in ${context.after}; slow down`, {
          retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)),
        }),
    });
  },
  { name: 'rate-limit', dependencies: ['auth'] },
);
