/**
 * Hostile input at scale (issue #6): fast-check properties through app.inject.
 *
 *   (a) arbitrary JSON (and not-quite-JSON) as the POST /v1/sessions body
 *   (b) mutations of valid imap/pop3 bodies: each answer is one of the documented refusals
 *   (c) random methods, paths, query strings and headers, in-process and over a real loopback socket
 *   (d) no input makes the API key or a password appear in a response or a log line
 *
 * Every property: no 5xx, every error is the documented problem+json, the process stays up (GET /health
 * after each run), Object.prototype is untouched, and nothing leaves the machine: the outbound allow list is
 * one name that does not exist (every destination is refused before any DNS query), and a network guard
 * (./net-guard.ts) refuses and records any DNS query or connection to anything but loopback.
 *
 * Reproduce a failure with the seed it prints: FUZZ_SEED=<seed> npx tsx --test test/security/fuzz.test.ts
 * (FUZZ_PATH=<path> as printed replays the shrunk case alone). FUZZ_SCALE=10 runs ten times as many cases.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import type { ErrorCode } from '../../src/errors.js';
import { installNetGuard, netAttempts } from './net-guard.js';

// before anything of the service is loaded, so no module can keep an unguarded reference
installNetGuard();
const { build, TEST_ENV } = await import('../helper.js');
const { hashApiKey } = await import('../../src/security/api-keys.js');
const { errorCatalog, problemType } = await import('../../src/errors.js');
const { loadConfig } = await import('../../src/config.js');

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_0006);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));

const KEY = 'fuzz-key-3f9c1e77b2d04a6b-do-not-echo';
const ENV = {
  MSB_AUTH: 'keys',
  MSB_API_KEYS: `bot-a:bot:${hashApiKey(KEY)}`,
  // one name that does not exist: every generated destination is refused before any DNS query
  MSB_OUTBOUND_ALLOW: 'allowed.invalid',
  MSB_OUTBOUND_DENY: '127.0.0.0/8',
  MSB_OUTBOUND_PORTS: '*',
};
const BODY_LIMIT = loadConfig({ ...TEST_ENV, ...ENV }).MSB_BODY_LIMIT_BYTES;
const AUTH = { authorization: `Bearer ${KEY}` };
const JSON_TYPE = { 'content-type': 'application/json' };
const CALLBACK_PATH = '/v1/oauth2/callback';

/** What each property did, printed at the end (and by `t.diagnostic`). */
const tally: Record<string, { cases: number; requests: number; ms: number; statuses: Record<number, number> }> = {};

// ---------------------------------------------------------------------------------------------------------
// The oracle: the documented answer shapes

const PROBLEM_KEYS = new Set(['type', 'title', 'status', 'detail', 'code', 'instance', 'requestId', 'retryAfterSeconds', 'errors']);

interface Sent {
  method: string;
  url: string;
  headers?: Record<string, string>;
}

function describeRequest(req: Sent): string {
  return `${req.method} ${JSON.stringify(req.url).slice(0, 300)} headers=${JSON.stringify(req.headers ?? {}).slice(0, 300)}`;
}

function wantsJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const json = accept.search(/application\/(problem\+)?json/);
  const html = accept.search(/text\/html/);
  return json >= 0 && (html < 0 || json < html);
}

/**
 * Checks one answer against README "Errors": below 500; every non-2xx (redirects aside) is
 * application/problem+json with type, title, status (= the HTTP status), detail, an upper snake case code
 * of the registry with that status, instance, and requestId (= the x-request-id header); no stack trace.
 */
function checkAnswer(res: LightMyRequestResponse, req: Sent): Record<string, unknown> | undefined {
  const where = `${describeRequest(req)} -> ${res.statusCode} ${String(res.headers['content-type'])} ${res.body.slice(0, 400)}`;
  assert.ok(res.statusCode < 500, `5xx for a client's input: ${where}`);
  const path = routedPath(req.url);
  const contentType = String(res.headers['content-type'] ?? '');
  // the OAuth2 redirect URI is a page for a browser: HTML unless the caller prefers JSON (documented)
  const page = path === CALLBACK_PATH && contentType.startsWith('text/html') && !wantsJson(req.headers?.accept);
  // 2xx answers and the Swagger UI redirect are not errors
  if (res.statusCode >= 400 && !page) assert.match(contentType, /^application\/problem\+json(;|$)/, `not problem+json: ${where}`);
  assert.equal(res.headers['x-content-type-options'], 'nosniff', `no nosniff: ${where}`);
  if (res.statusCode < 400 || page) return undefined;
  assert.equal(typeof res.headers['x-request-id'], 'string', `no x-request-id: ${where}`);
  if (req.method === 'HEAD') return undefined; // no body to check
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(res.body) as Record<string, unknown>;
  } catch {
    assert.fail(`problem body is not JSON: ${where}`);
  }
  assert.ok(body && typeof body === 'object' && !Array.isArray(body), `problem is not an object: ${where}`);
  const code = body.code;
  assert.ok(typeof code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(code), `code is not upper snake case: ${where}`);
  assert.ok(Object.hasOwn(errorCatalog, code), `code ${code} is not in src/errors.ts: ${where}`);
  const entry = errorCatalog[code as ErrorCode];
  assert.equal(entry.status, res.statusCode, `code ${code} is registered with ${entry.status}: ${where}`);
  assert.equal(body.status, res.statusCode, `status member differs from the HTTP status: ${where}`);
  assert.equal(body.type, problemType(code as ErrorCode), `type: ${where}`);
  assert.equal(body.title, entry.title, `title: ${where}`);
  assert.equal(typeof body.detail, 'string', `detail: ${where}`);
  assert.equal(typeof body.instance, 'string', `instance: ${where}`);
  assert.equal(typeof body.requestId, 'string', `requestId: ${where}`);
  assert.equal(body.requestId, res.headers['x-request-id'], `requestId differs from x-request-id: ${where}`);
  for (const key of Object.keys(body)) assert.ok(PROBLEM_KEYS.has(key), `undocumented problem member "${key}": ${where}`);
  if (code === 'VALIDATION_ERROR') {
    assert.ok(Array.isArray(body.errors) && body.errors.length > 0, `VALIDATION_ERROR without errors[]: ${where}`);
    for (const e of body.errors as { path?: unknown; message?: unknown }[]) {
      assert.ok(typeof e.path === 'string' && typeof e.message === 'string', `errors[] item: ${where}`);
    }
  }
  if (body.retryAfterSeconds !== undefined) assert.equal(res.headers['retry-after'], String(body.retryAfterSeconds), `Retry-After: ${where}`);
  assert.doesNotMatch(res.body, /\\n\s+at |\bat \S+ \(\S+:\d+:\d+\)|node_modules\/|\bsrc\/[\w/.-]+\.[tj]s\b/, `stack or internals in the body: ${where}`);
  return body;
}

const PUBLIC_PATHS = new Set(['/health', '/ready', '/metrics', '/openapi.json', CALLBACK_PATH]);

/** The path as the router sees it: an absolute-form target's origin dropped, percent-escapes decoded. */
function routedPath(url: string): string {
  const path = url.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, '').split(/[?#]/)[0] ?? '';
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** README "Security": every /v1 route needs a key; only health, metrics, the documentation and the OAuth2 redirect are open. */
function checkKeyRequired(res: { statusCode: number }, req: Sent, keyValid: boolean): void {
  if (keyValid || res.statusCode >= 300) return;
  const path = routedPath(req.url);
  const open = PUBLIC_PATHS.has(path) || path === '/docs' || path.startsWith('/docs/');
  assert.ok(open, `answered ${res.statusCode} without a valid API key: ${describeRequest(req)}`);
}

/** The refusals POST /v1/sessions may answer here (nothing can connect), by status, per src/errors.ts. */
const CREATE_REFUSALS: Record<number, ErrorCode[]> = {
  400: ['VALIDATION_ERROR', 'MALFORMED_REQUEST'],
  403: ['DESTINATION_FORBIDDEN'],
  409: ['SESSION_CONFLICT'],
  413: ['PAYLOAD_TOO_LARGE'],
  415: ['UNSUPPORTED_MEDIA_TYPE'],
  422: ['SECRET_UNAVAILABLE', 'UNSUPPORTED_OPTION', 'INSECURE_TLS_FORBIDDEN', 'INVALID_SETTINGS'],
  429: ['RATE_LIMITED'],
};

function checkCreateRefusal(res: LightMyRequestResponse, req: Sent): string {
  const body = checkAnswer(res, req);
  const where = `${describeRequest(req)} -> ${res.statusCode} ${res.body.slice(0, 300)}`;
  const allowed = CREATE_REFUSALS[res.statusCode];
  assert.ok(allowed && body, `POST /v1/sessions answered ${res.statusCode}, not one of ${Object.keys(CREATE_REFUSALS).join('/')}: ${where}`);
  assert.ok(allowed.includes(body.code as ErrorCode), `code ${String(body.code)} is not documented for ${res.statusCode} here: ${where}`);
  return body.code as string;
}

/** The payload of a chunked HTTP/1.1 body. */
function dechunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, eol), 16);
    if (eol < 0 || !(size > 0)) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Harness: one app per property, the invariants after every run

interface Harness {
  inject(req: Sent & { payload?: string | Buffer }): Promise<LightMyRequestResponse>;
  logs: string[];
  /** Runs a property with the fixed seed; the tally and the after-run invariants are built in. */
  check<T>(name: string, numRuns: number, arb: fc.Arbitrary<T>, predicate: (value: T) => Promise<void>): Promise<void>;
}

const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort().join(',');
const processErrors: unknown[] = [];
process.on('uncaughtException', (err) => processErrors.push(err));
process.on('unhandledRejection', (err) => processErrors.push(err));
// Node fires a timer of more than 2^31-1 ms after 1 ms, with a TimeoutOverflowWarning: a bug, not noise.
// Such a timer may re-arm itself forever, so only the first one fails a case (the one that set it).
// Node's own printer shows the first such warning only, not one per re-arm (thousands a second).
const overflowWarnings: string[] = [];
let overflowReported = false;
const warningPrinters = process.listeners('warning');
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'TimeoutOverflowWarning') {
    overflowWarnings.push(warning.message);
    if (overflowWarnings.length > 1) return;
  }
  for (const print of warningPrinters) print(warning);
});

async function harness(t: TestContext, label: string, options: { listen?: boolean } = {}): Promise<Harness & { port?: number }> {
  const { app, logs } = await build(t, ENV);
  let port: number | undefined;
  if (options.listen) {
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as net.AddressInfo).port;
  }
  const stats: (typeof tally)[string] = { cases: 0, requests: 0, ms: 0, statuses: {} };
  tally[label] = stats;
  const inject = async (req: Sent & { payload?: string | Buffer }) => {
    stats.requests += 1;
    const res = await app.inject({ method: req.method as 'GET', url: req.url, headers: req.headers ?? {}, ...(req.payload !== undefined ? { payload: req.payload } : {}) });
    stats.statuses[res.statusCode] = (stats.statuses[res.statusCode] ?? 0) + 1;
    return res;
  };
  const invariants = async () => {
    const health = await app.inject({ method: 'GET', url: '/health' });
    assert.equal(health.statusCode, 200, 'GET /health after the run');
    assert.equal(Object.getOwnPropertyNames(Object.prototype).sort().join(','), prototypeBefore, 'Object.prototype was changed');
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype was polluted');
    assert.deepEqual(netAttempts, [], 'a DNS query or a connection to something other than loopback was attempted');
    assert.deepEqual(processErrors, [], 'an uncaught exception or unhandled rejection');
  };
  return {
    inject,
    logs,
    ...(port !== undefined ? { port } : {}),
    async check(name, numRuns, arb, predicate) {
      const started = Date.now();
      const property = fc.asyncProperty(arb, async (value) => {
        stats.cases += 1;
        const overflowsBefore = overflowWarnings.length;
        await predicate(value);
        await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
        if (!overflowReported && overflowWarnings.length > overflowsBefore) {
          overflowReported = true;
          assert.fail(`this input made the service set a timer longer than 2^31-1 ms, which Node fires after 1 ms: ${overflowWarnings[overflowsBefore]}`);
        }
        await invariants();
      });
      try {
        await fc.assert(property, { seed: SEED, numRuns, includeErrorInReport: true, ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}) });
      } catch (err) {
        throw new Error(
          `${name}: failed with seed ${SEED} (rerun: FUZZ_SEED=${SEED} npx tsx --test test/security/fuzz.test.ts; add FUZZ_PATH=<path> for the shrunk case alone)\n${(err as Error).message}`,
        );
      } finally {
        stats.ms += Date.now() - started;
        t.diagnostic(`${name}: ${stats.cases} cases, ${stats.requests} requests in ${(stats.ms / 1000).toFixed(1)} s, statuses ${JSON.stringify(stats.statuses)}`);
      }
      await invariants();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Arbitraries

/** Strings of any code point, lone surrogates included. */
const anyString = (maxLength = 40) => fc.string({ unit: 'binary', maxLength });
/** Latin-1 strings: what an HTTP header value can carry, control characters included. */
const latin1 = (maxLength = 40) => fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength });
/** Strings of any code point but the control characters, which wire fields refuse (WireString). */
const wireString = (minLength: number, maxLength: number) =>
  fc.string({ unit: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).filter((c) => !/[\u0000-\u001f\u007f]/.test(c)), minLength, maxLength });
const POLLUTING_KEYS = ['__proto__', 'constructor', 'prototype', '__defineGetter__', '__lookupGetter__', 'hasOwnProperty', 'toString', 'valueOf', 'polluted'];
const keyArb = fc.oneof(fc.constantFrom(...POLLUTING_KEYS), fc.constantFrom('name', 'type', 'host', 'password', 'secret', 'tls', 'ca'), anyString(12));

/** JSON text with keys JSON.stringify cannot produce from a JS object ("__proto__" as an own key, duplicates). */
const rawJson: fc.Arbitrary<string> = fc.letrec<{ node: string }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }).map((v) => JSON.stringify(v)),
    fc.array(fc.tuple(keyArb, tie('node')), { maxLength: 6 }).map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
    fc.array(tie('node'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
  ),
})).node;

const deepJson = fc
  .tuple(fc.integer({ min: 1, max: 30_000 }), fc.constantFrom('array', 'object', 'secret'))
  .map(([depth, kind]) => {
    if (kind === 'array') return `${'['.repeat(depth)}${']'.repeat(depth)}`;
    if (kind === 'object') return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    // a deep chain of secret references where a credential goes
    return `{"name":"deep","type":"imap","host":"mail.example.com","username":"u","password":${'{"secret":'.repeat(depth)}"x"${'}'.repeat(depth)}}`;
  });

/** Bodies around the body limit, made of 1- to 4-byte characters, in a string field of a valid body. */
const hugeJson = fc
  .tuple(fc.integer({ min: BODY_LIMIT - 3000, max: BODY_LIMIT + 3000 }), fc.constantFrom('a', 'é', '€', '😀', '\\u0000', '\\"', '\u2028'), fc.constantFrom('password', 'name', 'host', 'unknown'))
  .map(([bytes, ch, field]) => {
    const base = { name: 'big', type: 'imap', host: 'mail.example.com', username: 'u', password: 'p' } as Record<string, string>;
    const skeleton = JSON.stringify({ ...base, [field]: '' });
    const filler = ch.repeat(Math.max(0, Math.floor((bytes - Buffer.byteLength(skeleton)) / Buffer.byteLength(ch))));
    return skeleton.replace(`"${field}":""`, `"${field}":"${filler}"`);
  });

const notQuiteJson = fc.oneof(
  anyString(200),
  fc.jsonValue().map((v) => JSON.stringify(v)).chain((s) => fc.nat(s.length).map((n) => s.slice(0, n))), // truncated
  fc.jsonValue().map((v) => `\ufeff${JSON.stringify(v)}`), // with a BOM
  fc.constantFrom('NaN', 'Infinity', '-0', '1e999', '{"a":1,}', "{'a':1}", '{"a":1}{"b":2}', '{"a":"\\ud800"}', '{"a":"\\x41"}', '{"__proto__":null}', '[', '"', 'null', ''),
);

const TYPES = ['imap', 'pop3'] as const;
const secretRef = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/).map((secret) => ({ secret }));
/** Hosts the schema accepts, never "allowed.invalid" itself (the one allowed name would be resolved). */
const hostArb = fc
  .oneof(
    fc.domain(),
    fc.domain().map((d) => `${d}.`),
    fc.ipV4(),
    fc.ipV6(),
    fc.ipV6().map((a) => `[${a}]`),
    fc.constantFrom('localhost', '127.0.0.1', '[::1]', '169.254.169.254', '0.0.0.0', '10.0.0.1', 'metadata.google.internal', 'ALLOWED.INVALID.example', '_x', '[1.2.3]', ':::'),
    fc.stringMatching(/^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,60}[A-Za-z0-9_])?$/),
  )
  .filter((h) => h.length <= 253 && h.toLowerCase().replace(/\.$/, '') !== 'allowed.invalid');

const validBody = (password: fc.Arbitrary<string | { secret: string }>) =>
  fc.record(
    {
      name: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
      type: fc.constantFrom(...TYPES),
      host: hostArb,
      port: fc.integer({ min: 1, max: 65_535 }),
      secure: fc.boolean(),
      // the schema counts code points: 'binary' units are one code point each
      username: fc.oneof(wireString(1, 320), secretRef),
      password,
      tls: fc.record(
        {
          verifyCertificate: fc.boolean(),
          ca: fc.string({ maxLength: 200 }).map((s) => `-----BEGIN CERTIFICATE-----\n${s}\n-----END CERTIFICATE-----\n`),
          servername: wireString(1, 253),
          starttls: fc.constantFrom('required', 'opportunistic', 'off'),
        },
        { requiredKeys: [] },
      ),
      timeouts: fc.record({ connectMs: fc.integer({ min: 100, max: 300_000 }), commandMs: fc.integer({ min: 100, max: 600_000 }) }, { requiredKeys: [] }),
      idleTimeoutMs: fc.integer({ min: 0, max: 2_147_483_647 }), // the largest delay a Node timer takes
    },
    { requiredKeys: ['name', 'type', 'host', 'username', 'password'] },
  );

type Json = ReturnType<typeof JSON.parse>;

/** Values at and just past every documented bound, and wrong types. */
const edgeValue = fc.oneof(
  fc.constantFrom(0, -1, 1, 65_535, 65_536, 99, 100, 300_000, 300_001, 600_001, 2_592_000_001, 1.5, 1e21, -0, Number.MAX_SAFE_INTEGER + 2),
  fc.constantFrom('', ' ', '993', 'true', 'imap', 'IMAP', 'ews', 'smtp', 'outlook', '-a', '.a', 'a'.repeat(65), 'h'.repeat(254), 'u'.repeat(321), 'p'.repeat(4097)),
  fc.constantFrom(null, true, false, [], {}, { secret: '' }, { secret: '../etc/passwd' }, { secret: 'a', extra: 1 }, { secret: 1 }, ['a']),
  fc.jsonValue({ maxDepth: 2 }),
);

/** One change to a body: drop, add, re-type or rename a field, at the top level or inside tls / timeouts. */
const mutation = fc.oneof(
  fc.record({ op: fc.constant('drop' as const), at: fc.nat(), nested: fc.boolean() }),
  fc.record({ op: fc.constant('add' as const), key: keyArb, value: edgeValue, nested: fc.boolean() }),
  fc.record({ op: fc.constant('retype' as const), at: fc.nat(), value: edgeValue, nested: fc.boolean() }),
  fc.record({ op: fc.constant('rename' as const), at: fc.nat(), key: fc.oneof(keyArb, fc.constantFrom('pasword', 'Host', 'hostname', 'user', 'starttls', 'secure ')) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function applyMutations(body: Record<string, Json>, mutations: Mutation[], protect: string[] = []): Record<string, Json> {
  const out = structuredClone(body) as Record<string, Json>;
  for (const m of mutations) {
    let target: Record<string, Json> = out;
    if ('nested' in m && m.nested) {
      const inner = ['tls', 'timeouts'].find((k) => out[k] && typeof out[k] === 'object' && !Array.isArray(out[k]));
      if (inner) target = out[inner] as Record<string, Json>;
    }
    const keys = Object.keys(target).filter((k) => !protect.includes(k) || target !== out);
    const pick = (at: number) => keys[at % Math.max(1, keys.length)];
    const define = (key: string, value: Json) =>
      Object.defineProperty(target, key, { value: structuredClone(value), enumerable: true, writable: true, configurable: true });
    if (m.op === 'drop' && keys.length > 0) delete target[pick(m.at)!];
    else if (m.op === 'add' && !protect.includes(m.key)) define(m.key, m.value);
    else if (m.op === 'retype' && keys.length > 0) define(pick(m.at)!, m.value);
    else if (m.op === 'rename' && keys.length > 0 && !protect.includes(m.key)) {
      const from = pick(m.at)!;
      const value = target[from];
      delete target[from];
      define(m.key, value);
    }
  }
  return out;
}

/** What a valid body must get here: a secret reference cannot be read, POP3 cannot STARTTLS, else no destination is allowed. */
function expectedForValid(body: Record<string, Json>): ErrorCode {
  if (typeof body.username === 'object' || typeof body.password === 'object') return 'SECRET_UNAVAILABLE';
  const secure = body.secure ?? true;
  const starttls = (body.tls as { starttls?: string } | undefined)?.starttls ?? 'required';
  if (body.type === 'pop3' && !secure && starttls !== 'off') return 'UNSUPPORTED_OPTION';
  return 'DESTINATION_FORBIDDEN';
}

// ---------------------------------------------------------------------------------------------------------

describe('hostile input at scale (fast-check through app.inject)', () => {
  after(() => {
    const lines = Object.entries(tally).map(([name, s]) => `  ${name}: ${s.cases} cases, ${s.requests} requests, ${(s.ms / 1000).toFixed(1)} s`);
    const cases = Object.values(tally).reduce((n, s) => n + s.cases, 0);
    const requests = Object.values(tally).reduce((n, s) => n + s.requests, 0);
    process.stdout.write(`# fuzz (seed ${SEED}): ${cases} cases, ${requests} requests\n${lines.map((l) => `# ${l}`).join('\n')}\n`);
  });

  test('(a) arbitrary JSON as the create body: a documented refusal, never a 5xx', async (t) => {
    const h = await harness(t, 'a');
    const text = fc.oneof(
      { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 6, stringUnit: 'binary' }).map((v) => JSON.stringify(v)) },
      { weight: 3, arbitrary: rawJson },
      { weight: 1, arbitrary: deepJson },
      { weight: 1, arbitrary: hugeJson },
      { weight: 1, arbitrary: notQuiteJson },
    );
    await h.check(
      '(a) arbitrary JSON body',
      runs(2500),
      text,
      async (payload) => {
        const req = { method: 'POST', url: '/v1/sessions', headers: { ...AUTH, ...JSON_TYPE } };
        const res = await h.inject({ ...req, payload });
        checkCreateRefusal(res, req);
        const bytes = Buffer.byteLength(payload);
        if (bytes > BODY_LIMIT) assert.equal(res.statusCode, 413, `${bytes} bytes over the ${BODY_LIMIT} limit: ${res.body.slice(0, 200)}`);
        else assert.notEqual(res.statusCode, 413, `${bytes} bytes is within the limit`);
      },
    );
  });

  test('(b) mutations of valid imap/pop3 bodies: 400/403/409/413/415/422/429 with the code of that status', async (t) => {
    const h = await harness(t, 'b');
    const password = fc.oneof(wireString(1, 300), fc.constant('x'.repeat(4096)), secretRef);
    await h.check(
      '(b) mutated valid bodies',
      runs(5000),
      fc.tuple(validBody(password), fc.array(mutation, { maxLength: 4 })),
      async ([valid, mutations]) => {
        const body = applyMutations(valid as Record<string, Json>, mutations);
        const req = { method: 'POST', url: '/v1/sessions', headers: { ...AUTH, ...JSON_TYPE } };
        const code = checkCreateRefusal(await h.inject({ ...req, payload: JSON.stringify(body) }), req);
        // an unchanged valid body is never refused as invalid: the schema and the service agree
        if (mutations.length === 0) assert.equal(code, expectedForValid(body), `valid body ${JSON.stringify(body).slice(0, 400)}`);
      },
    );
  });

  const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'PROPFIND', 'SEARCH', 'TRACE', 'LOCK'];
  const KNOWN_PATHS = [
    '/v1/sessions', '/v1/sessions/', '/v1/sessions/invoices', '/v1/sessions/invoices/authorize', '/v1', '/v1/', '/v1/oauth2/callback',
    '/health', '/ready', '/metrics', '/openapi.json', '/docs', '/docs/', '/docs/json', '/docs/static/index.html', '/', '/v2/sessions', '/V1/sessions',
  ];
  const segment = fc.oneof(
    fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,70}$/),
    anyString(30).map(encodeURIComponent),
    fc.constantFrom('%', '%zz', '%00', '%2e%2e', '..', '.', '%2F', '%C0%AF', ';a', 'a b', '\u00e9', '%E2%80%AE', '*', '~'),
    fc.integer({ min: 60, max: 400 }).map((n) => 'a'.repeat(n)), // past the name limit and the router's parameter limit
    fc.webSegment(),
  );
  /** A known path with some of its characters percent-encoded: the router decodes them, a prefix check may not. */
  const encodedPath = fc
    .tuple(fc.constantFrom(...KNOWN_PATHS.filter((p) => p.startsWith('/v1/'))), fc.array(fc.nat(), { minLength: 1, maxLength: 3 }))
    .map(([p, picks]) => {
      const chars = [...p];
      for (const pick of picks) {
        const i = 1 + (pick % (chars.length - 1));
        if (chars[i] !== '/' && chars[i]!.length === 1) chars[i] = `%${chars[i]!.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
      }
      return chars.join('');
    });
  const pathArb = fc.oneof(
    fc.constantFrom(...KNOWN_PATHS),
    encodedPath,
    segment.map((s) => `/v1/sessions/${s}`),
    fc.tuple(segment, fc.constantFrom('authorize', 'x', '')).map(([s, tail]) => `/v1/sessions/${s}/${tail}`),
    segment.map((s) => `/v1/${s}`),
    fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
    fc.array(segment, { maxLength: 4 }).map((s) => `/${s.join('/')}`),
  );
  const queryValue = fc.oneof(
    fc.constantFrom('true', 'false', '1', '0', '', 'yes', 'TRUE', 'null', '%', '%zz', 'a'.repeat(70), 'bot-a', 'ops', '[]', '{}'),
    anyString(20).map(encodeURIComponent),
  );
  const queryArb = fc
    .array(fc.tuple(fc.constantFrom('refresh', 'owner', 'all', 'state', 'code', 'error', 'x', '__proto__', 'constructor[prototype][polluted]'), queryValue), { maxLength: 4 })
    .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}` : ''));
  const authArb = fc.oneof(
    fc.constant(undefined),
    fc.constant(`Bearer ${KEY}`),
    fc.constantFrom(`bearer ${KEY}`, `Bearer  ${KEY}`, `Bearer ${KEY} `, `Bearer ${KEY}x`, `Basic ${Buffer.from(`bot-a:${KEY}`).toString('base64')}`, 'Bearer', 'Bearer ', '', `Bearer ${'x'.repeat(600)}`, KEY),
    latin1(80).map((s) => `Bearer ${s}`),
    latin1(80),
  );
  const contentTypeArb = fc.oneof(
    fc.constant(undefined),
    fc.constantFrom(
      'application/json', 'application/json; charset=utf-8', 'application/json; charset=utf-16', 'APPLICATION/JSON', 'application/problem+json', 'application/jsonx',
      'text/plain', 'text/html', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', ';', 'application/json;;', '*/*',
    ),
    latin1(40),
  );
  const requestIdArb = fc.oneof(fc.constant(undefined), latin1(200), fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/), fc.constantFrom('a\u0000b', 'a\r\nX-Injected: 1', 'x'.repeat(129)));
  const acceptArb = fc.oneof(fc.constant(undefined), fc.constantFrom('application/json', 'text/html', 'application/problem+json', '*/*', 'text/html, application/json'), latin1(30));
  const bodyArb = fc.oneof(
    fc.constant(undefined),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    rawJson,
    anyString(100),
    fc.constant('{"name":"invoices","type":"imap","host":"mail.example.com","username":"u","password":"p"}'),
  );
  const requestArb = fc.record({
    method: fc.constantFrom(...METHODS),
    path: pathArb,
    query: queryArb,
    authorization: authArb,
    contentType: contentTypeArb,
    requestId: requestIdArb,
    accept: acceptArb,
    body: bodyArb,
  });

  test('(c) random methods, paths, query strings and headers: no 5xx, problem+json for every error', async (t) => {
    const h = await harness(t, 'c');
    await h.check(
      '(c) random requests (inject)',
      runs(8000),
      requestArb,
      async (r) => {
        const headers: Record<string, string> = {};
        if (r.authorization !== undefined) headers.authorization = r.authorization;
        if (r.contentType !== undefined) headers['content-type'] = r.contentType;
        if (r.requestId !== undefined) headers['x-request-id'] = r.requestId;
        if (r.accept !== undefined) headers.accept = r.accept;
        const req = { method: r.method, url: `${r.path}${r.query}`, headers };
        const logsBefore = h.logs.length;
        const res = await h.inject({ ...req, ...(r.body !== undefined ? { payload: r.body } : {}) });
        checkAnswer(res, req);
        const seen = `${JSON.stringify(res.headers)}${res.body}${h.logs.slice(logsBefore).join('')}`;
        assert.ok(!seen.includes(KEY), `the API key appears in the answer or the log: ${describeRequest(req)}`);
        checkKeyRequired(res, req, r.authorization === `Bearer ${KEY}`);
        // a caller's request id is echoed only when it is short and plain (no header or log injection)
        const id = String(res.headers['x-request-id']);
        assert.match(id, /^[A-Za-z0-9._:-]{1,128}$/, `x-request-id ${JSON.stringify(id)}`);
      },
    );
  });

  test('(c) over a real loopback socket: control characters, bad URLs and oversized headers get problem+json', async (t) => {
    const h = await harness(t, 'c-wire', { listen: true });
    const port = h.port!;
    /** One raw HTTP/1.1 exchange with the listening app on 127.0.0.1; the socket never goes anywhere else. */
    const exchange = (raw: Buffer) =>
      new Promise<{ status: number; headers: Record<string, string>; body: string }>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1');
        const chunks: Buffer[] = [];
        socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
        socket.on('data', (d) => chunks.push(d));
        socket.on('error', reject);
        socket.on('close', () => {
          const text = Buffer.concat(chunks).toString('latin1');
          const [head = '', ...rest] = text.split('\r\n\r\n');
          const [statusLine = '', ...lines] = head.split('\r\n');
          const headers: Record<string, string> = {};
          for (const line of lines) {
            const i = line.indexOf(':');
            if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
          }
          let body = rest.join('\r\n\r\n');
          if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
          resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
        });
        socket.end(raw);
      });
    const headerValue = fc.oneof(latin1(60).map((s) => s.replace(/[\r\n]/g, '')), fc.constantFrom('a\u0000b', 'a\u0001b', 'a\u007fb', 'x'.repeat(20_000)));
    const wire = fc.record({
      method: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'G\u0000T', ''),
      target: fc.oneof(
        fc.constantFrom('/v1/sessions', '/health', '/v1/sessions/%', '/v1/sessions/%zz', '/v1/sessions/%C0', '*', 'http://x/v1/sessions', 'http://127.0.0.1/v1/sessions/invoices', '/v1/sessions?all=%'),
        pathArb,
      ),
      header: fc.constantFrom('x-request-id', 'authorization', 'content-type', 'accept', 'x-other'),
      value: headerValue,
      withKey: fc.boolean(),
    });
    await h.check(
      '(c) random requests (socket)',
      runs(1000),
      wire,
      async (w) => {
        const key = w.withKey && w.header !== 'authorization' ? `Authorization: Bearer ${KEY}\r\n` : '';
        const head = `${w.method} ${w.target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${key}${w.header}: ${w.value}\r\nConnection: close\r\n\r\n`;
        const res = await exchange(Buffer.from(head, 'latin1'));
        const fake = {
          statusCode: res.status,
          headers: res.headers,
          body: res.body,
        } as unknown as LightMyRequestResponse;
        tally['c-wire']!.requests += 1;
        tally['c-wire']!.statuses[res.status] = (tally['c-wire']!.statuses[res.status] ?? 0) + 1;
        const sent = { method: w.method, url: w.target, headers: { [w.header]: w.value } };
        checkAnswer(fake, sent);
        checkKeyRequired(fake, sent, key !== '');
      },
    );
  });

  test('(d) neither the API key nor a password appears in any answer or log line', async (t) => {
    const h = await harness(t, 'd');
    // a recognisable prefix, then anything: quotes, backslashes, newlines, unicode, "[redacted]"
    const passwordArb = fc
      .oneof(fc.string({ minLength: 8, maxLength: 200, unit: 'binary' }), fc.constantFrom('[redacted]', '"},{"a":"', '\\\\u0000', '\n{"level":60}', 'p'.repeat(4200)))
      .map((s) => `Pw§${s}`);
    const keyHeader = fc.oneof(
      { weight: 3, arbitrary: fc.constant(`Bearer ${KEY}`) },
      { weight: 2, arbitrary: fc.constantFrom(`bearer ${KEY}`, `Bearer ${KEY} `, `Bearer ${KEY}\t`, `Basic ${KEY}`, KEY, `Bearer ${KEY}${KEY}`) },
    );
    const leakCase = fc.record({
      secret: passwordArb,
      body: validBody(fc.constant('placeholder')),
      mutations: fc.array(mutation, { maxLength: 3 }),
      where: fc.constantFrom('password', 'password', 'password', 'pasword', 'tls.servername-next-to-it', 'deep'),
      auth: keyHeader,
      url: fc.constantFrom('/v1/sessions', '/v1/sessions?all=true', '/v1/sessions/x'),
      method: fc.constantFrom('POST', 'POST', 'POST', 'GET', 'DELETE'),
    });
    const encodings = (s: string) => [...new Set([s, JSON.stringify(s).slice(1, -1), encodeURIComponent(s)])].filter((e) => e.length >= 8);
    await h.check(
      '(d) leak checks',
      runs(2000),
      leakCase,
      async (c) => {
        const body = applyMutations(c.body as Record<string, Json>, c.mutations, ['password']);
        if (c.where === 'password') body.password = c.secret;
        else if (c.where === 'pasword') {
          delete body.password;
          body.pasword = c.secret;
        } else if (c.where === 'deep') body.password = { secret: 'x', nested: [c.secret] };
        else {
          body.password = c.secret;
          body.tls = { servername: 'mail.example.com' };
        }
        const req = { method: c.method, url: c.url, headers: { authorization: c.auth, ...JSON_TYPE } };
        const before = h.logs.length;
        const res = await h.inject({ ...req, ...(c.method === 'POST' ? { payload: JSON.stringify(body) } : {}) });
        checkAnswer(res, req);
        const answer = `${JSON.stringify(res.headers)}\n${res.body}`;
        const lines = h.logs.slice(before).join('');
        for (const [what, value] of [['password', c.secret], ['API key', KEY]] as const) {
          for (const form of encodings(value)) {
            assert.ok(!answer.includes(form), `the ${what} appears in the answer: ${answer.slice(0, 500)}`);
            assert.ok(!lines.includes(form), `the ${what} appears in a log line: ${lines.slice(0, 500)}`);
          }
        }
      },
    );
  });
});
