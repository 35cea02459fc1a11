/**
 * Hostile servers at scale (issue #10, the fuzz suite's second family): fast-check scripts the replies of
 * fake IMAP, POP3, EWS and identity provider endpoints (test/harness/fake-mail-servers.ts, fake-ews.ts,
 * fake-identity.ts), and the service talks to them through its real client libraries (imapflow, node-pop3,
 * ews-javascript-api, msal-node):
 *
 *   (e) IMAP and (f) POP3: every reply of the dialog normal, truncated, replaced by random text or bytes,
 *       padded with junk, answered with a random status or response code, or followed by a close, a reset
 *       or silence;
 *   (g) EWS: random HTTP statuses with empty, random, truncated or valid bodies, cut off mid-body, on
 *       create and on a later refresh of a held session;
 *   (h) the identity provider's token endpoint: random statuses and (not quite) token answers.
 *
 * Every case: no crash (no uncaught exception or unhandled rejection), GET /health answers, and every answer
 * is 2xx or a documented problem: problem+json with a code of src/errors.ts, its registered status, never
 * INTERNAL_ERROR, never internal exception text; no resource sees an empty bearer token; nothing leaves the
 * machine (the network guard, ./net-guard.ts, lets only loopback through).
 *
 * Reproduce a failure with the seed it prints: FUZZ_SEED=<seed> npx tsx --test test/security/fuzz-servers.test.ts
 * (FUZZ_PATH=<path> replays the shrunk case alone). FUZZ_SCALE=10 runs ten times as many cases.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import type { ErrorCode } from '../../src/errors.js';
import { installNetGuard, netAttempts } from './net-guard.js';

installNetGuard();
const { build } = await import('../helper.js');
const { errorCatalog, problemType } = await import('../../src/errors.js');
const { startFakeImap, startFakePop3 } = await import('../harness/fake-mail-servers.js');
const { inboxAnswerXml } = await import('../harness/fake-ews.js');
const { startEwsWorld, USERS } = await import('../harness/ews-world.js');
const { startGraphWorld } = await import('../harness/graph-world.js');
type Reply = import('../harness/fake-mail-servers.js').Reply;
type HostileHttpAnswer = import('../harness/fake-ews.js').HostileHttpAnswer;
type App = Awaited<ReturnType<typeof build>>['app'];

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_0010);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));

const processErrors: unknown[] = [];
process.on('uncaughtException', (err) => processErrors.push(err));
process.on('unhandledRejection', (err) => processErrors.push(err));

const tally: Record<string, { cases: number; statuses: Record<string, number>; ms: number }> = {};

// ---------------------------------------------------------------------------------------------------------
// The oracle

const PROBLEM_KEYS = new Set(['type', 'title', 'status', 'detail', 'code', 'instance', 'requestId', 'retryAfterSeconds', 'errors', 'authorizationUrl', 'supportedBy']);
const INTERNAL_TEXT = /TypeError|ReferenceError|RangeError|SyntaxError|Cannot read propert|is not a function|is not defined|undefined \(reading|\bat \S+ \(\S+:\d+:\d+\)|node_modules\/|\bsrc\/[\w/.-]+\.[tj]s\b/;

/** 2xx, or a documented problem for a server's misbehaviour. Returns the code ('' for 2xx). */
function checkAnswer(res: LightMyRequestResponse, what: string): string {
  const where = `${what} -> ${res.statusCode} ${res.body.slice(0, 500)}`;
  if (res.statusCode >= 200 && res.statusCode < 300) return '';
  assert.match(String(res.headers['content-type']), /^application\/problem\+json(;|$)/, `not problem+json: ${where}`);
  const body = JSON.parse(res.body) as Record<string, unknown>;
  const code = body.code as string;
  assert.ok(typeof code === 'string' && Object.hasOwn(errorCatalog, code), `code is not in src/errors.ts: ${where}`);
  assert.notEqual(code, 'INTERNAL_ERROR', `a hostile server's answer became an internal error: ${where}`);
  assert.equal(errorCatalog[code as ErrorCode].status, res.statusCode, `code ${code} is registered with another status: ${where}`);
  assert.equal(body.status, res.statusCode, `status member: ${where}`);
  assert.equal(body.type, problemType(code as ErrorCode), `type: ${where}`);
  assert.equal(typeof body.detail, 'string', `detail: ${where}`);
  assert.doesNotMatch(String(body.detail), INTERNAL_TEXT, `internal exception text in the detail: ${where}`);
  for (const key of Object.keys(body)) assert.ok(PROBLEM_KEYS.has(key), `undocumented problem member "${key}": ${where}`);
  if (body.retryAfterSeconds !== undefined) assert.equal(res.headers['retry-after'], String(body.retryAfterSeconds), `Retry-After: ${where}`);
  return code;
}

/** Runs a property with the fixed seed; after every case the process is whole and the service answers. */
async function check<T>(t: TestContext, app: App, label: string, numRuns: number, arb: fc.Arbitrary<T>, predicate: (value: T) => Promise<void>): Promise<void> {
  const stats = (tally[label] = { cases: 0, statuses: {}, ms: 0 });
  const started = Date.now();
  const property = fc.asyncProperty(arb, async (value) => {
    stats.cases += 1;
    await predicate(value);
    await new Promise((resolve) => setImmediate(resolve)); // a rejection left behind surfaces by now
    assert.deepEqual(processErrors, [], 'an uncaught exception or unhandled rejection');
    assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'GET /health');
    assert.deepEqual(netAttempts, [], 'a DNS query or a connection to something other than loopback');
  });
  try {
    await fc.assert(property, { seed: SEED, numRuns, includeErrorInReport: true, ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}) });
  } catch (err) {
    throw new Error(`${label}: failed with seed ${SEED} (rerun: FUZZ_SEED=${SEED} npx tsx --test test/security/fuzz-servers.test.ts; add FUZZ_PATH=<path>)\n${(err as Error).message}`);
  } finally {
    stats.ms = Date.now() - started;
    t.diagnostic(`${label}: ${stats.cases} cases in ${(stats.ms / 1000).toFixed(1)} s, answers ${JSON.stringify(stats.statuses)}`);
  }
}

function count(label: string, res: LightMyRequestResponse, code: string): void {
  const key = `${res.statusCode}${code ? ` ${code}` : ''}`;
  tally[label]!.statuses[key] = (tally[label]!.statuses[key] ?? 0) + 1;
}

// ---------------------------------------------------------------------------------------------------------
// Replies of line protocols (IMAP, POP3)

const junkText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 120 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 200 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  fc.constantFrom('\r\n', '\n', '\r', '\0', '.\r\n', '+\r\n', '-\r\n', '*\r\n', '* BYE\r\n', '+ \r\n', '{99999999}\r\n', '{5}\r\nab', '"unterminated\r\n', ')\r\n', '(((((\r\n'),
);

/** What one step of the dialog answers instead of (or besides) the normal reply. */
const action = fc.oneof(
  { weight: 24, arbitrary: fc.constant({ kind: 'normal' as const }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), then: fc.constantFrom('close' as const, 'reset' as const, 'silence' as const, 'more' as const) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('junk' as const), data: junkText, then: fc.constantFrom('close' as const, 'reset' as const, 'more' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('append' as const), data: junkText }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('status' as const), word: fc.string({ maxLength: 12 }), code: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }) }) },
  { weight: 2, arbitrary: fc.constantFrom({ kind: 'close' as const }, { kind: 'reset' as const }) },
  // each silence costs a deadline (TIMEOUTS below): rare, so the suite stays quick
  { weight: 1, arbitrary: fc.constant({ kind: 'silence' as const }) },
);
type Action = typeof action extends fc.Arbitrary<infer A> ? A : never;

/** Applies an action to a normal reply; `statusWord` finds the status in it (IMAP "OK"/"NO", POP3 "+OK"/"-ERR"). */
function perform(a: Action, normal: string, statusWord: RegExp): Reply {
  switch (a.kind) {
    case 'normal':
      return normal;
    case 'truncate': {
      const cut = normal.slice(0, a.at % Math.max(1, normal.length));
      if (a.then === 'more') return cut;
      return a.then === 'close' ? { close: true, after: cut } : a.then === 'reset' ? (cut ? { close: true, after: cut } : { reset: true }) : cut || { silence: true };
    }
    case 'junk':
      return a.then === 'close' ? { close: true, after: a.data } : a.then === 'reset' ? { reset: true } : a.data;
    case 'append':
      return Buffer.concat([Buffer.from(normal, 'latin1'), Buffer.isBuffer(a.data) ? a.data : Buffer.from(a.data, 'utf8')]);
    case 'status':
      return normal.replace(statusWord, `${a.word}${a.code !== undefined ? ` [${a.code}]` : ''}`);
    case 'close':
      return { close: true };
    case 'reset':
      return { reset: true };
    case 'silence':
      return { silence: true };
  }
}

const IMAP_STEPS = ['greeting', 'capability', 'login', 'authenticate', 'status', 'logout', 'other'] as const;
const POP3_STEPS = ['greeting', 'capa', 'user', 'pass', 'auth', 'stat', 'quit', 'other'] as const;
/** One plan per connection (the second is for a refresh or reconnect), each step with its action. */
const plan = <S extends string>(steps: readonly S[]) => fc.array(fc.dictionary(fc.constantFrom(...steps), action, { maxKeys: 3 }), { minLength: 1, maxLength: 2 });

const IMAP_CAPABILITIES = fc.subarray(['LOGINDISABLED', 'STARTTLS', 'AUTH=PLAIN', 'AUTH=LOGIN', 'AUTH=XOAUTH2', 'SASL-IR', 'ID', 'ENABLE', 'CONDSTORE', 'COMPRESS=DEFLATE', 'IDLE', 'NAMESPACE', 'UTF8=ACCEPT', 'QUOTA']);
const POP3_CAPA = fc.array(
  fc.oneof(
    fc.constantFrom('USER', 'RESP-CODES', 'PIPELINING', 'TOP', 'UIDL', 'STLS', 'SASL PLAIN XOAUTH2', 'LOGIN-DELAY 0', 'LOGIN-DELAY 1', 'LOGIN-DELAY 900', 'LOGIN-DELAY 999999999', 'LOGIN-DELAY -5', 'LOGIN-DELAY x', 'EXPIRE 0'),
    fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, '')),
  ),
  { maxLength: 6 },
);

// ---------------------------------------------------------------------------------------------------------

describe('hostile servers at scale (fast-check: random and truncated replies)', () => {
  after(() => {
    const cases = Object.values(tally).reduce((n, s) => n + s.cases, 0);
    const lines = Object.entries(tally).map(([name, s]) => `#   ${name}: ${s.cases} cases, ${(s.ms / 1000).toFixed(1)} s`);
    process.stdout.write(`# fuzz-servers (seed ${SEED}): ${cases} cases\n${lines.join('\n')}\n`);
  });

  // short deadlines: a server that falls silent costs a fraction of a second per case
  const TIMEOUTS = { connectMs: 250, commandMs: 150 };

  test('(e) IMAP: random, truncated and cut-off replies at every step', async (t) => {
    const { app } = await build(t, { MSB_KEEPALIVE_INTERVAL_MS: '0' });
    let scripts: Record<string, Action>[] = [];
    const options: Parameters<typeof startFakeImap>[0] = {
      capabilities: [],
      script: (step, normal, connection) => perform(scripts[connection]?.[step] ?? { kind: 'normal' }, normal, /\b(OK|NO|BAD)\b/),
    };
    const server = await startFakeImap(options);
    t.after(() => server.close());
    await check(t, app, '(e) IMAP', runs(800), fc.record({ plan: plan(IMAP_STEPS), caps: IMAP_CAPABILITIES, refresh: fc.boolean() }), async (c) => {
      // the plans apply to this case's connections (the fake numbers them over its life)
      const before = server.connections();
      scripts = [];
      c.plan.forEach((p, i) => (scripts[before + i] = p));
      options.capabilities = c.caps;
      const body = { name: 'fuzz-imap', type: 'imap', host: '127.0.0.1', port: server.port, secure: false, tls: { starttls: 'off' }, username: 'u@example.test', password: 'Fuzz-Pw-1', timeouts: TIMEOUTS };
      const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: body });
      count('(e) IMAP', res, checkAnswer(res, `IMAP ${JSON.stringify(c)}`));
      if (res.statusCode === 201 && c.refresh) {
        const live = await app.inject({ method: 'GET', url: '/v1/sessions/fuzz-imap?refresh=true' });
        checkAnswer(live, `IMAP refresh ${JSON.stringify(c)}`);
      }
      const closed = await app.inject({ method: 'DELETE', url: '/v1/sessions/fuzz-imap' });
      assert.ok(closed.statusCode === 204 || closed.statusCode === 404, `DELETE: ${closed.statusCode} ${closed.body}`);
    });
  });

  test('(f) POP3: random, truncated and cut-off replies at every step, random response codes and CAPA', async (t) => {
    const { app } = await build(t, { MSB_CHECK_INTERVAL_MS: '0' });
    let scripts: Record<string, Action>[] = [];
    let pass = '+OK';
    const options: Parameters<typeof startFakePop3>[0] = {
      capa: [],
      pass: () => pass,
      script: (step, normal, connection) => perform(scripts[connection]?.[step] ?? { kind: 'normal' }, normal, /^(\+OK|-ERR)/),
    };
    const server = await startFakePop3(options);
    t.after(() => server.close());
    const passReply = fc.oneof(
      { weight: 3, arbitrary: fc.constant('+OK logged in') },
      { weight: 2, arbitrary: fc.constantFrom('LOGIN-DELAY', 'IN-USE', 'SYS/TEMP', 'SYS/PERM', 'AUTH', 'SYS/TEMP/DISK', 'UTF8', '').map((code) => `-ERR [${code}] refused`) },
      { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((s) => `-ERR [${s.replace(/[\r\n\]]/g, '')}] x`) },
      { weight: 1, arbitrary: fc.constantFrom('-ERR', '+OK', '-', '+', '-ERR [', '+OK [LOGIN-DELAY]') },
    );
    await check(t, app, '(f) POP3', runs(800), fc.record({ plan: plan(POP3_STEPS), capa: POP3_CAPA, pass: passReply, refresh: fc.boolean() }), async (c) => {
      const before = server.connections();
      scripts = [];
      c.plan.forEach((p, i) => (scripts[before + i] = p));
      options.capa = c.capa;
      pass = c.pass;
      const body = { name: 'fuzz-pop3', type: 'pop3', host: '127.0.0.1', port: server.port, secure: false, tls: { starttls: 'off' }, username: 'u@example.test', password: 'Fuzz-Pw-1', timeouts: TIMEOUTS };
      const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: body });
      count('(f) POP3', res, checkAnswer(res, `POP3 ${JSON.stringify(c)}`));
      if (res.statusCode === 201 && c.refresh) checkAnswer(await app.inject({ method: 'GET', url: '/v1/sessions/fuzz-pop3?refresh=true' }), `POP3 refresh ${JSON.stringify(c)}`);
      const closed = await app.inject({ method: 'DELETE', url: '/v1/sessions/fuzz-pop3' });
      assert.ok(closed.statusCode === 204 || closed.statusCode === 404, `DELETE: ${closed.statusCode} ${closed.body}`);
    });
  });

  describe('HTTP endpoints', () => {
    let ews: Awaited<ReturnType<typeof startEwsWorld>>;
    let graph: Awaited<ReturnType<typeof startGraphWorld>>;
    before(async () => {
      ews = await startEwsWorld();
      graph = await startGraphWorld();
    });
    after(async () => {
      await ews?.close();
      await graph?.close();
    });

    const status = fc.oneof(
      fc.constantFrom(200, 200, 201, 204, 301, 302, 400, 401, 403, 404, 429, 456, 500, 500, 500, 502, 503, 504),
      // no 1xx: an informational answer is not an answer, the client waits on (a silent server, tested elsewhere)
      fc.integer({ min: 200, max: 599 }),
    );

    test('(g) EWS: random statuses and bodies, cut off or not, on create and on a refresh', async (t) => {
      const { app } = await build(t, { ...ews.env, MSB_CHECK_INTERVAL_MS: '0', MSB_CONNECT_TIMEOUT_MS: '2000', MSB_COMMAND_TIMEOUT_MS: '2000' });
      const valid = inboxAnswerXml(7, 2);
      const fault = '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>a:ErrorAccessDenied</faultcode><faultstring>denied</faultstring></s:Fault></s:Body></s:Envelope>';
      const body = fc.oneof(
        fc.constantFrom('', 'oops', valid, fault, '<html><body>Service Unavailable</body></html>', '<?xml version="1.0"?>', '<s:Envelope>', '\ufeff<?xml version="1.0"?><a/>', '<!DOCTYPE x [<!ENTITY a "b">]><x>&a;&c;</x>'),
        fc.nat().map((n) => valid.slice(0, n % valid.length)),
        fc.nat().map((n) => fault.slice(0, n % fault.length)),
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
        fc.tuple(fc.nat(), fc.string({ maxLength: 40 })).map(([n, s]) => `${valid.slice(0, n % valid.length)}${s}${valid.slice(n % valid.length)}`),
      );
      const answer = fc.record({
        status,
        body,
        cutAfter: fc.option(fc.nat({ max: 400 }), { nil: undefined, freq: 5 }),
        contentType: fc.constantFrom('text/xml; charset=utf-8', 'text/html', 'application/json', ''),
      });
      // half the creates succeed, so that the refresh of a held session (the periodic check's path) meets the hostile answers too
      const healthy = fc.constant({ status: 200, body: valid, cutAfter: undefined, contentType: 'text/xml; charset=utf-8' as const });
      const createAnswer = fc.oneof(healthy, answer);
      await check(t, app, '(g) EWS', runs(800), fc.record({ create: createAnswer, refresh: fc.option(answer, { nil: undefined, freq: 8 }) }), async (c) => {
        const toHostile = (a: typeof c.create): HostileHttpAnswer => ({
          status: a.status, body: a.body, headers: a.contentType ? { 'content-type': a.contentType } : {}, ...(a.cutAfter !== undefined ? { cutAfter: a.cutAfter } : {}),
        });
        ews.ews.hostile = toHostile(c.create);
        const payload = { name: 'fuzz-ews', type: 'ews', url: ews.ews.url, username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'basic' } };
        const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload });
        count('(g) EWS', res, checkAnswer(res, `EWS create ${JSON.stringify(c).slice(0, 400)}`));
        if (res.statusCode === 201 && c.refresh) {
          ews.ews.hostile = toHostile(c.refresh);
          await new Promise((resolve) => setTimeout(resolve, 2)); // past the summary the create read
          const live = await app.inject({ method: 'GET', url: '/v1/sessions/fuzz-ews?refresh=true' });
          const code = checkAnswer(live, `EWS refresh ${JSON.stringify(c).slice(0, 400)}`);
          // a failed refresh is no error of the request: the session says it reconnects (lastError has why)
          count('(g) EWS', live, `refresh ${code || (live.json() as { state: string }).state}`);
        }
        ews.ews.hostile = undefined;
        await app.inject({ method: 'DELETE', url: '/v1/sessions/fuzz-ews' });
      });
    });

    test('(h) identity provider: random token endpoint answers; never an empty bearer token', async (t) => {
      const { app } = await build(t, { ...graph.env, ...ews.env, MSB_CHECK_INTERVAL_MS: '0' });
      const tokenBody = fc.oneof(
        fc.constantFrom('', '{}', 'null', '[]', '"x"', 'oops', '{"access_token":""}', '{"access_token":null}', '{"access_token":42}', '{"error":""}', '{"error":42}', '{"error":"invalid_grant"}', '{"error":"server_error","error_description":"AADSTS50126: bad"}'),
        fc.record(
          { token_type: fc.constantFrom('Bearer', 'bearer', 'mac', ''), access_token: fc.oneof(fc.string({ maxLength: 40 }), fc.constant('')), expires_in: fc.oneof(fc.integer({ min: -10, max: 1e9 }), fc.constant('x')), error: fc.string({ maxLength: 20 }) },
          { requiredKeys: [] },
        ).map((o) => JSON.stringify(o)),
        fc.string({ unit: 'binary', maxLength: 200 }),
      );
      const flows = fc.constantFrom('app', 'ropc', 'ews-ropc');
      await check(t, app, '(h) identity provider', runs(400), fc.record({ status, body: tokenBody, flow: flows, client: fc.uuid() }), async (c) => {
        // a client ID per case: msal-node holds a failed request back for a while per app instance
        graph.idp.hostile = { status: c.status, body: c.body, headers: { 'content-type': 'application/json' }, where: 'token' };
        ews.idp.hostile = graph.idp.hostile;
        const graphBefore = graph.graph.requests.length;
        const ewsBefore = ews.ews.requests.length;
        const auth = { clientId: c.client, tenantId: graph.idp.tenantId, authorityHost: graph.idp.host };
        const payload =
          c.flow === 'app'
            ? { name: 'fuzz-idp', type: 'outlook', mailbox: USERS.shared.name, auth: { ...auth, flow: 'clientCredentials', clientSecret: 'Fuzz-Secret-1' } }
            : c.flow === 'ropc'
              ? { name: 'fuzz-idp', type: 'outlook', username: USERS.alice.name, password: USERS.alice.password, auth: { ...auth, flow: 'password' } }
              : { name: 'fuzz-idp', type: 'ews', url: ews.ews.url, username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'oauth2', flow: 'password', clientId: c.client, tenantId: ews.idp.tenantId, authorityHost: ews.idp.host } };
        const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload });
        count('(h) identity provider', res, checkAnswer(res, `identity provider ${JSON.stringify(c).slice(0, 400)}`));
        const bearers = [...graph.graph.requests.slice(graphBefore).map((r) => r.token ?? ''), ...ews.ews.requests.slice(ewsBefore).map((r) => r.token ?? '')];
        assert.ok(!bearers.includes(''), `a resource got a request without a token: ${JSON.stringify(c)}`);
        graph.idp.hostile = undefined;
        ews.idp.hostile = undefined;
        await app.inject({ method: 'DELETE', url: '/v1/sessions/fuzz-idp' });
      });
    });
  });
});
