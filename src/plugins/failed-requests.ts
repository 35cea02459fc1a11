import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../errors.js';
import type { FailureLimiter } from '../security/failure-limiter.js';

/** Liveness and readiness probes are never limited: behind a proxy every prober shares one address. */
export const UNLIMITED_ROUTES: ReadonlySet<string> = new Set(['/health', '/ready']);

/**
 * What counts as a refused request: unauthenticated, forbidden, invalid or unreadable, or no such route.
 * Not counted: answers about the caller's sessions and mailboxes (404 SESSION_NOT_FOUND, 409, 422), which
 * a well-behaved bot gets in its normal course, and 429s themselves.
 */
function refused(request: FastifyRequest, reply: FastifyReply): boolean {
  const status = reply.statusCode;
  if (status === 404) return request.is404;
  return [400, 401, 403, 405, 408, 413, 415, 431].includes(status);
}

/**
 * MSB_FAILED_REQUEST_LIMIT_PER_MINUTE: refused requests per client address. Registered before the auth
 * plugin, so an address over the limit is answered 429 before its key is even looked at.
 */
export const failedRequestsPlugin = fp(
  async (app: FastifyInstance, { limiter }: { limiter: FailureLimiter }) => {
    if (!limiter.enabled) return;
    app.addHook('onRequest', (request, reply, done) => {
      const wait = UNLIMITED_ROUTES.has(request.routeOptions.url ?? '') ? 0 : limiter.blockedFor(request.ip);
      if (wait <= 0) return done();
      // the answer carries no www-authenticate: a key would not help now
      reply.header('retry-after', String(wait));
      done(
        new AppError('RATE_LIMITED', 'too many refused requests from this address (no or wrong API key, invalid requests): MSB_FAILED_REQUEST_LIMIT_PER_MINUTE; wait for Retry-After', {
          retryAfterSeconds: wait,
        }),
      );
    });
    app.addHook('onResponse', (request, reply, done) => {
      // a replica's forwarded requests were counted where the caller sent them
      if (!UNLIMITED_ROUTES.has(request.routeOptions.url ?? '') && !request.viaReplica && refused(request, reply)) limiter.failed(request.ip);
      done();
    });
  },
  { name: 'failed-requests' },
);
