import { Type, type Static, type TSchema, type TUnsafe } from 'typebox';

/*
 * Shared schemas: written once in the OpenAPI document (components/schemas) and referenced with $ref, so
 * that a generated client has one named type for each (Session, Problem, CreateImapSession...).
 *
 * The convention, for every route (the mail-operation routes to come included):
 * - A schema that a client would name (a request body, a response object, an object used in two places) is
 *   declared once with `shared('PascalCaseName', Type.Object(...))` in src/schemas/ (or beside its kind).
 *   The name is its key in components/schemas and its class name in generated clients.
 * - Routes and other schemas use it only through `ref(Schema)`, never by spreading or embedding it: the
 *   validator (Ajv) refuses a second schema with the same $id, and an embedded copy would not be shared.
 * - Per-status wording goes into the response's description (`jsonResponse(description, ref(Schema))`),
 *   never into the shared schema.
 * - Every route has an `operationId` (lowerCamelCase, verb first: createSession, listFolders) and a tag
 *   declared in src/plugins/openapi.ts; test/openapi/document.test.ts fails otherwise.
 * - Every request string that can reach a wire is a WireString (src/schemas/common.ts) or has a pattern that
 *   refuses control characters; the same test fails on a request string without a pattern.
 * Every shared schema is registered with Fastify (app.addSchema) by src/plugins/shared-schemas.ts.
 */

const registry = new Map<string, TSchema>();

/** Declares `schema` as the shared schema `id` (its $id and title); use it through ref(). */
export function shared<T extends TSchema>(id: string, schema: T): T {
  if (!/^[A-Z][A-Za-z0-9]*$/.test(id)) throw new Error(`shared schema name "${id}" is not PascalCase`);
  if (registry.has(id)) throw new Error(`shared schema "${id}" is declared twice`);
  // the title is what generators name the type after, so it is the component's name, not a caption
  const out = { ...schema, $id: id, title: id } as T;
  registry.set(id, out);
  return out;
}

/** A reference to a shared schema, typed as the schema itself. */
export function ref<T extends TSchema>(schema: T): TUnsafe<Static<T>> {
  const id = (schema as { $id?: unknown }).$id;
  if (typeof id !== 'string' || registry.get(id) !== schema) throw new Error('ref() takes a schema declared with shared()');
  return Type.Unsafe<Static<T>>({ $ref: id });
}

/** Every shared schema declared so far (all of them once the route modules are loaded). */
export function sharedSchemas(): TSchema[] {
  return [...registry.values()];
}

/** A JSON answer with its own wording: the schema stays shared, the description says what this status means. */
export function jsonResponse<T extends TSchema>(description: string, schema: T) {
  return { description, content: { 'application/json': { schema } } };
}
