// The rules of the OpenAPI document (src/schemas/shared.ts, src/plugins/openapi.ts) that every route,
// present and future, must follow. The linters (Redocly, Spectral: npm run openapi:lint) check the rest.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errorCatalog } from '../../src/errors.js';
import { build } from '../helper.js';

type Node = Record<string, any>;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

async function document(t: Parameters<typeof build>[0]): Promise<Node> {
  const { app } = await build(t);
  await app.ready();
  return structuredClone(app.swagger()) as Node;
}

function operations(doc: Node): { where: string; op: Node }[] {
  return Object.entries(doc.paths as Node).flatMap(([path, item]) =>
    Object.entries(item as Node)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => ({ where: `${method.toUpperCase()} ${path}`, op: op as Node })),
  );
}

function resolve(doc: Node, schema: Node): Node {
  if (typeof schema.$ref !== 'string') return schema;
  const name = schema.$ref.replace('#/components/schemas/', '');
  const target = doc.components.schemas[name];
  assert.ok(target, `unresolved $ref ${schema.$ref}`);
  return target;
}

/** Every schema node under `schema` (following $refs once each), with its JSON path. */
function* walk(doc: Node, schema: Node, path: string, seen = new Set<Node>()): Generator<[string, Node]> {
  const node = resolve(doc, schema);
  if (seen.has(node)) return;
  seen.add(node);
  yield [path, node];
  for (const [key, value] of Object.entries((node.properties ?? {}) as Node)) yield* walk(doc, value, `${path}/${key}`, seen);
  for (const keyword of ['anyOf', 'oneOf', 'allOf']) for (const branch of (node[keyword] ?? []) as Node[]) yield* walk(doc, branch, path, seen);
  if (node.items) yield* walk(doc, node.items, `${path}/0`, seen);
}

test('every operation has a unique lowerCamelCase operationId, a summary, a description and a declared tag', async (t) => {
  const doc = await document(t);
  const declared = new Set((doc.tags as Node[]).map((tag) => tag.name));
  const ids = new Set<string>();
  for (const { where, op } of operations(doc)) {
    assert.match(String(op.operationId), /^[a-z][a-zA-Z0-9]*$/, `${where}: operationId ${op.operationId}`);
    assert.ok(!ids.has(op.operationId), `${where}: operationId ${op.operationId} is used twice`);
    ids.add(op.operationId);
    assert.ok(op.summary, `${where}: no summary`);
    assert.ok(typeof op.description === 'string' && op.description.trim() !== '', `${where}: no description (spectral's operation-description rule, run by .ci/openapi-clients)`);
    assert.ok(Array.isArray(op.tags) && op.tags.length > 0, `${where}: no tag`);
    for (const tag of op.tags) assert.ok(declared.has(tag), `${where}: tag "${tag}" is not declared in src/plugins/openapi.ts`);
  }
  // the names clients are generated with: renaming one breaks every client, so it must be deliberate
  for (const id of ['createSession', 'listSessions', 'getSession', 'deleteSession', 'authorizeSession', 'oauth2Callback', 'getHealth', 'getReady', 'getMetrics']) {
    assert.ok(ids.has(id), `operationId ${id} is gone`);
  }
});

test('every operation behind an API key lists 401; the scheme is HTTP bearer named bearerAuth', async (t) => {
  const doc = await document(t);
  assert.deepEqual(doc.components.securitySchemes.bearerAuth, { ...doc.components.securitySchemes.bearerAuth, type: 'http', scheme: 'bearer' });
  assert.deepEqual(Object.keys(doc.components.securitySchemes), ['bearerAuth']);
  let protectedOps = 0;
  for (const { where, op } of operations(doc)) {
    const security = (op.security ?? doc.security) as Node[];
    if (security.length === 0) continue;
    protectedOps += 1;
    assert.ok(op.responses['401'], `${where}: an API-key route must list 401 (problemResponses() does)`);
  }
  assert.ok(protectedOps >= 5, `${protectedOps} protected operations`);
});

test('shared schemas: the create body is a oneOf of $refs with a discriminator mapping; answers use $ref', async (t) => {
  const doc = await document(t);
  const schemas = doc.components.schemas as Node;
  for (const name of ['Problem', 'SecretRef', 'Session', 'SessionList', 'SessionState', 'CreateImapSession', 'CreatePop3Session', 'CreateEwsSession', 'CreateOutlookSession']) {
    assert.ok(schemas[name], `components/schemas/${name} is missing`);
    assert.equal(schemas[name].title, name);
  }
  const body = doc.paths['/v1/sessions'].post.requestBody.content['application/json'].schema;
  assert.deepEqual(body.discriminator, {
    propertyName: 'type',
    mapping: {
      imap: '#/components/schemas/CreateImapSession',
      pop3: '#/components/schemas/CreatePop3Session',
      ews: '#/components/schemas/CreateEwsSession',
      outlook: '#/components/schemas/CreateOutlookSession',
    },
  });
  assert.deepEqual(body.oneOf, Object.values(body.discriminator.mapping).map(($ref) => ({ $ref })));
  // no schema is written out where a shared one exists: every answer with a body refers to a component
  for (const { where, op } of operations(doc)) {
    for (const [status, response] of Object.entries(op.responses as Node)) {
      for (const [type, media] of Object.entries((response.content ?? {}) as Node)) {
        // text and binary bodies (an .eml, an attachment) are not types a client would name
        if (type.startsWith('text/') || media.schema.format === 'binary') continue;
        assert.ok(typeof media.schema.$ref === 'string', `${where} ${status} ${type}: write the schema with shared() and ref()`);
      }
    }
  }
  // and nothing refers to a schema that is not there
  const refs = JSON.stringify(doc).match(/"\$ref":"[^"]*"/g) ?? [];
  for (const ref of refs) resolve(doc, JSON.parse(`{${ref}}`));
});

test('every enum is typed; problem codes are listed as an open set', async (t) => {
  const doc = await document(t);
  const visit = (node: unknown, path: string): void => {
    if (Array.isArray(node)) return node.forEach((n, i) => visit(n, `${path}/${i}`));
    if (typeof node !== 'object' || node === null) return;
    const n = node as Node;
    if (Array.isArray(n.enum) && !path.endsWith('/discriminator')) assert.ok(n.type, `${path}: enum without a type (use StringEnum)`);
    for (const [key, value] of Object.entries(n)) visit(value, `${path}/${key}`);
  };
  visit(doc, '#');
  const code = doc.components.schemas.Problem.properties.code;
  assert.equal(code.enum, undefined, 'a closed enum would make older generated clients refuse new codes');
  assert.deepEqual(code['x-extensible-enum'], Object.keys(errorCatalog));
});

/** Request strings that are not checked for control characters, and why. */
const NOT_ON_A_WIRE: Record<string, string> = {
  'CreateImapSession/tls/ca': 'PEM text (has line breaks); stays in the TLS context',
  'CreatePop3Session/tls/ca': 'PEM text (has line breaks); stays in the TLS context',
  'CreateEwsSession/tls/ca': 'PEM text (has line breaks); stays in the TLS context',
  'CreateOutlookSession/tls/ca': 'PEM text (has line breaks); stays in the TLS context',
  ...Object.fromEntries(
    ['SendRequest', 'ReplyRequest', 'ForwardRequest'].flatMap((body) =>
      ['text', 'html'].map((part) => [`${body}/${part}`, 'a message body: line breaks are its content; the MIME composer encodes it, it never goes into a header']),
    ),
  ),
  'oauth2Callback/error_description': "the identity provider's free text (Entra ID puts CR LF in it), shown escaped on the result page",
};

test('every request string is constrained: a pattern (WireString or stricter), an enum or a const', async (t) => {
  const doc = await document(t);
  const strings: [string, Node][] = [];
  for (const { op } of operations(doc)) {
    for (const parameter of (op.parameters ?? []) as Node[]) {
      for (const [path, node] of walk(doc, parameter.schema, `${op.operationId}/${parameter.name}`)) strings.push([path, node]);
    }
    const body = op.requestBody?.content?.['application/json']?.schema;
    if (!body) continue;
    for (const branch of (body.oneOf ?? [body]) as Node[]) {
      const name = typeof branch.$ref === 'string' ? branch.$ref.replace('#/components/schemas/', '') : op.operationId;
      for (const [path, node] of walk(doc, branch, name)) strings.push([path, node]);
    }
  }
  const free = strings.filter(([path, node]) => node.type === 'string' && !node.pattern && !node.enum && node.const === undefined && !(path in NOT_ON_A_WIRE));
  assert.deepEqual(free.map(([path]) => path), [], 'request strings without a pattern: use WireString (src/schemas/common.ts)');
  assert.ok(strings.filter(([, node]) => node.type === 'string').length > 40, 'the walk found the request strings');
});

test('servers: the public URL as a variable; Swagger UI calls the origin it was loaded from', async (t) => {
  const { app } = await build(t, { MSB_PUBLIC_URL: 'https://broker.example.com/' });
  await app.ready();
  const doc = app.swagger() as Node;
  assert.deepEqual(doc.servers.map((s: Node) => [s.url, s.variables.origin.default]), [['{origin}', 'https://broker.example.com']]);
  assert.ok(doc.info.license.identifier && doc.info.contact.name, 'info.license and info.contact');
  const ui = await app.inject({ method: 'GET', url: '/docs/json' });
  assert.equal(ui.statusCode, 200);
  assert.equal(ui.json().servers, undefined);
  assert.deepEqual(Object.keys(ui.json().paths), Object.keys(doc.paths));
});
