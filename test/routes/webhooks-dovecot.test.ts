import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { startDovecot, type DovecotServer } from '../harness/dovecot.js';

interface Delivery {
  body: string;
  signature: string;
  eventId: string;
}

/** A webhook receiver on loopback that answers each request with the next status of `statuses` (then 200). */
async function receiver(statuses: number[] = []) {
  const deliveries: Delivery[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      deliveries.push({ body, signature: String(req.headers['x-msb-signature']), eventId: String(req.headers['x-msb-event-id']) });
      res.writeHead(statuses.shift() ?? 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { deliveries, url: `http://127.0.0.1:${port}/hooks/mail?token=abc`, close: () => new Promise((r) => server.close(r)) };
}

/** What a receiver does: recompute the HMAC over "<t>.<body>" and compare; refuse old timestamps. */
function verify(secret: string, d: Delivery, maxAgeSeconds = 300): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(d.signature);
  if (!m) return false;
  const expected = createHmac('sha256', secret).update(`${m[1]}.${d.body}`).digest('hex');
  return expected === m[2] && Math.abs(Date.now() / 1000 - Number(m[1])) <= maxAgeSeconds;
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('webhooks (Dovecot)', () => {
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot();
  });
  after(async () => {
    await dovecot?.close();
  });
  const imap = (name: string) => ({ name, type: 'imap', host: '127.0.0.1', port: dovecot.ports.imaps, username: 'alice@example.test', password: 'alice-Secret-1', tls: { ca: dovecot.caPem } });

  test('a session webhook gets signed events; a receiver that answers 500 twice gets the third attempt; inspect shows it', async (t) => {
    const hook = await receiver([500, 500]);
    t.after(() => hook.close());
    const secret = 'a-webhook-secret-of-32-characters';
    const { app, logs } = await build(t, { MSB_WEBHOOK_RETRY_DELAYS_MS: '50,50,50' });
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...imap('hooked'), webhook: { url: hook.url, secret } } });
    assert.equal(res.statusCode, 201);
    const connected = await until('three attempts', () => (hook.deliveries.length >= 3 ? hook.deliveries : undefined));
    const [first, , third] = connected;
    assert.equal(first!.eventId, third!.eventId, 'the same event, retried');
    for (const d of connected) assert.ok(verify(secret, d), 'signature verifies');
    assert.ok(!verify('another-secret-of-some-length', third!), 'a wrong key does not verify');
    const event = JSON.parse(third!.body);
    assert.deepEqual(Object.keys(event).sort(), ['at', 'data', 'id', 'session', 'type']);
    assert.equal(event.type, 'session.state');
    assert.equal(event.data.state, 'connected');
    // the third attempt's answer is recorded just after the receiver got it: wait until inspect shows it
    const shown = await until('inspect shows the third attempt', async () => {
      const v = (await app.inject({ method: 'GET', url: '/v1/sessions/hooked' })).json();
      return v.webhooks?.[0]?.lastDelivery?.attempts === 3 ? v : undefined;
    });
    const delivery = shown.webhooks[0];
    assert.equal(delivery.url, hook.url.split('?')[0], 'no query (it may carry a token of the receiver)');
    assert.equal(delivery.scope, 'session');
    assert.deepEqual([delivery.lastDelivery.ok, delivery.lastDelivery.status, delivery.lastDelivery.attempts], [true, 200, 3]);
    assert.ok(!JSON.stringify(shown).includes(secret), 'the secret is never shown');
    assert.ok(!logs.some((l) => l.includes(secret)), 'nor logged');
    // the same session with another webhook secret is other settings
    const other = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...imap('hooked'), webhook: { url: hook.url, secret: `${secret}-2` } } });
    assertProblem(other, 'SESSION_CONFLICT');
  });

  test('a principal webhook from the configuration gets every session\'s events', async (t) => {
    const hook = await receiver();
    t.after(() => hook.close());
    const secret = 'principal-secret-0123456789';
    const { app } = await build(t, { MSB_WEBHOOK_URLS: `anonymous=${hook.url}`, MSB_WEBHOOK_SECRET: secret });
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('p1') })).statusCode, 201);
    const d = await until('a delivery', () => hook.deliveries[0]);
    assert.ok(verify(secret, d));
    assert.equal(JSON.parse(d.body).session, 'p1');
  });

  test('a webhook secret given by reference signs like a plain one and is shown nowhere', async (t) => {
    const hook = await receiver();
    t.after(() => hook.close());
    const secret = 'referenced-webhook-secret-42';
    const { app } = await build(t, {}, { MSB_SECRET_HOOK_KEY: secret });
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...imap('by-ref'), webhook: { url: hook.url, secret: { secret: 'hook_key' } } } });
    assert.equal(res.statusCode, 201, res.body);
    assert.ok(!res.body.includes(secret));
    assert.ok(verify(secret, await until('a delivery', () => hook.deliveries[0])));
  });

  test('webhooks the policy refuses, or that are not usable, fail the create', async (t) => {
    const { app } = await build(t, { MSB_OUTBOUND_DENY: '10.0.0.0/8', MSB_OUTBOUND_PORTS: '*' });
    const secret = 'long-enough-secret-123';
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...imap('w1'), webhook: { url: 'http://10.1.2.3/x', secret } } }), 'DESTINATION_FORBIDDEN');
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...imap('w2'), webhook: { url: 'http://u:p@127.0.0.1/x', secret } } }), 'VALIDATION_ERROR');
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...imap('w3'), webhook: { url: 'http://127.0.0.1/x', secret: 'short' } } }), 'INVALID_SETTINGS');
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...imap('w4'), webhook: { url: 'ftp://127.0.0.1/x', secret } } }), 'VALIDATION_ERROR');
  });
});
