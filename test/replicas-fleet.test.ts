import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startDovecot, type DovecotServer } from './harness/dovecot.js';
import { loginIntervals, overlaps, startReplica, stopReplica, type Replica } from './harness/fleet.js';
import { startRedis, type RedisServer } from './harness/redis.js';

// Three replicas of the service as real processes on one Redis, 300 IMAP sessions on Dovecot (one user
// per session, so Dovecot's log tells each session's connections apart): even spread, every request
// through every replica, kill -9, a replica cut off from Redis, a graceful stop and a new replica,
// Redis restarted under load. After each step Dovecot's log (microsecond timestamps) must show no user
// logged in twice at once: the fencing rule of README "Running more than one replica".

const N = 300;
const TTL = 6000;
const TICK = TTL / 3;
const SAFETY = TTL / 5;
const RATE = 200;
const PREFIX = `fleet${randomBytes(3).toString('hex')}:`;
const user = (i: number) => `u${String(i).padStart(4, '0')}@example.test`;
const name = (i: number) => `s${String(i).padStart(4, '0')}`;

interface Json {
  [key: string]: any;
}

async function call(replica: Replica, method: string, path: string, body?: unknown): Promise<{ status: number; json: Json; headers: Headers }> {
  const res = await fetch(`${replica.url}${path}`, {
    method,
    ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Json) : {}, headers: res.headers };
}

async function eachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await task(items[next++]!);
  }));
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}`);
    await sleep(100);
  }
}

describe('a fleet of 3 replicas on Redis, 300 sessions on Dovecot', { timeout: 600_000 }, () => {
  let redis: RedisServer;
  let dovecot: DovecotServer;
  let watcher: Redis;
  const replicas = new Map<string, Replica>();
  const ids = Array.from({ length: N }, (_, i) => i);
  const env = {
    MSB_SESSION_STORE_KEY: randomBytes(32).toString('base64'),
    MSB_REPLICA_SECRET: randomBytes(24).toString('base64'),
    MSB_REDIS_PREFIX: PREFIX,
    MSB_LEASE_TTL_MS: String(TTL),
    MSB_RECONNECT_RATE_PER_SEC: String(RATE),
    MSB_RECONNECT_BASE_MS: '200',
    MSB_RECONNECT_MAX_MS: '1000',
    MSB_SHUTDOWN_TIMEOUT_MS: '20000',
  };

  /** Which replica holds each session, from the leases in Redis (undefined: nobody, or released). */
  async function holders(): Promise<Map<string, string | undefined>> {
    const values = await watcher.mget(ids.map((i) => `${PREFIX}lease:anonymous/${name(i)}`));
    return new Map(ids.map((i, k) => {
      const v = values[k];
      const holder = v ? v.slice(0, v.lastIndexOf('|')) : undefined;
      return [name(i), holder === '-' ? undefined : holder];
    }));
  }
  /** Replica ids (as in the leases) by replica name, from their log lines. */
  function replicaId(r: Replica): string {
    const m = /"replica":"([^"]+)"/.exec(r.output());
    assert.ok(m, `replica ${r.name} logged its id`);
    return m[1]!;
  }
  async function live(): Promise<string[]> {
    const members = await watcher.smembers(`${PREFIX}replicas`);
    const beats = members.length ? await watcher.mget(members.map((m) => `${PREFIX}replica:${m}`)) : [];
    return members.filter((_, i) => beats[i] !== null);
  }
  async function start(label: string): Promise<Replica> {
    const r = await startReplica(label, redis, env);
    replicas.set(label, r);
    return r;
  }
  /** Every session connected, seen through `via` (the directory), each held by one of `holdersIn`. */
  async function allConnected(via: Replica, holdersIn: Set<string>, expected = N): Promise<Map<string, string | undefined>> {
    const list = await call(via, 'GET', '/v1/sessions');
    if (list.status !== 200) return undefined as never;
    const connected = (list.json.sessions as Json[]).filter((s) => s.state === 'connected').length;
    if (connected !== expected) return undefined as never;
    const held = await holders();
    const all = [...held.entries()].filter(([, h]) => h !== undefined);
    return all.length === expected && all.every(([, h]) => holdersIn.has(h!)) ? held : (undefined as never);
  }
  async function assertNoDoubleLogins(step: string): Promise<number> {
    const intervals = loginIntervals(await dovecot.logText());
    assert.ok(intervals.length >= N && intervals.every((i) => Number.isFinite(i.from)), 'Dovecot\'s log was read, with microsecond times');
    const bad = overlaps(intervals);
    assert.deepEqual(bad.slice(0, 5), [], `${step}: users logged in twice at once (first 5 shown)`);
    return intervals.length;
  }

  before(async () => {
    redis = await startRedis();
    const users = Object.fromEntries(ids.map((i) => [user(i), `pw-${i}-${randomBytes(3).toString('hex')}`]));
    dovecot = await startDovecot({ scale: true, users, preciseLog: true });
    (globalThis as { users?: Record<string, string> }).users = users;
    watcher = new Redis(redis.url);
    watcher.on('error', () => {}); // it reconnects by itself after the Redis restart
    await Promise.all(['r1', 'r2', 'r3'].map((label) => start(label)));
    // every replica has seen the others for a tick before creates are routed
    await waitFor('3 live replicas', 30_000, async () => ((await live()).length === 3 ? true : undefined));
    await sleep(2 * TICK + 500);
  });
  after(async () => {
    for (const r of replicas.values()) await stopReplica(r).catch(() => {});
    watcher?.disconnect();
    await dovecot?.close();
    await redis?.close();
  });

  test('300 creates through all three replicas: each session held once, spread evenly, listed and usable through every replica', async (t) => {
    const users = (globalThis as { users?: Record<string, string> }).users!;
    const all = [...replicas.values()];
    await eachLimited(ids, 30, async (i) => {
      const res = await call(all[i % 3]!, 'POST', '/v1/sessions', {
        // watch: [] — an IMAP session that watches holds a second (IDLE) connection with the same login, which
        // the log check below would count as the session logged in twice
        name: name(i), type: 'imap', host: '127.0.0.1', port: dovecot.ports.imap, secure: false, tls: { starttls: 'off' }, username: user(i), password: users[user(i)], watch: [],
      });
      assert.equal(res.status, 201, JSON.stringify(res.json));
    });
    const held = await holders();
    const counts = new Map<string, number>();
    for (const h of held.values()) counts.set(h!, (counts.get(h!) ?? 0) + 1);
    t.diagnostic(`sessions per replica: ${[...counts.values()].join(', ')}`);
    assert.equal(counts.size, 3, 'all three replicas hold sessions');
    for (const c of counts.values()) assert.ok(c >= N / 3 - 40 && c <= N / 3 + 40, `even spread: ${[...counts.values()]}`);
    // placement is stable: nothing moves over two more ticks
    await sleep(2 * TICK);
    assert.deepEqual(await holders(), held, 'no session moved once placed');

    for (const r of all) {
      const list = await call(r, 'GET', '/v1/sessions');
      assert.equal(list.status, 200);
      assert.equal(list.json.sessions.length, N);
      assert.ok(list.json.sessions.every((s: Json) => s.state === 'connected'));
    }
    // inspect of every session through every replica; a live refresh, a mail operation and a 404 through each for a sample
    await eachLimited(ids, 20, async (i) => {
      for (const r of all) {
        const res = await call(r, 'GET', `/v1/sessions/${name(i)}`);
        assert.equal(res.status, 200, JSON.stringify(res.json));
        assert.equal(res.json.username, user(i));
      }
    });
    await eachLimited(ids.filter((i) => i % 10 === 0), 10, async (i) => {
      const seen: number[] = [];
      for (const r of all) {
        const live = await call(r, 'GET', `/v1/sessions/${name(i)}?refresh=true`);
        assert.equal(live.status, 200, JSON.stringify(live.json));
        assert.equal(live.json.state, 'connected');
        seen.push((await call(r, 'GET', `/v1/sessions/${name(i)}/folders`)).status);
      }
      assert.equal(new Set(seen).size, 1, `a mail operation answers alike through every replica: ${seen}`);
      assert.ok(seen[0]! < 500);
    });
    for (const r of all) assert.equal((await call(r, 'GET', '/v1/sessions/no-such-session')).status, 404);
    await assertNoDoubleLogins('after the creates');
  });

  test('events of a session held by one replica reach a stream opened on another; a close through a third', async () => {
    const held = await holders();
    const ids3 = new Map([...replicas.values()].map((r) => [replicaId(r), r]));
    const target = name(7);
    const holder = ids3.get(held.get(target)!)!;
    const [streamOn, closeVia] = [...replicas.values()].filter((r) => r !== holder);
    const frames: Json[] = [];
    const req = request(`${streamOn!.url}/v1/events?session=${target}`, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) if (line.startsWith('data: ')) frames.push(JSON.parse(line.slice(6)));
      });
    });
    req.on('error', () => {});
    req.end();
    await sleep(300);
    try {
      assert.equal((await call(closeVia!, 'DELETE', `/v1/sessions/${target}`)).status, 204);
      await waitFor('the closed event through another replica', 10_000, async () => (frames.some((f) => f.type === 'session.state' && f.data.state === 'closed') ? true : undefined));
    } finally {
      req.destroy();
    }
    for (const r of replicas.values()) assert.equal((await call(r, 'GET', `/v1/sessions/${target}`)).status, 404);
    // put it back for the next steps
    const users = (globalThis as { users?: Record<string, string> }).users!;
    const res = await call(closeVia!, 'POST', '/v1/sessions', { name: target, type: 'imap', host: '127.0.0.1', port: dovecot.ports.imap, secure: false, tls: { starttls: 'off' }, username: user(7), password: users[user(7)], watch: [] });
    assert.equal(res.status, 201);
  });

  test('kill -9 of a replica: its sessions are connected again on the others within lease TTL + safety wait + a tick + their logins', async (t) => {
    const before = await holders();
    const victim = replicas.get('r1')!;
    const victimId = replicaId(victim);
    const lost = [...before.values()].filter((h) => h === victimId).length;
    const killedAt = Date.now();
    await stopReplica(victim, 'SIGKILL');
    replicas.delete('r1');
    const survivors = new Set([...replicas.values()].map(replicaId));
    const bound = TTL + SAFETY + TICK + (lost / RATE) * 1000 + 15_000;
    await waitFor('every session connected on the survivors', bound, () => allConnected([...replicas.values()][0]!, survivors));
    const took = Date.now() - killedAt;
    t.diagnostic(`${lost} sessions of the killed replica connected again on the others after ${took} ms (TTL ${TTL} + safety ${SAFETY} + tick ${TICK} + ${lost} logins at ${RATE}/s)`);
    const after = await holders();
    for (const [session, holder] of before) if (holder !== victimId) assert.equal(after.get(session), holder, `${session} did not move: its replica lives`);
    await assertNoDoubleLogins('after kill -9');
  });

  test('a replica cut off from Redis logs out of its sessions before the others log in to them', async (t) => {
    const cut = replicas.get('r2')!;
    const cutId = replicaId(cut);
    const mine = [...(await holders()).entries()].filter(([, h]) => h === cutId).map(([s]) => s);
    assert.ok(mine.length > 0);
    cut.redisProxy.blackhole(true);
    cut.redisProxy.resetAll();
    const others = new Set([...replicas.values()].filter((r) => r !== cut).map(replicaId));
    await waitFor('the cut-off replica\'s sessions held by the other one', 60_000, async () => {
      const held = await holders();
      return mine.every((s) => held.get(s) !== undefined && others.has(held.get(s)!)) ? true : undefined;
    });
    const other = [...replicas.values()].find((r) => r !== cut)!;
    await waitFor('all connected', 30_000, async () => {
      const list = await call(other, 'GET', '/v1/sessions');
      return list.status === 200 && list.json.sessions.filter((s: Json) => s.state === 'connected').length === N ? true : undefined;
    });
    assert.match(cut.output(), /lease lost: closing the session here|could not be renewed in time|cannot reach redis/);
    const intervals = await assertNoDoubleLogins('after the partition');
    t.diagnostic(`${mine.length} sessions moved off the cut-off replica; ${intervals} logins in Dovecot's log so far`);
    // back on the network: it rejoins and takes its share again, still without double logins
    cut.redisProxy.blackhole(false);
    await waitFor('the replica back in the fleet with sessions', 60_000, async () => {
      const held = await holders();
      return [...held.values()].filter((h) => h === cutId).length > 20 ? true : undefined;
    });
    await waitFor('all connected after it rejoined', 60_000, () => allConnected(other, new Set([...replicas.values()].map(replicaId))));
    await assertNoDoubleLogins('after the partition healed');
  });

  test('a graceful stop hands every session over; a new replica takes its share, and only sessions that prefer it move', async (t) => {
    const leaving = replicas.get('r3')!;
    const leavingId = replicaId(leaving);
    const before = await holders();
    const stoppedAt = Date.now();
    assert.equal(await stopReplica(leaving, 'SIGTERM'), 0, leaving.output().slice(-3000));
    replicas.delete('r3');
    assert.match(leaving.output(), /sessions handed over before stopping/);
    const remaining = [...replicas.values()];
    const held = await waitFor('every session on the remaining replica', 30_000, () => allConnected(remaining[0]!, new Set(remaining.map(replicaId))));
    t.diagnostic(`graceful stop: ${[...before.values()].filter((h) => h === leavingId).length} sessions moved in ${Date.now() - stoppedAt} ms`);

    const fresh = await start('r4');
    const freshId = await waitFor('the new replica\'s id', 10_000, async () => (/"replica":"([^"]+)"/.exec(fresh.output())?.[1]));
    const fleet = new Set([...replicas.values()].map(replicaId));
    const after = await waitFor('the new replica took its share', 60_000, async () => {
      const now = await allConnected(fresh, fleet);
      const share = [...now.values()].filter((h) => h === freshId).length;
      return share >= N / 2 - 40 ? now : undefined;
    });
    for (const [session, holder] of after) {
      if (holder !== held.get(session)) assert.equal(holder, freshId, `${session} moved, and only to the new replica`);
    }
    t.diagnostic(`the new replica took ${[...after.values()].filter((h) => h === freshId).length} of ${N}`);
    await assertNoDoubleLogins('after the graceful stop and the new replica');
  });

  test('Redis restarted (losing every key) under load: held sessions keep answering, nothing is lost, nothing moves', async (t) => {
    const all = [...replicas.values()];
    const before = await holders();
    const loginsBefore = loginIntervals(await dovecot.logText()).length;
    const statuses = new Map<number, number>();
    let running = true;
    const load = (async () => {
      let i = 0;
      while (running) {
        const r = all[i % all.length]!;
        const path = i % 5 === 0 ? '/v1/sessions' : `/v1/sessions/${name(i % N)}${i % 3 === 0 ? '?refresh=true' : ''}`;
        const res = await call(r, 'GET', path).catch(async () => {
          await sleep(20); // a refused connection answers at once: do not spin on it
          return { status: 0 };
        });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        i += 1;
      }
    })();
    // the load stops whatever happens below: left running after a failure, it spun on refused connections once
    // the replicas were stopped, and the test process never ended
    t.after(async () => {
      running = false;
      await load;
    });
    await sleep(1000);
    await redis.stop();
    await sleep(TTL + 1000);
    await redis.start();
    try {
      await waitFor('every session stored and listed again', 60_000, async () => {
        const stored = await watcher.hlen(`${PREFIX}sessions`).catch(() => 0);
        if (stored !== N) return undefined;
        return allConnected(all[0]!, new Set(all.map(replicaId)));
      });
    } catch (err) {
      // what the replicas said about it, for the post-mortem
      const held = await holders().catch(() => new Map());
      t.diagnostic(`stored ${await watcher.hlen(`${PREFIX}sessions`).catch(() => -1)}, leases ${[...held.values()].filter(Boolean).length}`);
      for (const r of all) t.diagnostic(`${r.name}:\n${r.output().split('\n').filter((l) => /"level":[45]0|redis|resync|written again/.test(l)).slice(-15).join('\n')}`);
      throw err;
    }
    await sleep(TICK);
    running = false;
    await load;
    t.diagnostic(`answers during the outage and after: ${JSON.stringify(Object.fromEntries(statuses))}`);
    assert.deepEqual([...statuses.keys()].filter((s) => s !== 200 && s !== 503), [], 'only 200 and 503 (never 404, never 500)');
    assert.ok((statuses.get(200) ?? 0) > 0);
    assert.deepEqual(await holders(), before, 'no session moved');
    assert.equal(loginIntervals(await dovecot.logText()).length, loginsBefore, 'no session logged in again');
    for (const r of all) {
      const list = await call(r, 'GET', '/v1/sessions');
      assert.equal(list.json.sessions.length, N);
    }
    await assertNoDoubleLogins('after the Redis restart');
  });
});
