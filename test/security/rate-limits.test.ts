import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashApiKey } from '../../src/security/api-keys.js';
import { FailureLimiter } from '../../src/security/failure-limiter.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';

const KEY = 'rate-limit-key-0123456789abcdef';
const AUTH = { MSB_AUTH: 'keys', MSB_API_KEYS: `bot-a:bot:${hashApiKey(KEY)}` };
const as = (key: string) => ({ authorization: `Bearer ${key}` });

test('refused requests are counted per address before authentication: wrong keys end in 429, for every key from there', async (t) => {
  const { app } = await build(t, { ...AUTH, MSB_FAILED_REQUEST_LIMIT_PER_MINUTE: '10' });
  const statuses: number[] = [];
  for (let i = 0; i < 40; i++) statuses.push((await app.inject({ method: 'GET', url: '/v1/sessions', headers: as('not-the-key-0123456789abcdef') })).statusCode);
  assert.deepEqual(statuses.slice(0, 10), Array(10).fill(401));
  assert.deepEqual(statuses.slice(10), Array(30).fill(429));
  // refused before the key is looked at: a valid key from that address waits too
  const blocked = await app.inject({ method: 'GET', url: '/v1/sessions', headers: as(KEY) });
  const body = assertProblem(blocked, 'RATE_LIMITED');
  assert.match(String(body.detail), /MSB_FAILED_REQUEST_LIMIT_PER_MINUTE/);
  assert.ok(Number(blocked.headers['retry-after']) > 0);
  // another address is not affected; the probes never are
  assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions', headers: as(KEY), remoteAddress: '192.0.2.7' })).statusCode, 200);
  for (const url of ['/health', '/ready']) assert.equal((await app.inject({ method: 'GET', url })).statusCode, 200, url);
});

test('invalid and unreadable requests count as refused too; answers about sessions do not', async (t) => {
  const { app } = await build(t, { ...AUTH, MSB_FAILED_REQUEST_LIMIT_PER_MINUTE: '5' });
  // a bot polling a session it closed gets 404 SESSION_NOT_FOUND: normal, not counted
  for (let i = 0; i < 10; i++) assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions/gone', headers: as(KEY) })).json().code, 'SESSION_NOT_FOUND');
  const bad = [
    { method: 'POST', url: '/v1/sessions', headers: as(KEY), payload: { name: 'x', type: 'imap' } },
    { method: 'POST', url: '/v1/sessions', headers: { ...as(KEY), 'content-type': 'application/json' }, payload: '{' },
    { method: 'GET', url: '/v1/no-such-route', headers: as(KEY) },
    { method: 'PUT', url: '/v1/sessions', headers: as(KEY) },
    { method: 'GET', url: '/v1/sessions?all=true', headers: as(KEY) },
  ] as const;
  for (const request of bad) assert.ok((await app.inject(request)).statusCode < 429);
  assertProblem(await app.inject({ method: 'GET', url: '/v1/sessions', headers: as(KEY) }), 'RATE_LIMITED');
});

test('the per-principal limit counts invalid bodies too, and never limits /health and /ready', async (t) => {
  const { app } = await build(t, { ...AUTH, MSB_RATE_LIMIT_PER_MINUTE: '5' });
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) statuses.push((await app.inject({ method: 'POST', url: '/v1/sessions', headers: as(KEY), payload: { name: `n${i}`, type: 'imap' } })).statusCode);
  assert.deepEqual(statuses, [400, 400, 400, 400, 400, 429, 429, 429]);
  // liveness probes behind a proxy share one address: never limited
  for (let i = 0; i < 20; i++) {
    for (const url of ['/health', '/ready']) assert.equal((await app.inject({ method: 'GET', url })).statusCode, 200, `${url} #${i}`);
  }
});

test('FailureLimiter: fixed one-minute windows per address, bounded memory', () => {
  const limiter = new FailureLimiter(2, 60_000, 3);
  limiter.failed('a', 0);
  assert.equal(limiter.blockedFor('a', 1), 0);
  limiter.failed('a', 1);
  assert.equal(limiter.blockedFor('a', 2), 60);
  assert.equal(limiter.blockedFor('a', 60_001), 0, 'the window ended');
  for (const address of ['b', 'c', 'd', 'e']) {
    limiter.failed(address, 10);
    limiter.failed(address, 10);
  }
  // at most three addresses are kept: the oldest ("a", "b") made room
  assert.equal(limiter.blockedFor('a', 20), 0);
  assert.equal(limiter.blockedFor('e', 20), 60);
  assert.equal(new FailureLimiter(0).enabled, false);
});
