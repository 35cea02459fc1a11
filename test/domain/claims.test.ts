import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { ClaimService } from '../../src/domain/claims.js';
import type { Connector } from '../../src/domain/connector.js';
import { MemoryLeaseStore } from '../../src/domain/leases.js';
import type { ListQuery, MessageSummary } from '../../src/domain/mail.js';
import { AdaptiveReconnectGate } from '../../src/domain/reconnect-gate.js';
import { Session } from '../../src/domain/session.js';
import { OutboundPolicy } from '../../src/security/outbound-policy.js';

/** A mailbox in memory behind a connector that reads, tags (or not: a server without keywords) and deletes. */
function mailbox(count: number, keywords: boolean) {
  const messages = Array.from({ length: count }, (_, i) => ({ id: `m${String(i).padStart(5, '0')}`, tags: new Set<string>(), deleted: false }));
  const summary = (id: string): MessageSummary => ({
    id, folder: 'INBOX', messageId: null, subject: null, from: null, to: [], cc: [], date: null, receivedAt: null, size: 1,
    seen: false, flagged: false, answered: false, hasAttachments: false, attachments: [],
  });
  const connector: Connector = {
    persistent: true,
    connect: async () => ({ name: 'INBOX', messages: count, checkedAt: new Date().toISOString() }),
    summary: async () => ({ name: 'INBOX', messages: count, checkedAt: new Date().toISOString() }),
    close: async () => {},
    reader: {
      folders: async () => [],
      async list(q: ListQuery) {
        await sleep(0); // yield, as a real server does, so that claims interleave
        const live = messages.filter((m) => !m.deleted && !(q.withoutKeyword && m.tags.has(q.withoutKeyword)));
        const start = q.cursor ? Number(q.cursor) : 0;
        const page = live.slice(start, start + q.limit);
        return { messages: page.map((m) => summary(m.id)), nextCursor: start + q.limit < live.length ? String(start + q.limit) : null };
      },
      get: async () => assert.fail('not used'),
      raw: async () => assert.fail('not used'),
      attachment: async () => assert.fail('not used'),
    },
    deleter: {
      async delete(id) {
        messages.find((m) => m.id === id)!.deleted = true;
      },
      deleteMany: async () => ({ deleted: 0 }),
    },
    ...(keywords
      ? {
          tagger: {
            async tag(id: string, keyword: string) {
              await sleep(0);
              messages.find((m) => m.id === id)!.tags.add(keyword);
            },
          },
        }
      : {}),
  };
  return { connector, messages };
}

async function session(t: { after: (fn: () => unknown) => void }, connector: Connector): Promise<Session> {
  const logger = pino({ level: 'silent' });
  const s = new Session('bot', 'inbox', { type: 'imap', fingerprint: 'f', view: {}, logBindings: {}, createConnector: () => connector }, {
    logger, mailLogger: logger, keepaliveIntervalMs: 0, checkIntervalMs: 0, watchIntervalMs: 0, idleTimeoutMs: 0, lockTimeoutMs: 30_000,
    reconnect: { baseMs: 1000, maxMs: 1000, maxAttempts: 0 }, limiter: new AdaptiveReconnectGate({ startPerSec: 0, maxPerSec: 0, slowMs: 1000 }),
    outbound: new OutboundPolicy({ allow: '', deny: 'none', ports: '*' }),
    observer: { connected() {}, reconnecting() {}, failed() {}, keepalive() {} }, onExpired() {}, supportedBy: () => [],
  });
  t.after(() => s.close());
  await s.open();
  return s;
}

for (const keywords of [true, false]) {
  test(`8 bots with random crashes acknowledge every one of 2,000 messages exactly once (${keywords ? 'keywords on the server' : 'no keywords: the lease store remembers'})`, async (t) => {
    const { connector, messages } = mailbox(2000, keywords);
    const s = await session(t, connector);
    const claims = new ClaimService(new MemoryLeaseStore({ maxFinished: 100_000 }), { keyword: '$Processed' });
    const acked = new Map<string, number>();
    let crashes = 0;
    let random = 42;
    const rand = () => ((random = (random * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const bot = async () => {
      for (let idle = 0; idle < 3; ) {
        const { claim, messages: got } = await claims.claim(s, { folder: 'INBOX', where: { status: 'all', subject: [], from: [] }, max: 25, leaseSeconds: 60 });
        if (got.length === 0) {
          idle += 1;
          await sleep(120); // a crashed bot's lease runs out meanwhile
          continue;
        }
        idle = 0;
        if (rand() < 0.15) {
          // the bot dies holding its claim; its lease is left to run out (shortened to 50 ms here)
          crashes += 1;
          await claims.extend(s, claim, 0.05);
          continue;
        }
        const result = await claims.acknowledge(s, claim, undefined, keywords ? {} : { delete: true });
        assert.deepEqual(result.failed, []);
        for (const id of result.acknowledged) acked.set(id, (acked.get(id) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 8 }, bot));
    assert.ok(crashes > 0, 'some bots crashed');
    assert.equal(acked.size, 2000, 'none lost');
    assert.ok([...acked.values()].every((n) => n === 1), 'none acknowledged twice');
    if (keywords) assert.equal(messages.filter((m) => m.tags.has('$Processed')).length, 2000, 'counted by the keyword on the server');
  });
}

test('a claim that found nothing lives until its expiry: it can be extended, acknowledged (nothing) and released', async (t) => {
  const { connector } = mailbox(0, true);
  const s = await session(t, connector);
  const claims = new ClaimService(new MemoryLeaseStore({ maxFinished: 10 }), { keyword: '$Processed' });
  const empty = await claims.claim(s, { folder: 'INBOX', where: { status: 'all', subject: [], from: [] }, max: 5, leaseSeconds: 60 });
  assert.deepEqual(empty.messages, []);
  const extended = await claims.extend(s, empty.claim, 120);
  assert.ok(Date.parse(extended.expiresAt) > Date.parse(empty.expiresAt), 'the expiry moved');
  assert.deepEqual(await claims.acknowledge(s, empty.claim, undefined, {}), { acknowledged: [], failed: [] });
  await assert.rejects(claims.acknowledge(s, empty.claim, ['m1'], {}), { code: 'CLAIM_NOT_FOUND' }, 'it holds no message');
  await claims.release(s, empty.claim);
  await assert.rejects(claims.extend(s, empty.claim, 60), { code: 'CLAIM_NOT_FOUND' }, 'released');

  const short = await claims.claim(s, { folder: 'INBOX', where: { status: 'all', subject: [], from: [] }, max: 5, leaseSeconds: 60 });
  await claims.extend(s, short.claim, 0.05);
  await sleep(80);
  await assert.rejects(claims.release(s, short.claim), { code: 'CLAIM_NOT_FOUND' }, 'expired');
});
