import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { Connector, MailboxSummary } from '../../src/domain/connector.js';
import type { Download, MessageReader } from '../../src/domain/mail.js';
import { AdaptiveReconnectGate } from '../../src/domain/reconnect-gate.js';
import { Session, type SessionOptions } from '../../src/domain/session.js';
import { AppError } from '../../src/errors.js';
import { OutboundPolicy } from '../../src/security/outbound-policy.js';

const summary = (): MailboxSummary => ({ name: 'INBOX', messages: 1, checkedAt: new Date().toISOString() });
const page = { messages: [], nextCursor: null };

/** A connector whose reader does what each test gives it; no mail library anywhere. */
function fakeConnector(reader?: Partial<MessageReader>): Connector & { closed: number } {
  const notHere = () => Promise.reject(new AppError('MESSAGE_NOT_FOUND', 'no such message'));
  return {
    persistent: true,
    closed: 0,
    async connect() {
      return summary();
    },
    async summary() {
      return summary();
    },
    async close() {
      this.closed += 1;
    },
    ...(reader
      ? {
          reader: {
            folders: async () => [],
            list: async () => page,
            get: notHere,
            raw: notHere,
            attachment: notHere,
            ...reader,
          },
        }
      : {}),
  };
}

function session(t: { after: (fn: () => unknown) => void }, connector: Connector, options: Partial<SessionOptions> = {}): Session {
  const logger = pino({ level: 'silent' });
  const s = new Session(
    'bot',
    'inbox',
    { type: 'imap', fingerprint: 'f', view: {}, logBindings: {}, createConnector: () => connector },
    {
      logger,
      mailLogger: logger,
      keepaliveIntervalMs: 0,
      checkIntervalMs: 0, watchIntervalMs: 0,
      idleTimeoutMs: 0,
      lockTimeoutMs: 1000,
      reconnect: { baseMs: 60_000, maxMs: 60_000, maxAttempts: 0 },
      limiter: new AdaptiveReconnectGate({ startPerSec: 0, maxPerSec: 0, slowMs: 1000 }),
      outbound: new OutboundPolicy({ allow: '', deny: 'none', ports: '*' }),
      observer: { connected() {}, reconnecting() {}, failed() {}, keepalive() {} },
      onExpired() {},
      supportedBy: (capability) => (capability === 'reader' ? ['imap', 'ews'] : []),
      ...options,
    },
  );
  t.after(() => s.close());
  return s;
}

test('no two operations of one session interleave, even when the connector yields mid-way', async (t) => {
  const events: string[] = [];
  const s = session(
    t,
    fakeConnector({
      async list(query) {
        events.push(`start ${query.folder}`);
        await sleep(20);
        await new Promise((resolve) => setImmediate(resolve));
        events.push(`end ${query.folder}`);
        return page;
      },
    }),
  );
  await s.open();
  const query = (folder: string) => ({ folder, status: 'all' as const, subject: [], from: [], limit: 10, order: 'newest' as const, includeText: false });
  await Promise.all(['A', 'B', 'C'].map((folder) => s.run('reader', (r) => r.list(query(folder)))));
  assert.deepEqual(events, ['start A', 'end A', 'start B', 'end B', 'start C', 'end C']);
});

test('a type without the capability answers OPERATION_NOT_SUPPORTED naming the types that have it', async (t) => {
  const s = session(t, fakeConnector());
  await s.open();
  await assert.rejects(
    s.run('reader', (r) => r.folders()),
    (err: unknown) => err instanceof AppError && err.code === 'OPERATION_NOT_SUPPORTED' && /imap, ews sessions can/.test(err.message),
  );
});

test('an item-level failure is only the answer; a connection-level one makes the session reconnect', async (t) => {
  const s = session(
    t,
    fakeConnector({
      get: () => Promise.reject(new AppError('MESSAGE_NOT_FOUND', 'gone')),
      raw: () => Promise.reject(new AppError('MAIL_NETWORK_ERROR', 'cut')),
    }),
  );
  await s.open();
  await assert.rejects(s.run('reader', (r) => r.get('x', { markAsRead: false })), { code: 'MESSAGE_NOT_FOUND' });
  assert.equal(s.state, 'connected');
  await assert.rejects(s.run('reader', (r) => r.raw('x')), { code: 'MAIL_NETWORK_ERROR' });
  assert.equal(s.state, 'reconnecting');
  // while reconnecting, the next operation answers like inspect?refresh=true, without reaching the connector
  await assert.rejects(s.run('reader', (r) => r.folders()), { code: 'SESSION_RECONNECTING' });
});

test('run renews lastUsedAt', async (t) => {
  const s = session(t, fakeConnector({}));
  await s.open();
  const before = s.view().lastUsedAt;
  await sleep(5);
  await s.run('reader', (r) => r.folders());
  assert.ok(Date.parse(s.view().lastUsedAt) > Date.parse(before));
});

test('a download holds the session until its stream closes; a stalled stream is cut after the lock timeout', async (t) => {
  const stream = new PassThrough();
  const download: Download = { contentType: 'message/rfc822', filename: null, size: null, stream };
  const s = session(t, fakeConnector({ raw: async () => download }), { lockTimeoutMs: 300 });
  await s.open();
  const got = await s.download('reader', (r) => r.raw('x'));
  assert.equal(got, download);
  let listed = false;
  const second = s.run('reader', (r) => r.folders()).then(() => (listed = true));
  stream.write('some bytes');
  await sleep(50);
  assert.equal(listed, false, 'the second operation waits while the stream is open');
  stream.resume();
  stream.end();
  await second;
  assert.equal(listed, true);

  const stalled = new PassThrough();
  const s2 = session(t, fakeConnector({ raw: async () => ({ ...download, stream: stalled }) }), { lockTimeoutMs: 100 });
  await s2.open();
  await s2.download('reader', (r) => r.raw('x'));
  const failure = new Promise<unknown>((resolve) => stalled.once('error', resolve));
  assert.equal(((await failure) as AppError).code, 'MAIL_TIMEOUT');
  // the link may hold half a reply: the session reconnects, and the queue is free again (no SESSION_BUSY)
  assert.equal(s2.state, 'reconnecting');
  await assert.rejects(s2.run('reader', (r) => r.folders()), { code: 'SESSION_RECONNECTING' });
});
