import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { App } from '../../src/app.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { USERS, startEwsWorld, type EwsWorld } from '../harness/ews-world.js';
import { inboxAnswerXml, type HostileHttpAnswer } from '../harness/fake-ews.js';

/**
 * An Exchange endpoint (or the load balancer in front of it) that answers with something ews-javascript-api
 * cannot read. The library used to throw inside its own promise handler for a 500 whose body is not a SOAP
 * fault: the request never settled and the unhandled rejection ended the process, on create and on every
 * periodic check. Each answer must be an ordinary problem, a held session must retry, and no detail may
 * carry the library's internal exception text.
 */
const processErrors: unknown[] = [];
const onError = (err: unknown) => processErrors.push(err);

const XML = { 'content-type': 'text/xml; charset=utf-8' };
const TRUNCATED = inboxAnswerXml(3, 1).slice(0, 180);
const UNREADABLE: [string, HostileHttpAnswer][] = [
  ['HTTP 500, empty body', { status: 500, body: '', headers: XML }],
  ['HTTP 500, "oops"', { status: 500, body: 'oops', headers: { 'content-type': 'text/plain' } }],
  ['HTTP 500, truncated XML', { status: 500, body: TRUNCATED, headers: XML }],
  ['HTTP 500, XML that is no SOAP envelope', { status: 500, body: '<?xml version="1.0"?><html><body>busy</body></html>', headers: XML }],
];
const INTERNAL_TEXT = /TypeError|Cannot read|undefined|documentElement|is not a function|The request failed/;

async function waitFor(app: App, name: string, predicate: (s: Record<string, any>) => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const res = await app.inject({ method: 'GET', url: `/v1/sessions/${name}` });
    last = res.json();
    if (res.statusCode === 200 && predicate(res.json())) return res.json();
    await sleep(50);
  }
  assert.fail(`session ${name} never reached the expected state; last: ${JSON.stringify(last)}`);
}

describe('EWS endpoints that answer what the client library cannot read', () => {
  let world: EwsWorld;
  before(async () => {
    process.on('unhandledRejection', onError);
    process.on('uncaughtException', onError);
    world = await startEwsWorld();
  });
  after(async () => {
    process.off('unhandledRejection', onError);
    process.off('uncaughtException', onError);
    await world?.close();
  });

  const basic = (name: string) => ({ name, type: 'ews', url: world.ews.url, username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'basic' } });
  // short deadlines: a request that never settles shows as MAIL_TIMEOUT within the test
  const ENV = () => ({ ...world.env, MSB_CONNECT_TIMEOUT_MS: '3000', MSB_COMMAND_TIMEOUT_MS: '3000' });

  for (const [label, answer] of UNREADABLE) {
    test(`create, ${label}: MAIL_PROTOCOL_ERROR (502), the process lives on`, async (t) => {
      const { app } = await build(t, ENV());
      world.ews.hostile = answer;
      t.after(() => (world.ews.hostile = undefined));
      const problem = assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: basic('broken') }), 'MAIL_PROTOCOL_ERROR');
      assert.match(String(problem.detail), /HTTP 500/);
      assert.doesNotMatch(String(problem.detail), INTERNAL_TEXT);
      await sleep(20); // a rejection left behind would surface by now
      assert.deepEqual(processErrors, [], 'an unhandled rejection or uncaught exception');
      world.ews.hostile = undefined;
      assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: basic('broken') })).statusCode, 201, 'the same name works once the server is healthy');
    });
  }

  test('create, HTTP 456 (account locked) without an unlock URL: MAIL_AUTH_FAILED, the process lives on', async (t) => {
    const { app } = await build(t, ENV());
    world.ews.hostile = { status: 456, body: '', headers: XML };
    t.after(() => (world.ews.hostile = undefined));
    const problem = assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: basic('locked') }), 'MAIL_AUTH_FAILED');
    assert.match(String(problem.detail), /locked/);
    await sleep(20);
    assert.deepEqual(processErrors, []);
  });

  test('create, HTTP 200 with a body that is not XML: no internal exception text in the detail', async (t) => {
    const { app } = await build(t, ENV());
    for (const body of ['oops', '', TRUNCATED]) {
      world.ews.hostile = { status: 200, body, headers: XML };
      const problem = assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: basic('garbage') }), 'MAIL_PROTOCOL_ERROR');
      assert.doesNotMatch(String(problem.detail), INTERNAL_TEXT, `detail for ${JSON.stringify(body.slice(0, 20))}`);
    }
    world.ews.hostile = undefined;
    assert.deepEqual(processErrors, []);
  });

  test('a held session whose periodic check gets such answers reconnects, and recovers', async (t) => {
    const { app } = await build(t, { ...ENV(), MSB_CHECK_INTERVAL_MS: '100', MSB_RECONNECT_BASE_MS: '50', MSB_RECONNECT_MAX_MS: '200' });
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: basic('held') })).statusCode, 201);
    t.after(() => (world.ews.hostile = undefined));
    for (const [, answer] of UNREADABLE) {
      world.ews.hostile = answer;
      const lost = await waitFor(app, 'held', (s) => s.state === 'reconnecting' && s.lastError?.code === 'MAIL_PROTOCOL_ERROR');
      assert.doesNotMatch(lost.lastError.message, INTERNAL_TEXT);
      // retrying, never failed for good: reconnect attempts keep coming
      await waitFor(app, 'held', (s) => s.state === 'reconnecting' && s.reconnect?.attempt >= 2);
      world.ews.hostile = undefined;
      await waitFor(app, 'held', (s) => s.state === 'connected');
    }
    assert.deepEqual(processErrors, [], 'an unhandled rejection or uncaught exception');
  });
});
