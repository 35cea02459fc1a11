import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { Membership } from '../../src/cluster/membership.js';
import { Ownership } from '../../src/cluster/ownership.js';
import { RedisConnection } from '../../src/cluster/redis.js';
import { Sealer } from '../../src/cluster/sealer.js';
import { SharedRateLimiter } from '../../src/cluster/shared-rate-limiter.js';
import { loadConfig } from '../../src/config.js';
import { ClaimService } from '../../src/domain/claims.js';
import type { Connector } from '../../src/domain/connector.js';
import type { ListQuery, MessageSummary } from '../../src/domain/mail.js';
import { AdaptiveReconnectGate } from '../../src/domain/reconnect-gate.js';
import { Session } from '../../src/domain/session.js';
import { AppError } from '../../src/errors.js';
import { OutboundPolicy } from '../../src/security/outbound-policy.js';
import { RedisIdempotencyStore } from '../../src/store/redis-idempotency-store.js';
import { RedisLeaseStore } from '../../src/store/redis-lease-store.js';
import { RedisSessionStore } from '../../src/store/redis-session-store.js';
import { loginIntervals, overlaps } from '../harness/fleet.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

// The Redis side of replicas, each against a real Redis 7: the building blocks that the fleet test
// (test/replicas-fleet.test.ts) exercises together, here one by one with their edge cases.

const silent = pino({ level: 'silent' });
const sealer = new Sealer(randomBytes(32));

describe('shared state in Redis', () => {
  let redis: RedisServer;
  const connections: RedisConnection[] = [];
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const c of connections) await c.close();
    await redis?.close();
  });

  /** A connection of its own key space (one "deployment" per test); two calls with one prefix share it. */
  async function connect(prefix = `t${randomBytes(4).toString('hex')}:`, logger = silent, url = redis.url, extra: Record<string, string> = {}): Promise<RedisConnection> {
    const config = loadConfig({ MSB_REDIS_URL: url, MSB_REDIS_PREFIX: prefix, MSB_SESSION_STORE_KEY: randomBytes(32).toString('base64'), MSB_REPLICA_SECRET: 'x'.repeat(32), MSB_AUTH: 'none', ...extra });
    const c = new RedisConnection(config, logger, `test-${randomBytes(2).toString('hex')}`);
    connections.push(c);
    assert.ok(await c.ready(10_000), 'connected to the test Redis');
    return c;
  }

  test('a sealed value opens only with its key and in its own context', () => {
    const sealed = sealer.seal('session:a/b', 'password-123');
    assert.ok(!sealed.includes('password-123'));
    assert.equal(sealer.unseal('session:a/b', sealed), 'password-123');
    assert.throws(() => sealer.unseal('session:a/c', sealed), 'another session\'s key');
    assert.throws(() => new Sealer(randomBytes(32)).unseal('session:a/b', sealed), 'another sealing key');
    const altered = Buffer.from(sealed, 'base64');
    altered[altered.length - 1]! ^= 1;
    assert.throws(() => sealer.unseal('session:a/b', altered.toString('base64')), 'altered');
  });

  test('leases: expired, released, held and renewed; the fencing number grows with every new holder, also after Redis lost it', async () => {
    const c = await connect();
    const a = new Ownership(c, 'A', 400);
    const b = new Ownership(c, 'B', 400);
    assert.deepEqual(await a.acquire('p/s', true), { kind: 'expired', fence: 1 });
    assert.deepEqual(await b.acquire('p/s', true), { kind: 'held', holder: 'A' });
    assert.deepEqual(await a.acquire('p/s', true), { kind: 'mine', fence: 1 });
    assert.deepEqual(await a.renew(new Map([['p/s', 1]])), []);
    assert.equal(await a.release('p/s', 1), true);
    assert.equal(await a.holder('p/s'), undefined, 'released: nobody holds it');
    assert.deepEqual(await b.acquire('p/s', false), { kind: 'released', fence: 2 }, 'a released lease is taken even while expired ones are held back');
    assert.deepEqual(await a.renew(new Map([['p/s', 1]])), ['p/s'], 'A learns it lost the lease');
    assert.equal(await a.reassert('p/s', 1), false, 'nor can it take it back');
    await sleep(500);
    assert.deepEqual(await a.acquire('p/s', false), { kind: 'wait' }, 'expired: held back when asked');
    assert.deepEqual(await a.acquire('p/s', true), { kind: 'expired', fence: 3 });
    // Redis restarted without its data: the holder writes its lease back, and the counter does not go backwards
    await c.client.flushdb();
    assert.equal(await a.reassert('p/s', 3), true);
    assert.deepEqual(await b.acquire('p/s', true), { kind: 'held', holder: 'A' });
    await sleep(500);
    assert.deepEqual(await b.acquire('p/s', true), { kind: 'expired', fence: 4 });
    await b.drop('p/s', 4);
    assert.equal(await b.holder('p/s'), undefined);
  });

  test('rendezvous placement: an even spread, and when a replica comes or goes only the sessions that prefer it move', async () => {
    const c = await connect();
    const ids = Array.from({ length: 3000 }, (_, i) => `bot/s${i}`);
    const beat = (id: string) => c.client.set(c.keys.replica(id), JSON.stringify({ url: `http://${id}` }), 'PX', 60_000).then(() => c.client.sadd(c.keys.replicas, id));
    for (const id of ['r1', 'r2', 'r3', 'r4']) await beat(id);
    const view = new Membership(c, { id: 'r1', url: 'http://r1' }, 60_000, 0);
    await view.refresh();
    const place = () => new Map(ids.map((id) => [id, view.preferred(id)]));
    const four = place();
    const counts = (m: Map<string, string>) => [...m.values()].reduce((acc, r) => acc.set(r, (acc.get(r) ?? 0) + 1), new Map<string, number>());
    for (const n of counts(four).values()) assert.ok(n > 3000 / 4 - 120 && n < 3000 / 4 + 120, `even: ${[...counts(four).values()]}`);
    // r4 goes away (its heartbeat expires)
    await c.client.del(c.keys.replica('r4'));
    assert.equal(await view.refresh(), true);
    const three = place();
    for (const id of ids) if (four.get(id) !== 'r4') assert.equal(three.get(id), four.get(id), `${id} stays where it was`);
    assert.ok(ids.every((id) => three.get(id) !== 'r4'));
    // r5 joins: it takes about a quarter, all from the others, nothing moves between them
    await beat('r5');
    await view.refresh();
    const joined = place();
    const moved = ids.filter((id) => joined.get(id) !== three.get(id));
    assert.ok(moved.every((id) => joined.get(id) === 'r5'));
    assert.ok(moved.length > 3000 / 4 - 120 && moved.length < 3000 / 4 + 120, `the newcomer's share: ${moved.length}`);
    // preferred() leaving r1 out (r1 stopping) gives what the others will compute without it
    assert.ok(ids.every((id) => view.preferred(id, 'r1') !== 'r1'));
  });

  test('shared limits: two replicas racing for the last slots get exactly as many as allowed, per principal and per host', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const [one, two] = [new RedisSessionStore(await connect(prefix), sealer), new RedisSessionStore(await connect(prefix), sealer)];
    const limits = { total: 100, perPrincipal: 5, connectingPerPrincipal: 50, perHost: 3 };
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).reserve('bot', `s${i}`, `host-${i % 2}`, limits, 10_000)));
    assert.equal(results.filter((r) => r === 'ok').length, 5, `5 per principal: ${results}`);
    assert.ok(results.every((r) => r === 'ok' || r === 'principal' || r === 'host'));
    const ok = results.flatMap((r, i) => (r === 'ok' ? [i] : []));
    for (const i of ok) await one.commit({ owner: 'bot', name: `s${i}`, definition: { name: `s${i}`, type: 'imap', password: 'pw' }, createdAt: new Date().toISOString() }, `host-${i % 2}`);
    assert.equal(await one.reserve('bot', 's0', 'host-0', limits, 10_000), ok.includes(0) ? 'exists' : 'principal');
    assert.equal(await two.reserve('bot', 'new', 'host-9', limits, 10_000), 'principal');
    assert.equal(await two.reserve('other', 'x', 'host-0', limits, 10_000), [...ok].filter((i) => i % 2 === 0).length >= 3 ? 'host' : 'ok');
    // a reservation of a replica that died lapses by itself (a reservation of 1 s: 200 ms left a loaded machine
    // little room between two calls)
    assert.equal(await two.reserve('third', 'y', '', { ...limits, connectingPerPrincipal: 1 }, 1000), 'ok');
    assert.equal(await two.reserve('third', 'z', '', { ...limits, connectingPerPrincipal: 1 }, 1000), 'connecting');
    await sleep(1100);
    assert.equal(await two.reserve('third', 'z', '', { ...limits, connectingPerPrincipal: 1 }, 1000), 'ok');
    // records are sealed; removing one frees its slots
    const stored = await two.get(`bot/s${ok[0]}`);
    assert.equal((stored!.record.definition as { password: string }).password, 'pw');
    assert.ok(!stored!.sealed.includes('pw'));
    await one.remove('bot', `s${ok[0]}`);
    assert.equal(await two.reserve('bot', 'again', 'host-5', limits, 10_000), 'ok');
  });

  test('idempotency keys through two replicas: one send, the same answer to every retry, another body refused, a failure frees the key', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const [a, b] = [await connect(prefix), await connect(prefix)].map((c) => new RedisIdempotencyStore(c, sealer, { ttlMs: 60_000, waitMs: 5000 }));
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const op = async () => {
      runs += 1;
      await gate;
      return { accepted: ['x@example.test'], n: runs };
    };
    const first = a!.run('bot\u0000s\u0000key-1', 'body-a', op);
    await sleep(50);
    const duplicate = b!.run('bot\u0000s\u0000key-1', 'body-a', op);
    await sleep(250);
    release();
    assert.deepEqual(await Promise.all([first, duplicate]), [
      { result: { accepted: ['x@example.test'], n: 1 }, replayed: false },
      { result: { accepted: ['x@example.test'], n: 1 }, replayed: true },
    ]);
    await assert.rejects(b!.run('bot\u0000s\u0000key-1', 'body-b', op), (err: unknown) => err instanceof AppError && err.code === 'IDEMPOTENCY_KEY_REUSED');
    await assert.rejects(a!.run('bot\u0000s\u0000key-2', 'f', () => Promise.reject(new Error('smtp down'))));
    assert.deepEqual(await b!.run('bot\u0000s\u0000key-2', 'f', async () => 'sent'), { result: 'sent', replayed: false });
    assert.equal(runs, 1);
  });

  test('the reconnect rate cap of a mail host is one bucket for every replica', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const limiters = [await connect(prefix), await connect(prefix)].map((c) => new SharedRateLimiter(c, 20, () => 2));
    const started = Date.now();
    let firstHostDone = false;
    const firstHost = Promise.all(limiters.flatMap((l) => Array.from({ length: 30 }, () => l.acquire('imap.example.test')))).then(() => {
      firstHostDone = true;
    });
    // another host has a bucket of its own: its turns do not wait behind the first host's
    const otherFirst = Promise.all(limiters.map((l) => l.acquire('pop.example.test'))).then(() => !firstHostDone);
    const [, otherWasFirst] = await Promise.all([firstHost, otherFirst]);
    const took = Date.now() - started;
    // 60 tokens at 20/s from a bucket of 2: at least 2.9 s, whichever replica asks (each alone would allow 20/s)
    assert.ok(took >= 2800, `60 acquisitions at 20/s over two replicas took ${took} ms`);
    assert.equal(otherWasFirst, true, 'the turns for another host waited behind the first host\'s');
    for (const l of limiters) l.stop();
  });

  test('work claims: bots on two replicas acknowledge every one of 1,000 messages exactly once', async (t) => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const both = [await connect(prefix), await connect(prefix)];
    const stores = both.map((c) => new RedisLeaseStore(c, { maxFinished: 100_000 }));
    const messages = Array.from({ length: 1000 }, (_, i) => ({ id: `m${String(i).padStart(5, '0')}`, deleted: false }));
    const summary = (id: string) => ({ id, folder: 'INBOX', messageId: null, subject: null, from: null, to: [], cc: [], date: null, receivedAt: null, size: 1, seen: false, flagged: false, answered: false, hasAttachments: false, attachments: [] }) as MessageSummary;
    const connector: Connector = {
      persistent: true,
      connect: async () => ({ name: 'INBOX', messages: 1000, checkedAt: new Date().toISOString() }),
      summary: async () => ({ name: 'INBOX', messages: 1000, checkedAt: new Date().toISOString() }),
      close: async () => {},
      reader: {
        folders: async () => [],
        async list(q: ListQuery) {
          const live = messages.filter((m) => !m.deleted);
          const start = q.cursor ? Number(q.cursor) : 0;
          return { messages: live.slice(start, start + q.limit).map((m) => summary(m.id)), nextCursor: start + q.limit < live.length ? String(start + q.limit) : null };
        },
        get: async () => assert.fail('not used'),
        raw: async () => assert.fail('not used'),
        attachment: async () => assert.fail('not used'),
      },
      deleter: { delete: async (id) => void (messages.find((m) => m.id === id)!.deleted = true), deleteMany: async () => ({ deleted: 0 }) },
    };
    const logger = silent;
    const session = new Session('bot', 'inbox', { type: 'pop3', fingerprint: 'f', view: {}, logBindings: {}, createConnector: () => connector }, {
      logger, mailLogger: logger, keepaliveIntervalMs: 0, checkIntervalMs: 0, watchIntervalMs: 0, idleTimeoutMs: 0, lockTimeoutMs: 30_000,
      reconnect: { baseMs: 1000, maxMs: 1000, maxAttempts: 0 }, limiter: new AdaptiveReconnectGate({ startPerSec: 0, maxPerSec: 0, slowMs: 1000 }), outbound: new OutboundPolicy({ allow: '', deny: 'none', ports: '*' }),
      observer: { connected() {}, reconnecting() {}, failed() {}, keepalive() {} }, onExpired() {}, supportedBy: () => [],
    });
    t.after(() => session.close());
    await session.open();
    const services = stores.map((s) => new ClaimService(s, { keyword: '$Processed' }));
    const acked = new Map<string, number>();
    let crashes = 0;
    const bot = async (k: number) => {
      const claims = services[k % 2]!;
      for (let idle = 0; idle < 3; ) {
        const { claim, messages: got } = await claims.claim(session, { folder: 'INBOX', where: { status: 'all', subject: [], from: [] }, max: 25, leaseSeconds: 60 });
        if (got.length === 0) {
          idle += 1;
          await sleep(120);
          continue;
        }
        idle = 0;
        if ((k + got.length + acked.size) % 7 === 0) {
          crashes += 1;
          await claims.extend(session, claim, 0.05);
          continue;
        }
        // not deleted here: the lease store's record of finished messages alone keeps them from coming back
        const result = await claims.acknowledge(session, claim, undefined, {});
        assert.deepEqual(result.failed, []);
        for (const id of result.acknowledged) acked.set(id, (acked.get(id) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, k) => bot(k)));
    assert.ok(crashes > 0, 'some bots crashed holding claims');
    assert.equal(acked.size, 1000, 'none lost');
    assert.ok([...acked.values()].every((n) => n === 1), 'none acknowledged twice');
    assert.ok((await both[0]!.client.keys(`${prefix}claim:*`)).length > 0);
    await stores[0]!.forget('bot', 'inbox');
    assert.deepEqual(await both[0]!.client.keys(`${prefix}claim:*`), [], 'a closed session leaves no claims behind');
  });

  test('TLS and AUTH from the URL; a wrong password is refused and never logged', async () => {
    const tls = await startRedis({ tls: true });
    try {
      const lines: string[] = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
      const good = await connect(undefined, logger, tls.url, { MSB_REDIS_CA_FILE: tls.caFile! });
      assert.equal(await good.client.ping(), 'PONG');
      const wrong = tls.url.replace(tls.password, 'not-the-password');
      const config = loadConfig({ MSB_REDIS_URL: wrong, MSB_REDIS_CA_FILE: tls.caFile!, MSB_SESSION_STORE_KEY: randomBytes(32).toString('base64'), MSB_REPLICA_SECRET: 'x'.repeat(32), MSB_AUTH: 'none' });
      const refused = new RedisConnection(config, logger, 'wrong');
      connections.push(refused);
      assert.equal(await refused.ready(2000), false);
      assert.throws(() => refused.require('creating a session'), (err: unknown) => err instanceof AppError && err.code === 'STORE_UNAVAILABLE');
      const untrusted = loadConfig({ MSB_REDIS_URL: tls.url, MSB_SESSION_STORE_KEY: randomBytes(32).toString('base64'), MSB_REPLICA_SECRET: 'x'.repeat(32), MSB_AUTH: 'none' });
      const noCa = new RedisConnection(untrusted, logger, 'no-ca');
      connections.push(noCa);
      assert.equal(await noCa.ready(2000), false, 'the server certificate is verified');
      await good.close();
      await refused.close();
      await noCa.close();
      assert.ok(lines.some((l) => /redis connection error/.test(l)));
      assert.ok(lines.every((l) => !l.includes(tls.password) && !l.includes('not-the-password')), 'no password in the log');
    } finally {
      await tls.close();
    }
  });

  test('the harness reads Dovecot\'s log as login intervals and finds overlaps', () => {
    const log = [
      '2026-12-01 10:00:00.100000 imap-login: Info: Login: user=<a@x>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=1, secured, session=<S1>',
      '2026-12-01 10:00:01.000000 imap-login: Info: Login: user=<b@x>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=2, secured, session=<S2>',
      '2026-12-01 10:00:02.000000 imap(a@x)<1><S1>: Info: Disconnected: Connection closed (IDLE finished 1.0 secs ago) in=1 out=2',
      '2026-12-01 10:00:02.000100 imap-login: Info: Login: user=<a@x>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=3, secured, session=<S3>',
      '2026-12-01 10:00:03.000000 imap-login: Info: Login: user=<b@x>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=4, secured, session=<S4>',
      '2026-12-01 10:00:04.000000 imap(b@x)<2><S2>: Info: Logged out in=1 out=2',
    ].join('\n');
    const intervals = loginIntervals(log);
    assert.equal(intervals.length, 4);
    assert.equal(intervals.find((i) => i.session === 'S1')!.to - intervals.find((i) => i.session === 'S1')!.from, 1900);
    assert.deepEqual(overlaps(intervals).map(([x, y]) => [x.session, y.session]), [['S2', 'S4']]);
  });
});
