import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { readFileSync } from 'node:fs';

const { version, license } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string; license: string };

/*
 * How a route joins the document (the mail-operation routes included):
 * - `operationId`: lowerCamelCase, verb first, named for the action (createSession, getSession, listFolders,
 *   moveMessage); `tags`: one of the TAGS below (add a tag there first);
 * - bodies and response objects: shared schemas through ref(), see src/schemas/shared.ts;
 * - a route behind an API key lists its errors with problemResponses() (401 and 429 included), a public
 *   one says `security: []`.
 * test/openapi/document.test.ts checks all of this; `npm run openapi` rewrites openapi/openapi.json, and
 * `npm run check` lints it (Redocly, Spectral) and drives the clients generated from it.
 */

export const TAGS = [
  { name: 'sessions', description: 'Open, inspect and close named sessions.' },
  { name: 'messages', description: 'Read mail through a session: folders, messages, raw messages and attachments.' },
  { name: 'changes', description: 'Change mail through a session: status, move, delete, one message or all that match.' },
  { name: 'send', description: 'Send, reply and forward through a session.' },
  { name: 'claims', description: 'Work claims: a fleet of bots handles each message once.' },
  { name: 'events', description: 'New mail and state changes as they happen (Server-Sent Events).' },
  { name: 'oauth2', description: 'OAuth2 sign-in: the per-session sign-in redirect and the redirect URI of the identity provider.' },
  { name: 'operations', description: 'Health, readiness and metrics.' },
];

type Node = Record<string, unknown>;

/**
 * Adds discriminator.mapping to every oneOf of $refs that has a discriminator without one (Ajv, which
 * validates the same schemas, refuses a mapping; generated clients need it to pick the class).
 */
function addDiscriminatorMappings(document: Node): void {
  const schemas = ((document.components as Node | undefined)?.schemas ?? {}) as Record<string, Node>;
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== 'object' || node === null) return;
    const { discriminator, oneOf } = node as { discriminator?: { propertyName: string; mapping?: Record<string, string> }; oneOf?: { $ref?: string }[] };
    if (discriminator && !discriminator.mapping && Array.isArray(oneOf)) {
      const mapping: Record<string, string> = {};
      for (const { $ref } of oneOf) {
        const target = $ref?.startsWith('#/components/schemas/') ? schemas[$ref.slice('#/components/schemas/'.length)] : undefined;
        const tag = (target?.properties as Record<string, { const?: unknown; enum?: unknown[] }> | undefined)?.[discriminator.propertyName];
        const values = tag?.enum ?? (tag?.const !== undefined ? [tag.const] : []);
        if (!$ref || values.length === 0) throw new Error(`discriminator ${discriminator.propertyName}: a oneOf branch is not a $ref with a literal ${discriminator.propertyName}`);
        for (const value of values) mapping[String(value)] = $ref;
      }
      discriminator.mapping = mapping;
    }
    Object.values(node).forEach(visit);
  };
  visit(document.paths);
  visit(schemas);
}

/** The OpenAPI document built from the route schemas, served as /openapi.json and as Swagger UI at /docs. */
export const openapiPlugin = fp(
  async (app: FastifyInstance, { publicUrl }: { publicUrl: string }) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'mail-session-broker',
          version,
          description:
            'Named, persistent mail sessions for automation bots. Open a session once (IMAP, POP3, Exchange Web Services or Outlook through Microsoft Graph; passwords or OAuth2), then refer to it by name to list folders and messages, read them and download raw messages and attachments, change them (flags, move, delete, one or all that match), send, reply and forward, claim messages for a fleet of bots, and follow new mail as Server-Sent Events or webhooks. Every error is application/problem+json with a stable `code`.',
          license: { name: license, identifier: license },
          contact: { name: 'mail-session-broker maintainers' },
        },
        // a variable, not a fixed host: the committed document has the default MSB_PUBLIC_URL, which a
        // deployment sets to its own (and then serves it here)
        servers: [
          {
            url: '{origin}',
            description: 'This service.',
            variables: { origin: { default: publicUrl.replace(/\/+$/, ''), description: 'Where the service is reachable (its MSB_PUBLIC_URL).' } },
          },
        ],
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key from MSB_API_KEYS: Authorization: Bearer <key>. Swagger UI: "Authorize".' },
          },
        },
        security: [{ bearerAuth: [] }],
        tags: TAGS,
      },
      // paths are the routes' own, whatever path the public URL has
      stripBasePath: false,
      // OpenAPI 3.1 has const: `"type": {"const": "imap"}` makes a literal type in generated clients
      convertConstToEnum: false,
      // shared schemas keep their own name in components/schemas (instead of def-0, def-1...)
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
      transformObject: (document) => {
        if (!('openapiObject' in document)) return document.swaggerObject;
        addDiscriminatorMappings(document.openapiObject as Node);
        return document.openapiObject;
      },
    });
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      // Swagger UI is served by the service itself: its requests go to the origin it was loaded from
      transformSpecification: (document) => ({ ...document, servers: undefined }),
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
