import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { sharedSchemas } from '../schemas/shared.js';

/**
 * Registers every shared schema (src/schemas/shared.ts) with Fastify, so that the validator and the
 * serializer resolve their $refs and the OpenAPI document lists them once, in components/schemas.
 */
export const sharedSchemasPlugin = fp(
  async (app: FastifyInstance) => {
    for (const schema of sharedSchemas()) app.addSchema(schema);
  },
  { name: 'shared-schemas' },
);
