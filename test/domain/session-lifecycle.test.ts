import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { Connector, MailboxSummary } from '../../src/domain/connector.js';
import { AdaptiveReconnectGate } from '../../src/domain/reconnect-gate.js';
import { Session, type SessionOptions } from '../../src/domain/session.js';
import { AppError } from '../../src/errors.js';
import { OutboundPolicy } from '../../src/security/outbound-policy.js';

/**
 * Lifecycle paths that no real server reaches on demand (each test would fail on a mutant of the code it
 * names): the reconnect attempt limit, a keepalive that finds the session busy, a connect that ends after
 * the session was closed, and a mail action while a sign-in is awaited.
 */

const summary = (): MailboxSummary => ({ name: 'INBOX', messages: 0, checkedAt: new Date().toISOString() });

/** A connector whose connect() does what `connects` says, one entry per call (the last one repeats). */
function scripted(connects: (() => Promise<MailboxSummary | void>)[], extra: Partial<Connector> = {}): Connector & { calls: number } {
  const c: Connector & { calls: number } = {
    persistent: true,
    calls: 0,
    async connect(): Promise<MailboxSummary | void> {
      const step = connects[Math.min(c.calls, connects.length - 1)]!;
      c.calls += 1;
      return step();
    },
    summary: async () => summary(),
    close: async () => {},
    ...extra,
  };
  return c;
}

function session(t: { after: (fn: () => unknown) => void }, connector: Connector, options: Partial<SessionOptions> = {}) {
  const logger = pino({ level: 'silent' });
  const observed: string[] = [];
  const s = new Session('bot', 's1', { type: 'imap', fingerprint: 'f', view: {}, logBindings: {}, createConnector: () => connector }, {
    logger,
    mailLogger: logger,
    keepaliveIntervalMs: 0,
    checkIntervalMs: 0,
    watchIntervalMs: 0,
    idleTimeoutMs: 0,
    lockTimeoutMs: 1000,
    reconnect: { baseMs: 10, maxMs: 20, maxAttempts: 0 },
    limiter: new AdaptiveReconnectGate({ startPerSec: 0, maxPerSec: 0, slowMs: 1000 }),
    outbound: new OutboundPolicy({ allow: '', deny: 'none', ports: '*' }),
    observer: { connected() {}, reconnecting() {}, failed: (_type, code) => observed.push(`failed ${code}`), keepalive: (_type, _ms, ok) => observed.push(`keepalive ${ok}`) },
    onExpired() {},
    supportedBy: () => [],
    ...options,
  });
  t.after(() => s.close());
  return { s, observed };
}

async function until(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test('MSB_RECONNECT_MAX_ATTEMPTS: a session that keeps failing to reconnect is failed after that many attempts', async (t) => {
  const cut = () => Promise.reject(new AppError('MAIL_NETWORK_ERROR', 'cut'));
  let drop!: (err: unknown) => void;
  const connector = scripted([async () => summary(), cut]);
  const logger = pino({ level: 'silent' });
  const observed: string[] = [];
  const s = new Session('bot', 's1', {
    type: 'imap', fingerprint: 'f', view: {}, logBindings: {},
    createConnector: (ctx) => {
      drop = ctx.onDrop;
      return connector;
    },
  }, {
    logger, mailLogger: logger, keepaliveIntervalMs: 0, checkIntervalMs: 0, watchIntervalMs: 0, idleTimeoutMs: 0, lockTimeoutMs: 1000,
    reconnect: { baseMs: 5, maxMs: 10, maxAttempts: 3 }, limiter: new AdaptiveReconnectGate({ startPerSec: 0, maxPerSec: 0, slowMs: 1000 }),
    outbound: new OutboundPolicy({ allow: '', deny: 'none', ports: '*' }),
    observer: { connected() {}, reconnecting() {}, failed: (_t, code) => observed.push(code), keepalive() {} },
    onExpired() {}, supportedBy: () => [],
  });
  t.after(() => s.close());
  await s.open();
  drop(new AppError('MAIL_NETWORK_ERROR', 'the server went away'));
  await until('failed', () => s.state === 'failed');
  assert.equal(connector.calls, 1 + 3, 'the first connect and exactly three reconnect attempts');
  assert.deepEqual(observed, ['MAIL_NETWORK_ERROR']);
  assert.equal(s.view().lastError?.code, 'MAIL_NETWORK_ERROR');
});

test('a keepalive that finds the session busy tries later and does not take the connection for lost', async (t) => {
  let release!: () => void;
  const busy = new Promise<void>((resolve) => (release = resolve));
  const connector = scripted([async () => summary()], {
    reader: {
      folders: async () => {
        await busy;
        return [];
      },
      list: async () => ({ messages: [], nextCursor: null }),
      get: async () => assert.fail(),
      raw: async () => assert.fail(),
      attachment: async () => assert.fail(),
    },
  });
  const { s, observed } = session(t, connector, { keepaliveIntervalMs: 30, lockTimeoutMs: 60 });
  await s.open();
  const long = s.run('reader', (r) => r.folders());
  await until('a keepalive that met the busy session', () => observed.includes('keepalive false'));
  assert.equal(s.state, 'connected', 'SESSION_BUSY is not a lost connection');
  release();
  await long;
  await until('a keepalive that went through', () => observed.includes('keepalive true'));
  assert.equal(s.state, 'connected');
  assert.equal(connector.calls, 1, 'no reconnect');
});

test('a connect that finishes after the session was closed answers SESSION_NOT_FOUND and logs out again', async (t) => {
  let finish!: () => void;
  let closes = 0;
  const connector = scripted([() => new Promise<MailboxSummary>((resolve) => (finish = () => resolve(summary())))], {
    close: async () => {
      closes += 1;
    },
  });
  const { s } = session(t, connector);
  const opening = s.open();
  await until('connect() called', () => connector.calls === 1);
  const closing = s.close();
  finish();
  await assert.rejects(opening, (err: unknown) => err instanceof AppError && err.code === 'SESSION_NOT_FOUND');
  await closing;
  assert.equal(s.state, 'closed');
  assert.ok(closes >= 1, 'the late connection was logged out');
});

test('a mail action while the session waits for a sign-in answers AUTHORIZATION_REQUIRED with the sign-in link', async (t) => {
  const url = 'https://login.example.test/authorize?state=abc';
  const connector = scripted([() => Promise.reject(new AppError('AUTHORIZATION_REQUIRED', 'sign in first', { authorizationUrl: url }))], {
    reader: {
      folders: async () => assert.fail('never reached'),
      list: async () => assert.fail(),
      get: async () => assert.fail(),
      raw: async () => assert.fail(),
      attachment: async () => assert.fail(),
    },
  });
  const { s } = session(t, connector);
  await s.open();
  assert.equal(s.state, 'awaiting_authorization');
  await assert.rejects(
    s.run('reader', (r) => r.folders()),
    (err: unknown) => err instanceof AppError && err.code === 'AUTHORIZATION_REQUIRED' && err.extra.authorizationUrl === url,
  );
  assert.throws(() => s.requireConnected(), (err: unknown) => err instanceof AppError && err.code === 'AUTHORIZATION_REQUIRED');
});
