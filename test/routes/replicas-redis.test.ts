import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { build, type TestApp } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { defaultUsers, startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { freePort } from '../harness/ports.js';
import { onSseFrames } from '../harness/sse-client.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { ReplicaSigner } from '../../src/cluster/forwarding.js';
import { encodeId } from '../../src/domain/mail.js';
import { createHash } from 'node:crypto';
import { compose, seedFolders } from '../harness/graph-mail-seed.js';
import { USERS, startGraphWorld } from '../harness/graph-world.js';
import { signInOverHttp } from '../harness/sign-in.js';

type App = TestApp['app'];
const ALICE = 'alice@example.test';
const SECRET = 'replica-secret-of-the-tests-0123456789';

/** Every key and value in Redis, as text (what someone with read access to it sees). */
async function dump(redis: RedisServer): Promise<string> {
  const client = new Redis(redis.url);
  try {
    const out: string[] = [];
    for (const key of await client.keys('*')) {
      const type = await client.type(key);
      out.push(key);
      if (type === 'string') out.push((await client.get(key)) ?? '');
      if (type === 'hash') out.push(JSON.stringify(await client.hgetall(key)));
      if (type === 'set') out.push(JSON.stringify(await client.smembers(key)));
      if (type === 'zset') out.push(JSON.stringify(await client.zrange(key, '0', '-1')));
    }
    return out.join('\n');
  } finally {
    client.disconnect();
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  assert.fail(`${what} did not happen within ${timeoutMs} ms${last ? `; last error: ${String(last)}` : ''}`);
}

/** Collects the SSE frames of GET /v1/events on a real socket. */
function events(port: number, path: string) {
  const received: { type: string; session: string; data: Record<string, any> }[] = [];
  let close = () => {};
  const req = request({ host: '127.0.0.1', port, path }, (res) => {
    onSseFrames(res, (frame) => {
      if (frame.data) received.push(JSON.parse(frame.data));
    });
    close = () => res.destroy();
  });
  req.on('error', () => {});
  req.end();
  return { received, close: () => close() };
}

describe('replicas on Redis (in one test process)', () => {
  let redis: RedisServer;
  let dovecot: DovecotServer;
  let key: string;
  before(async () => {
    redis = await startRedis();
    dovecot = await startDovecot();
    key = randomBytes(32).toString('base64');
  });
  after(async () => {
    await dovecot?.close();
    await redis?.close();
  });

  // each test has its own key space in the one Redis (MSB_REDIS_PREFIX), as separate deployments would
  let prefix = 'msb:';
  beforeEach(() => {
    prefix = `t${randomBytes(4).toString('hex')}:`;
  });
  const env = (extra: Record<string, string> = {}) => ({
    MSB_REDIS_URL: redis.url,
    MSB_REDIS_PREFIX: prefix,
    MSB_SESSION_STORE_KEY: key,
    MSB_REPLICA_SECRET: SECRET,
    MSB_LEASE_TTL_MS: '3000',
    MSB_RECONNECT_BASE_MS: '100',
    MSB_RECONNECT_MAX_MS: '500',
    ...extra,
  });
  const body = (name: string, type: 'imap' | 'pop3' = 'imap', extra: Record<string, unknown> = {}) => ({
    name, type, host: '127.0.0.1', port: type === 'imap' ? dovecot.ports.imaps : dovecot.ports.pop3s, username: ALICE, password: defaultUsers[ALICE], tls: { ca: dovecot.caPem }, ...extra,
  });
  const inspect = (app: App, name: string) => app.inject({ method: 'GET', url: `/v1/sessions/${name}` });
  const connected = (app: App, name: string) =>
    waitFor<Record<string, any>>(`${name} connected`, async () => {
      const res = await inspect(app, name);
      return res.statusCode === 200 && res.json().state === 'connected' ? res.json() : undefined;
    });

  /** A replica listening on its own port, as the others reach it. */
  async function replica(t: Parameters<typeof build>[0], extra: Record<string, string> = {}) {
    const port = await freePort();
    const built = await build(t, env({ PORT: String(port), MSB_REPLICA_URL: `http://127.0.0.1:${port}`, ...extra }));
    await built.app.listen({ port, host: '127.0.0.1' });
    return { ...built, port };
  }

  test('IMAP and POP3 sessions come back after a restart, from Redis; nothing there is readable without the key', async (t) => {
    const { app: first } = await build({ after: () => {} }, env(), { MSB_SECRET_ALICE_PW: defaultUsers[ALICE]! });
    for (const b of [body('r-imap'), body('r-pop3', 'pop3'), body('r-ref', 'imap', { password: { secret: 'alice_pw' } }), body('r-gone')]) {
      const res = await first.inject({ method: 'POST', url: '/v1/sessions', payload: b });
      assert.equal(res.statusCode, 201, res.body);
    }
    assert.equal((await first.inject({ method: 'DELETE', url: '/v1/sessions/r-gone' })).statusCode, 204);
    const stored = await dump(redis);
    assert.match(stored, /anonymous\/r-imap/, 'the dump reads Redis');
    for (const plain of [defaultUsers[ALICE]!, ALICE, 'alice_pw', 'INBOX']) assert.ok(!stored.includes(plain), `"${plain}" is not in Redis in clear`);
    await first.close();

    const { app: second } = await build(t, env(), { MSB_SECRET_ALICE_PW: defaultUsers[ALICE]! });
    const listed = (await second.inject({ method: 'GET', url: '/v1/sessions' })).json().sessions.map((s: { name: string }) => s.name).sort();
    assert.deepEqual(listed, ['r-imap', 'r-pop3', 'r-ref']);
    for (const name of listed) assert.equal((await connected(second, name)).mailbox.name, 'INBOX');
    assertProblem(await inspect(second, 'r-gone'), 'SESSION_NOT_FOUND');
    for (const name of listed) assert.equal((await second.inject({ method: 'DELETE', url: `/v1/sessions/${name}` })).statusCode, 204);
  });

  test('two replicas: creates land on the preferred one, every request works through either, events reach both', async (t) => {
    const a = await replica(t);
    const b = await replica(t);
    // both see each other before the creates are routed
    await sleep(2500);
    const names: string[] = Array.from({ length: 12 }, (_, i) => `two-${i}`);
    for (const [i, name] of names.entries()) {
      const res = await (i % 2 ? b : a).app.inject({ method: 'POST', url: '/v1/sessions', payload: body(name) });
      assert.equal(res.statusCode, 201, res.body);
    }
    const held = (r: typeof a) => r.app.inject({ method: 'GET', url: '/metrics' }).then((res) => Number(/msb_sessions\{type="imap",state="connected"\} (\d+)/.exec(res.body)?.[1] ?? 0));
    const [onA, onB] = [await held(a), await held(b)];
    assert.equal(onA + onB, names.length, 'each session is held once');
    assert.ok(onA > 0 && onB > 0, `both replicas hold sessions (${onA}, ${onB})`);

    const streamA = events(a.port, '/v1/events');
    const streamB = events(b.port, '/v1/events');
    t.after(() => {
      streamA.close();
      streamB.close();
    });
    for (const r of [a, b]) {
      const list = (await r.app.inject({ method: 'GET', url: '/v1/sessions' })).json().sessions;
      assert.deepEqual(list.map((s: { name: string }) => s.name).sort(), [...names].sort());
      for (const name of names) {
        const seen = await inspect(r.app, name);
        assert.equal(seen.statusCode, 200, seen.body);
        assert.equal(seen.json().name, name);
        const live = await r.app.inject({ method: 'GET', url: `/v1/sessions/${name}?refresh=true` });
        assert.equal(live.statusCode, 200, live.body);
        // a mail operation answers the same through either replica (the holder answers it)
        const [viaA, viaB] = [await a.app.inject({ method: 'GET', url: `/v1/sessions/${name}/folders` }), await b.app.inject({ method: 'GET', url: `/v1/sessions/${name}/folders` })];
        assert.equal(viaA.statusCode, viaB.statusCode);
        assert.ok(viaA.statusCode < 500, viaA.body);
      }
    }
    // a state change of a session held by either replica reaches the event streams of both
    const target = names[3]!;
    assert.equal((await b.app.inject({ method: 'DELETE', url: `/v1/sessions/${target}` })).statusCode, 204);
    for (const stream of [streamA, streamB]) {
      await waitFor('the closed event on both streams', async () => (stream.received.some((e) => e.session === target && e.type === 'session.state' && e.data.state === 'closed') ? true : undefined));
    }
    for (const r of [a, b]) assertProblem(await inspect(r.app, target), 'SESSION_NOT_FOUND');
  });

  test('a forwarded request needs a valid replica signature; the principal it names is believed only then', async (t) => {
    const { app } = await build(t, env({ MSB_AUTH: 'keys', MSB_API_KEYS: `bot-a:bot:${'a'.repeat(64)}` }));
    const url = '/v1/sessions';
    for (const header of ['v1;x;1;bot-a;bot;forged', new ReplicaSigner('another-secret-of-32-characters-xx', 'x').sign('GET', url, { name: 'bot-a', role: 'bot' })]) {
      const res = await app.inject({ method: 'GET', url, headers: { 'x-msb-replica': header } });
      assertProblem(res, 'UNAUTHENTICATED');
    }
    const signed = new ReplicaSigner(SECRET, 'x');
    const stale = signed.sign('GET', url, { name: 'bot-a', role: 'bot' }, Date.now() - 120_000);
    assertProblem(await app.inject({ method: 'GET', url, headers: { 'x-msb-replica': stale } }), 'UNAUTHENTICATED');
    // signed for another URL or method
    assertProblem(await app.inject({ method: 'GET', url, headers: { 'x-msb-replica': signed.sign('GET', '/v1/sessions?all=true', { name: 'bot-a', role: 'admin' }) } }), 'UNAUTHENTICATED');
    const ok = await app.inject({ method: 'GET', url, headers: { 'x-msb-replica': signed.sign('GET', url, { name: 'bot-a', role: 'bot' }) } });
    assert.equal(ok.statusCode, 200, ok.body);
  });

  test('limits count over every replica', async (t) => {
    const a = await replica(t, { MSB_MAX_SESSIONS_PER_PRINCIPAL: '3' });
    const b = await replica(t, { MSB_MAX_SESSIONS_PER_PRINCIPAL: '3' });
    await sleep(2500);
    for (const [i, r] of [a, b, a].entries()) assert.equal((await r.app.inject({ method: 'POST', url: '/v1/sessions', payload: body(`lim-${i}`) })).statusCode, 201);
    for (const r of [a, b]) assertProblem(await r.app.inject({ method: 'POST', url: '/v1/sessions', payload: body('lim-4') }), 'SESSION_QUOTA_EXCEEDED');
    for (let i = 0; i < 3; i++) assert.equal((await b.app.inject({ method: 'DELETE', url: `/v1/sessions/lim-${i}` })).statusCode, 204);
  });

  test('Redis away: held sessions keep working, creates and closes answer 503 STORE_UNAVAILABLE, nothing is lost when it is back', async (t) => {
    const { app } = await build(t, env());
    for (const name of ['away-1', 'away-2']) assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: body(name) })).statusCode, 201);
    await redis.stop();
    // past the lease's lifetime: with no other replica, nobody can take the sessions, so they stay in use
    await sleep(4000);
    for (const name of ['away-1', 'away-2']) {
      const live = await app.inject({ method: 'GET', url: `/v1/sessions/${name}?refresh=true` });
      assert.equal(live.statusCode, 200, live.body);
      assert.equal(live.json().state, 'connected');
      assert.equal(live.json().mailbox.name, 'INBOX');
    }
    const refused = await app.inject({ method: 'POST', url: '/v1/sessions', payload: body('away-3') });
    assertProblem(refused, 'STORE_UNAVAILABLE');
    assert.ok(Number(refused.headers['retry-after']) > 0);
    assertProblem(await app.inject({ method: 'DELETE', url: '/v1/sessions/away-1' }), 'STORE_UNAVAILABLE');
    // Redis comes back empty (no persistence): the replica writes again what it holds
    await redis.start();
    await waitFor('the sessions written again', async () => {
      const stored = await dump(redis);
      return stored.includes('anonymous/away-1') && stored.includes('anonymous/away-2') ? true : undefined;
    });
    // while Redis is filled again, a list would miss what is not written yet: it answers 503 meanwhile
    const listed = await waitFor('the list again', async () => {
      const res = await app.inject({ method: 'GET', url: '/v1/sessions' });
      if (res.statusCode === 503) assertProblem(res, 'STORE_UNAVAILABLE');
      return res.statusCode === 200 ? res.json().sessions : undefined;
    });
    assert.deepEqual(listed.map((s: { name: string; state: string }) => [s.name, s.state]), [['away-1', 'connected'], ['away-2', 'connected']]);
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: body('away-3') })).statusCode, 201);
    for (const name of ['away-1', 'away-2', 'away-3']) assert.equal((await app.inject({ method: 'DELETE', url: `/v1/sessions/${name}` })).statusCode, 204);
  });

  test('Redis lost its data (flushed, then restarted empty): the other replica never answers 404 nor creates the session again; its holder writes it back', async (t) => {
    const a = await replica(t);
    const b = await replica(t);
    await sleep(2500);
    const name = 'lost-1';
    assert.equal((await a.app.inject({ method: 'POST', url: '/v1/sessions', payload: body(name) })).statusCode, 201);
    const connectedOn = async (r: typeof a) => /msb_sessions\{type="imap",state="connected"\} 1/.test((await r.app.inject({ method: 'GET', url: '/metrics' })).body);
    const [holder, other] = (await connectedOn(a)) ? [a, b] : [b, a];
    assert.ok(await connectedOn(holder), 'one replica holds the session');
    const watcher = new Redis(redis.url);
    t.after(() => watcher.disconnect());
    const statuses: number[] = [];
    /** What the replica that does not hold the session answers, until it finds the session again. */
    const probeOther = async () => {
      const seen = await inspect(other.app, name);
      const again = await other.app.inject({ method: 'POST', url: '/v1/sessions', payload: body(name) });
      statuses.push(seen.statusCode, again.statusCode);
      for (const res of [seen, again]) if (res.statusCode === 503) assertProblem(res, 'STORE_UNAVAILABLE');
      return seen.statusCode === 200 && again.statusCode === 200 ? true : undefined;
    };

    // every key gone at once, no reconnect: the very next request sees that the epoch key is gone
    const keys = await watcher.keys(`${prefix}*`);
    assert.ok(keys.length > 0);
    await watcher.del(...keys);
    const first = await inspect(other.app, name);
    assertProblem(first, 'STORE_UNAVAILABLE');
    assertProblem(await other.app.inject({ method: 'POST', url: '/v1/sessions', payload: body(name) }), 'STORE_UNAVAILABLE');
    await waitFor('the session found again through the other replica', probeOther);

    // a real restart without persistence: whichever replica reconnects first, the answers stay "try again"
    await redis.stop();
    await redis.start();
    await waitFor('the session found again after the restart', probeOther);
    assert.deepEqual([...new Set(statuses)].filter((s) => s !== 200 && s !== 503), [], `only 200 and 503 (never 404, never a second create): ${statuses.join(' ')}`);
    assert.ok(await connectedOn(holder), 'the session stayed on its holder');
    assert.ok(!(await connectedOn(other)), 'and was not created on the other replica');
    // the list waits for every holder (a lease TTL after the loss was seen): until then it is "try again"
    const listed = await waitFor('the list again', async () => {
      const res = await other.app.inject({ method: 'GET', url: '/v1/sessions' });
      if (res.statusCode === 503) assertProblem(res, 'STORE_UNAVAILABLE');
      return res.statusCode === 200 ? res.json().sessions : undefined;
    });
    assert.deepEqual(listed.map((s: { name: string }) => s.name), [name]);
    assert.equal((await other.app.inject({ method: 'DELETE', url: `/v1/sessions/${name}` })).statusCode, 204);
  });
});

describe('outlook sessions on two replicas (fake Graph and identity provider)', () => {
  test('raw and a 3 MB attachment stream byte for byte through either replica; a change, a send with an Idempotency-Key and work claims through the replica that does not hold the session (keys and claims in Redis); an OAuth2 callback reaching the other replica completes the sign-in', async (t) => {
    const redis = await startRedis();
    const world = await startGraphWorld();
    t.after(async () => {
      await world.close();
      await redis.close();
    });
    const rich = await seedFolders(world.graph.mailbox(USERS.alice.name));
    const key = randomBytes(32).toString('base64');
    const replicas: { app: App; port: number }[] = [];
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const { app } = await build(t, { ...world.env, MSB_REDIS_URL: redis.url, MSB_SESSION_STORE_KEY: key, MSB_REPLICA_SECRET: SECRET, MSB_LEASE_TTL_MS: '3000', PORT: String(port), MSB_REPLICA_URL: `http://127.0.0.1:${port}` });
      await app.listen({ port, host: '127.0.0.1' });
      replicas.push({ app, port });
    }
    await sleep(2500);
    const created = await replicas[0]!.app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'mail', type: 'outlook', mailbox: USERS.alice.name } });
    assert.equal(created.statusCode, 201, created.body);
    const id = encodeId(rich.message.immutableId);
    const holders = await Promise.all(replicas.map(({ app }) => app.inject({ method: 'GET', url: '/metrics' }).then((res) => /msb_sessions\{type="outlook",state="connected"\} 1/.test(res.body))));
    assert.deepEqual(holders.filter(Boolean).length, 1, 'one replica holds it');
    for (const { port } of replicas) {
      const raw = await fetch(`http://127.0.0.1:${port}/v1/sessions/mail/messages/${id}/raw`);
      assert.equal(raw.status, 200);
      assert.equal(raw.headers.get('content-type'), 'message/rfc822');
      assert.ok(Buffer.from(await raw.arrayBuffer()).equals(rich.mime), 'the .eml, byte for byte');
      const detail = (await (await fetch(`http://127.0.0.1:${port}/v1/sessions/mail/messages/${id}`)).json()) as { attachments: { id: string; filename: string }[] };
      const pdf = detail.attachments.find((a) => a.filename === 'Rechnung 2026-11.pdf')!;
      const res = await fetch(`http://127.0.0.1:${port}/v1/sessions/mail/messages/${id}/attachments/${pdf.id}`);
      assert.equal(res.status, 200);
      assert.match(String(res.headers.get('content-disposition')), /^attachment; filename="Rechnung 2026-11\.pdf"/);
      assert.equal(createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex'), createHash('sha256').update(rich.pdf).digest('hex'));
    }
    // changes, a send and work claims through the replica that does not hold the session (forwarded), with
    // their idempotency keys and claims in Redis
    const mailHolder = replicas[holders.indexOf(true)]!.app;
    const notHolder = replicas[holders.indexOf(false)]!.app;
    const at = (app: App, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object, headers: Record<string, string> = {}) =>
      app.inject({ method, url: `/v1/sessions/mail${url}`, headers, ...(payload ? { payload } : {}) });
    const changed = await at(notHolder, 'PATCH', `/messages/${id}`, { seen: true, flagged: true });
    assert.equal(changed.statusCode, 200, changed.body);
    const reread = (await at(mailHolder, 'GET', `/messages/${id}`)).json();
    assert.deepEqual([reread.seen, reread.flagged], [true, true], 'changed through one replica, seen through the other');

    const sentBefore = world.graph.sent.length;
    const mail = { to: USERS.bob.name, subject: 'Once through two replicas', text: 'once' };
    const firstSend = await at(notHolder, 'POST', '/send', mail, { 'idempotency-key': 'fleet-send-1' });
    assert.equal(firstSend.statusCode, 201, firstSend.body);
    const retried = await at(mailHolder, 'POST', '/send', mail, { 'idempotency-key': 'fleet-send-1' });
    assert.equal(retried.statusCode, 201, retried.body);
    assert.equal(retried.headers['idempotent-replayed'], 'true');
    assertProblem(await at(notHolder, 'POST', '/send', { ...mail, text: 'another' }, { 'idempotency-key': 'fleet-send-1' }), 'IDEMPOTENCY_KEY_REUSED');
    assert.equal(world.graph.sent.length, sentBefore + 1, 'sent once');

    const inbox = world.graph.mailbox(USERS.alice.name);
    for (let i = 0; i < 2; i++) await inbox.addMessage('inbox', await compose({ from: 'billing@acme.test', to: USERS.alice.name, subject: `Work ${i}`, text: 'x' }));
    const claimed = await at(notHolder, 'POST', '/claims', { where: {}, max: 1, leaseSeconds: 60 });
    assert.equal(claimed.statusCode, 201, claimed.body);
    assert.equal(claimed.json().messages.length, 1, claimed.body);
    const [claimedId] = claimed.json().messages.map((m: { id: string }) => m.id);
    const second = await at(mailHolder, 'POST', '/claims', { where: {}, max: 50, leaseSeconds: 60 });
    assert.equal(second.statusCode, 201, second.body);
    assert.equal(second.json().messages.length, 1, 'the other message');
    assert.ok(!second.json().messages.some((m: { id: string }) => m.id === claimedId), 'a claim through the other replica does not get what the first holds');
    const acked = await at(mailHolder, 'POST', `/claims/${claimed.json().claim}/ack`, {});
    assert.equal(acked.statusCode, 200, acked.body);
    assert.deepEqual(acked.json().acknowledged, [claimedId]);
    const stored = await dump(redis);
    assert.match(stored, /:idem:/, 'the idempotency key is kept in Redis');
    assert.match(stored, /:claim:anonymous\/mail:/, 'the claims are kept in Redis');

    // a sign-in started by the replica that holds the session; the identity provider sends the browser to the other one
    const started = await replicas[1]!.app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'signs-in', type: 'outlook' } });
    assert.equal(started.statusCode, 202, started.body);
    const callback = new URL(await signInOverHttp(started.json().authorizationUrl, { caPem: world.certs.caPem, username: USERS.carol.name, password: USERS.carol.password }));
    const holder = await Promise.all(replicas.map(({ app }) => app.inject({ method: 'GET', url: '/metrics' }).then((res) => /msb_sessions\{type="outlook",state="awaiting_authorization"\} 1/.test(res.body))));
    const other = replicas[holder.indexOf(false)]!;
    const page = await fetch(`http://127.0.0.1:${other.port}${callback.pathname}${callback.search}`, { headers: { accept: 'application/json' } });
    assert.equal(page.status, 200, await page.clone().text());
    assert.equal(((await page.json()) as { state: string }).state, 'connected');
    for (const { app } of replicas) {
      const seen = await app.inject({ method: 'GET', url: '/v1/sessions/signs-in' });
      assert.equal(seen.json().state, 'connected');
      assert.equal(seen.json().mailbox.name, 'Inbox');
    }
  });
});
