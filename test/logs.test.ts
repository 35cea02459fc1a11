import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { build } from './helper.js';
import { startDovecot, type DovecotServer } from './harness/dovecot.js';

const USER = 'leak@example.test';
const PASSWORD = 'Leak-Canary-7f3a9c';
const WRONG = 'Wrong-Canary-52e1b8';

/** Every form a password could take on the wire or in a trace: plain, base64 (SASL PLAIN, XOAUTH2), quoted. */
function forms(secret: string): string[] {
  return [
    secret,
    Buffer.from(secret).toString('base64'),
    Buffer.from(`\u0000${USER}\u0000${secret}`).toString('base64'),
    Buffer.from(`${USER}\u0000${USER}\u0000${secret}`).toString('base64'),
    JSON.stringify(secret).slice(1, -1),
  ];
}

describe('logs never carry a password', () => {
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot({ users: { [USER]: PASSWORD } });
  });
  after(async () => {
    await dovecot?.close();
  });

  test('a run at trace level (service and mail libraries), with successes and failures', async (t) => {
    const { app, logs } = await build(t, { LOG_LEVEL: 'trace', MSB_MAIL_LOG_LEVEL: 'trace' });
    const bodies = [
      { type: 'imap', port: dovecot.ports.imaps, secure: true, tls: { ca: dovecot.caPem } },
      { type: 'imap', port: dovecot.ports.imap, secure: false, tls: { ca: dovecot.caPem } },
      { type: 'imap', port: dovecot.ports.imap, secure: false, tls: { starttls: 'off' } },
      { type: 'pop3', port: dovecot.ports.pop3s, secure: true, tls: { ca: dovecot.caPem } },
      { type: 'pop3', port: dovecot.ports.pop3, secure: false, tls: { starttls: 'off' } },
    ];
    let i = 0;
    for (const b of bodies) {
      for (const password of [PASSWORD, WRONG]) {
        const name = `leak-${i++}`;
        const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name, host: '127.0.0.1', username: USER, password, ...b } });
        assert.equal(res.statusCode, password === PASSWORD ? 201 : 422, res.body);
        for (const form of [...forms(PASSWORD), ...forms(WRONG)]) assert.equal(res.body.includes(form), false, 'a response carries a password');
        await app.inject({ method: 'GET', url: `/v1/sessions/${name}?refresh=true` });
      }
    }
    // a body logged by mistake, e.g. on a validation error, must not leak either
    await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'x', type: 'imap', host: 'h', username: 'u', password: PASSWORD, bogus: 1 } });
    await app.inject({ method: 'GET', url: '/v1/sessions', headers: { authorization: `Bearer ${PASSWORD}` } });
    await app.close();

    assert.ok(logs.length > 50, `a trace-level run logs plenty (${logs.length} lines)`);
    assert.ok(logs.some((l) => /"lib":"imap"/.test(l)), 'imapflow traces were captured');
    const leaks = logs.filter((line) => [...forms(PASSWORD), ...forms(WRONG)].some((f) => line.includes(f)));
    assert.deepEqual(leaks, [], 'log lines carrying a password');
  });

  test('expected failures are quiet at the default levels: no error line, no stack; probes log nothing', async (t) => {
    // the defaults of a deployment: LOG_LEVEL=info, MSB_MAIL_LOG_LEVEL=warn
    const { app, logs } = await build(t, { LOG_LEVEL: 'info', MSB_MAIL_LOG_LEVEL: 'warn' });
    const base = { type: 'imap', host: '127.0.0.1', port: dovecot.ports.imaps, username: USER };
    const wrong = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...base, name: 'quiet-1', password: WRONG, tls: { ca: dovecot.caPem } } });
    assert.equal(wrong.json().code, 'MAIL_AUTH_FAILED');
    // the test CA not given: Dovecot's certificate is not trusted
    const untrusted = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...base, name: 'quiet-2', password: PASSWORD, tls: { verifyCertificate: true } } });
    assert.equal(untrusted.json().code, 'MAIL_TLS_FAILED');
    const before = logs.length;
    for (const url of ['/health', '/ready']) assert.equal((await app.inject({ method: 'GET', url })).statusCode, 200);
    assert.deepEqual(logs.slice(before), [], 'probe lines');

    const parsed = logs.map((l) => JSON.parse(l) as { level: number; msg?: string; code?: string });
    const loud = parsed.filter((l) => l.level >= 50);
    assert.deepEqual(loud, [], 'error lines for failures the caller was told about');
    assert.ok(!logs.some((l) => l.includes('"stack"')), 'a stack trace in the log');
    // each failure is still logged once, with its code, at info
    for (const code of ['MAIL_AUTH_FAILED', 'MAIL_TLS_FAILED']) assert.ok(parsed.some((l) => l.level === 30 && l.code === code), `${code} is logged`);
  });

  test('an unexpected failure stays loud: a server that is not IMAP is an error line', async (t) => {
    const { app, logs } = await build(t, { LOG_LEVEL: 'info', MSB_MAIL_LOG_LEVEL: 'warn', MSB_CONNECT_TIMEOUT_MS: '3000' });
    // POP3's greeting to an IMAP client: a protocol error, not the caller's settings
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'loud', type: 'imap', host: '127.0.0.1', port: dovecot.ports.pop3s, username: USER, password: PASSWORD, tls: { ca: dovecot.caPem } } });
    assert.ok(res.statusCode >= 500, res.body);
    assert.ok(logs.some((l) => (JSON.parse(l) as { level: number }).level >= 50), 'an error line');
  });
});

test('request logs: every line of a request carries its request id; a request logger is made only when the request logs', async (t) => {
  const { app, logs } = await build(t, { LOG_LEVEL: 'info' });
  const res = await app.inject({ method: 'GET', url: '/v1/sessions/none', headers: { 'x-request-id': 'req-log-1' } });
  assert.equal(res.statusCode, 404);
  const lines = logs.map((l) => JSON.parse(l) as { reqId?: string; msg?: string }).filter((l) => l.reqId === 'req-log-1');
  assert.deepEqual(lines.map((l) => l.msg), ['incoming request', 'request refused', 'request completed']);

  // the per-request logger itself: no pino child until a line is logged at an enabled level
  const { default: pino } = await import('pino');
  const { lazyRequestLogger } = await import('../src/logger.js');
  const written: string[] = [];
  const parent = pino({ level: 'warn' }, { write: (line: string) => void written.push(line) });
  let children = 0;
  const child = parent.child.bind(parent);
  parent.child = ((...args: Parameters<typeof child>) => ((children += 1), child(...args))) as typeof parent.child;
  const quiet = lazyRequestLogger(parent, { reqId: 'a' }, {});
  quiet.info('below the level');
  quiet.debug('below the level');
  assert.equal(quiet.isLevelEnabled('info'), false);
  assert.equal(children, 0, 'nothing logged, no child made');
  quiet.warn('logged');
  assert.equal(children, 1);
  assert.equal(JSON.parse(written[0]!).reqId, 'a');
  // a route's own level (Fastify passes it, e.g. the probes' warn) counts, in either direction
  const chatty = lazyRequestLogger(parent, { reqId: 'b' }, { level: 'info' });
  assert.equal(chatty.level, 'info');
  chatty.info('a route at info');
  assert.equal(JSON.parse(written[1]!).reqId, 'b');
  const silentRoute = lazyRequestLogger(parent, { reqId: 'c' }, { level: 'error' });
  silentRoute.warn('below the route level');
  assert.equal(written.length, 2);
});
