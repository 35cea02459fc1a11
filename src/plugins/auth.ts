import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../errors.js';
import type { ApiKeys, Principal } from '../security/api-keys.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller of a /v1 route. */
    principal: Principal;
    /** Forwarded by another replica (signed with MSB_REPLICA_SECRET), which checked the caller's key and limits. */
    viaReplica: boolean;
  }
}

export interface AuthOptions {
  /** undefined = authentication off (MSB_AUTH=none): every caller is the admin "anonymous". */
  keys: ApiKeys | undefined;
  /** Paths under /v1 reached without a key, e.g. the OAuth2 redirect the identity provider sends the browser to. */
  publicPaths: readonly string[];
  /**
   * With replicas (src/cluster/): a request forwarded by another replica, with the caller's principal it
   * vouches for; undefined when the request was not forwarded. Throws UNAUTHENTICATED on a bad signature.
   */
  forwarded?: ((request: FastifyRequest) => { principal: Principal | undefined } | undefined) | undefined;
}

export const DEV_PRINCIPAL: Principal = Object.freeze({ name: 'anonymous', role: 'admin' });

/**
 * Whether a request needs a key. Decided on the route the router matched (its pattern), not on the raw
 * URL: the router decodes %XX and accepts absolute-form targets, so a raw-prefix check could be dodged.
 * Unmatched requests need a key when their decoded path is under /v1, so 404s reveal nothing there.
 */
function needsKey(request: FastifyRequest, publicPaths: readonly string[]): boolean {
  const route = request.routeOptions.url;
  if (route !== undefined) return route.startsWith('/v1/') && !publicPaths.includes(route);
  let path = request.url;
  try {
    path = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
  } catch {
    // undecodable: treat as protected
    return true;
  }
  return path.startsWith('/v1/') || path === '/v1';
}

/** The authenticated principal of a /v1 request; a route reached without one is refused, never served. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError('UNAUTHENTICATED', 'send an API key: Authorization: Bearer <key>');
  return request.principal;
}

/** Bearer API keys on every /v1 route. Health, metrics and the documentation stay open. */
export const authPlugin = fp(
  async (app: FastifyInstance, { keys, publicPaths, forwarded }: AuthOptions) => {
    app.decorateRequest('principal', null as unknown as Principal);
    app.decorateRequest('viaReplica', false);
    if (!keys) {
      app.log.warn('API AUTHENTICATION IS OFF (MSB_AUTH=none): anyone who reaches this port can use every session. Development only.');
    }
    /** Sets request.principal when the request needs one; an AppError when it cannot have it. */
    const authenticate = (request: FastifyRequest, reply: FastifyReply): AppError | undefined => {
      const via = forwarded?.(request);
      if (via) {
        request.viaReplica = true;
        if (via.principal) request.principal = via.principal;
        else if (needsKey(request, publicPaths)) return new AppError('UNAUTHENTICATED', 'a forwarded request carries no principal');
        return undefined;
      }
      if (!needsKey(request, publicPaths)) return undefined;
      if (!keys) {
        request.principal = DEV_PRINCIPAL;
        return undefined;
      }
      const header = request.headers.authorization;
      const match = typeof header === 'string' ? /^Bearer ([\x21-\x7e]{16,512})$/.exec(header) : null;
      const principal = match ? keys.verify(match[1]!) : undefined;
      if (!principal) {
        reply.header('www-authenticate', 'Bearer realm="mail-session-broker"');
        return new AppError('UNAUTHENTICATED', header ? 'the API key is not valid' : 'send an API key: Authorization: Bearer <key>');
      }
      // no per-request child logger for the principal: it cost more than the rest of an inspect (bench/);
      // session lines carry the owner, and refusals log the request id
      request.principal = principal;
      return undefined;
    };
    // a callback hook, not an async one: no promise per request
    app.addHook('onRequest', (request, reply, done) => {
      let refusal: unknown;
      try {
        refusal = authenticate(request, reply);
      } catch (err) {
        refusal = err; // a forwarded request's bad signature
      }
      done(refusal as Error | undefined);
    });
  },
  { name: 'auth' },
);
