import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../errors.js';
import type { ApiKeys, Principal } from '../security/api-keys.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller of a /v1 route. */
    principal: Principal;
  }
}

export interface AuthOptions {
  /** undefined = authentication off (MSB_AUTH=none): every caller is the admin "anonymous". */
  keys: ApiKeys | undefined;
  /** Paths under /v1 reached without a key, e.g. the OAuth2 redirect the identity provider sends the browser to. */
  publicPaths: readonly string[];
}

const DEV_PRINCIPAL: Principal = Object.freeze({ name: 'anonymous', role: 'admin' });

/** Bearer API keys on every /v1 route. Health, metrics and the documentation stay open. */
export const authPlugin = fp(
  async (app: FastifyInstance, { keys, publicPaths }: AuthOptions) => {
    app.decorateRequest('principal', null as unknown as Principal);
    if (!keys) {
      app.log.warn('API AUTHENTICATION IS OFF (MSB_AUTH=none): anyone who reaches this port can use every session. Development only.');
    }
    app.addHook('onRequest', async (request: FastifyRequest, reply) => {
      const path = request.url.split('?')[0] ?? '';
      if (!path.startsWith('/v1/') || publicPaths.includes(path)) return;
      if (!keys) {
        request.principal = DEV_PRINCIPAL;
        return;
      }
      const header = request.headers.authorization;
      const match = typeof header === 'string' ? /^Bearer ([\x21-\x7e]{16,512})$/.exec(header) : null;
      const principal = match ? keys.verify(match[1]!) : undefined;
      if (!principal) {
        reply.header('www-authenticate', 'Bearer realm="mail-session-broker"');
        throw new AppError('UNAUTHENTICATED', header ? 'the API key is not valid' : 'send an API key: Authorization: Bearer <key>');
      }
      request.principal = principal;
      request.log = request.log.child({ principal: principal.name });
    });
  },
  { name: 'auth' },
);
