import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { readFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** The OpenAPI document built from the route schemas, served as /openapi.json and as Swagger UI at /docs. */
export const openapiPlugin = fp(
  async (app: FastifyInstance) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'mail-session-broker',
          version,
          description:
            'Named, persistent mail sessions for automation bots. Open a session once (IMAP, POP3; EWS and Outlook to come), then refer to it by name. Every error is application/problem+json with a stable `code`.',
        },
        components: {
          securitySchemes: {
            apiKey: { type: 'http', scheme: 'bearer', description: 'An API key from MSB_API_KEYS: Authorization: Bearer <key>. Swagger UI: "Authorize".' },
          },
        },
        security: [{ apiKey: [] }],
        tags: [
          { name: 'sessions', description: 'Open, inspect and close named sessions' },
          { name: 'operations', description: 'Health, readiness and documentation' },
        ],
      },
    });
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      // a Content-Security-Policy with hashes of Swagger UI's own inline scripts and styles
      staticCSP: true,
      // Swagger UI's React components set style attributes, which a hash cannot allow; scripts stay hash-only.
      // upgrade-insecure-requests goes: the service is often reached over plain HTTP inside a network, where
      // a browser on another machine would fetch every asset over https and show a blank page (browsers
      // exempt only loopback names from the upgrade, which is why it went unnoticed on localhost)
      transformStaticCSP: (header) =>
        header
          .replace(/style-src [^;]*/, "style-src 'self' 'unsafe-inline'")
          .replace(/frame-ancestors [^;]*/, "frame-ancestors 'none'")
          .replace(/\s*upgrade-insecure-requests\s*;?/, ''),
      uiConfig: { tryItOutEnabled: true, displayRequestDuration: true, persistAuthorization: false },
    });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  },
  { name: 'openapi' },
);
