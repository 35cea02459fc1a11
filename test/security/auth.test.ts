import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashApiKey } from '../../src/security/api-keys.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { defaultUsers, startDovecot, type DovecotServer } from '../harness/dovecot.js';

const KEYS = { botA: 'key-for-bot-a-0123456789abcdef', botB: 'key-for-bot-b-0123456789abcdef', admin: 'key-for-admin-0123456789abcdef' };
const AUTH_ENV = {
  MSB_AUTH: 'keys',
  MSB_API_KEYS: `bot-a:bot:${hashApiKey(KEYS.botA)},bot-b:bot:${hashApiKey(KEYS.botB)},ops:admin:${hashApiKey(KEYS.admin)}`,
};
const as = (key: string) => ({ authorization: `Bearer ${key}` });
const USER = 'alice@example.test';

describe('API keys and isolation between principals', () => {
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot();
  });
  after(async () => {
    await dovecot?.close();
  });
  const body = (name: string) => ({
    name, type: 'imap', host: '127.0.0.1', port: dovecot.ports.imaps, username: USER, password: defaultUsers[USER], tls: { ca: dovecot.caPem },
  });

  test('every /v1 route refuses a missing or wrong key with 401 and WWW-Authenticate', async (t) => {
    const { app } = await build(t, AUTH_ENV);
    const routes = [
      { method: 'POST', url: '/v1/sessions', payload: body('x') },
      { method: 'GET', url: '/v1/sessions' },
      { method: 'GET', url: '/v1/sessions/x' },
      { method: 'DELETE', url: '/v1/sessions/x' },
      { method: 'GET', url: '/v1/no-such-route' },
    ] as const;
    for (const route of routes) {
      for (const headers of [{}, as('not-a-valid-key-at-all-000000'), { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, { authorization: 'Bearer short' }]) {
        const res = await app.inject({ ...route, headers });
        assertProblem(res, 'UNAUTHENTICATED');
        assert.match(String(res.headers['www-authenticate']), /^Bearer /);
      }
    }
    // operations endpoints stay open
    for (const url of ['/health', '/ready', '/metrics', '/openapi.json', '/docs']) {
      const res = await app.inject({ method: 'GET', url });
      assert.ok(res.statusCode < 400, `${url}: ${res.statusCode}`);
    }
  });

  test("a session belongs to its creator: another principal cannot see, use or close it", async (t) => {
    const { app } = await build(t, AUTH_ENV);
    const created = await app.inject({ method: 'POST', url: '/v1/sessions', payload: body('inbox'), headers: as(KEYS.botA) });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.json().owner, 'bot-a');

    assertProblem(await app.inject({ method: 'GET', url: '/v1/sessions/inbox', headers: as(KEYS.botB) }), 'SESSION_NOT_FOUND');
    assertProblem(await app.inject({ method: 'GET', url: '/v1/sessions/inbox?refresh=true', headers: as(KEYS.botB) }), 'SESSION_NOT_FOUND');
    assertProblem(await app.inject({ method: 'DELETE', url: '/v1/sessions/inbox', headers: as(KEYS.botB) }), 'SESSION_NOT_FOUND');
    assert.deepEqual((await app.inject({ method: 'GET', url: '/v1/sessions', headers: as(KEYS.botB) })).json(), { sessions: [] });
    assertProblem(await app.inject({ method: 'GET', url: '/v1/sessions?all=true', headers: as(KEYS.botB) }), 'FORBIDDEN');
    assertProblem(await app.inject({ method: 'GET', url: '/v1/sessions/inbox?owner=bot-a', headers: as(KEYS.botB) }), 'FORBIDDEN');

    // names are unique per principal: bot-b gets its own "inbox"
    const theirs = await app.inject({ method: 'POST', url: '/v1/sessions', payload: body('inbox'), headers: as(KEYS.botB) });
    assert.equal(theirs.statusCode, 201, theirs.body);
    assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions/inbox', headers: as(KEYS.botA) })).json().owner, 'bot-a');

    // an admin lists all and closes anyone's
    const all = (await app.inject({ method: 'GET', url: '/v1/sessions?all=true', headers: as(KEYS.admin) })).json();
    assert.deepEqual(all.sessions.map((s: { owner: string }) => s.owner).sort(), ['bot-a', 'bot-b']);
    assert.deepEqual((await app.inject({ method: 'GET', url: '/v1/sessions', headers: as(KEYS.admin) })).json(), { sessions: [] });
    assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions/inbox?owner=bot-b', headers: as(KEYS.admin) })).json().owner, 'bot-b');
    assert.equal((await app.inject({ method: 'DELETE', url: '/v1/sessions/inbox?owner=bot-a', headers: as(KEYS.admin) })).statusCode, 204);
    assertProblem(await app.inject({ method: 'GET', url: '/v1/sessions/inbox', headers: as(KEYS.botA) }), 'SESSION_NOT_FOUND');
    assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions/inbox', headers: as(KEYS.botB) })).statusCode, 200);
  });

  test('rate limits are per principal, with Retry-After', async (t) => {
    const { app } = await build(t, { ...AUTH_ENV, MSB_RATE_LIMIT_PER_MINUTE: '5' });
    for (let i = 0; i < 5; i += 1) assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions', headers: as(KEYS.botA) })).statusCode, 200);
    const limited = await app.inject({ method: 'GET', url: '/v1/sessions', headers: as(KEYS.botA) });
    assertProblem(limited, 'RATE_LIMITED');
    assert.match(String(limited.headers['retry-after']), /^\d+$/);
    assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions', headers: as(KEYS.botB) })).statusCode, 200, 'another bot is not starved');
  });

  test('security headers: nosniff everywhere, no-store on /v1, a CSP on Swagger UI', async (t) => {
    const { app } = await build(t, AUTH_ENV);
    const api = await app.inject({ method: 'GET', url: '/v1/sessions', headers: as(KEYS.botA) });
    assert.equal(api.headers['x-content-type-options'], 'nosniff');
    assert.equal(api.headers['cache-control'], 'no-store');
    const docs = await app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(docs.statusCode, 200);
    assert.match(String(docs.headers['content-security-policy']), /default-src 'self'/);
    assert.equal(docs.headers['x-frame-options'], 'DENY');
  });
});
