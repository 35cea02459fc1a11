// Replicas on Redis (issue #16), side by side in one run, each figure against its baseline:
//   1. inspect through a replica that does not hold the session vs through the one that does: with the
//      cached summary (the other replica answers from the Redis directory) and with ?refresh=true (it
//      forwards to the holder, which reads the mailbox live): added latency and throughput ratio;
//   2. failover: N sessions on 3 replicas, kill -9 of the one holding the most; time until every one
//      is connected again on the others, against its floor (lease TTL + safety wait + a tick + logins);
//   3. memory and idle CPU per held session: one service with the Redis store vs the in-memory default.
// The services are `node dist/server.js` (bench/lib/children.ts), Redis is Debian's redis-server
// (test/harness/redis.ts), Dovecot the benchmark's own. Reported, never asserted.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { DovecotServer } from '../test/harness/dovecot.js';
import { startRedis, type RedisServer } from '../test/harness/redis.js';
import { startService, type MemoryUsage, type Service } from './lib/children.js';
import { load, type LoadResult } from './lib/load.js';
import { sampleProc } from './lib/proc.js';
import type { Row } from './lib/report.js';
import { ratio, round } from './lib/stats.js';

export interface ReplicaBenchOptions {
  quick: boolean;
  /** Sessions of the failover measurement (3 replicas). */
  failoverN: number;
  /** Sessions of the inspect and memory measurements. */
  n: number;
  connections: number;
  inspectS: number;
  inspectRounds: number;
  idleS: number;
  settleMs: number;
  /** MSB_RECONNECT_RATE_PER_SEC: the rate each replica starts at per mail host (adaptive since issue 17). */
  ratePerSec: number;
  /** MSB_RECONNECT_RATE_MAX_PER_SEC (its default; the services do not set it): the fleet's cap per mail host, in Redis. */
  fleetCapPerSec: number;
  leaseTtlMs: number;
}

export function replicaOptions(quick: boolean, base: { connections: number; inspectS: number; idleS: number; settleMs: number; ratePerSec: number }): ReplicaBenchOptions {
  return quick
    ? { quick, failoverN: 300, n: 200, connections: base.connections, inspectS: base.inspectS, inspectRounds: 1, idleS: base.idleS, settleMs: base.settleMs, ratePerSec: base.ratePerSec, fleetCapPerSec: 400, leaseTtlMs: 6000 }
    : { quick, failoverN: 3000, n: 2000, connections: base.connections, inspectS: base.inspectS, inspectRounds: 3, idleS: base.idleS, settleMs: base.settleMs, ratePerSec: base.ratePerSec, fleetCapPerSec: 400, leaseTtlMs: 15_000 };
}

export interface ReplicaBenchContext {
  dovecot: DovecotServer;
  tmp: string;
  users: readonly [string, string][];
  /** The benchmark's service settings (keys, limits, outbound policy) for n sessions, plus `extra`. */
  serviceEnv(n: number, extra: Record<string, string>): Record<string, string>;
  headers: Record<string, string>;
  log(message: string): void;
}

interface Side {
  load: LoadResult;
  /** CPU of every service process during the run, per request (µs). */
  cpuUsPerRequest: number;
}

export interface ReplicaBenchResult {
  options: ReplicaBenchOptions;
  inspect: { cached: { owner: Side; other: Side }; live: { owner: Side; other: Side } } | null;
  failover: {
    n: number;
    replicas: number;
    lost: number;
    ttlMs: number;
    floorS: number;
    seconds: number | null;
    moved: number;
  } | null;
  memory: {
    n: number;
    memory: { rssPerSessionKiB: number; heapPerSessionKiB: number; idleCpuPercent: number };
    redis: { rssPerSessionKiB: number; heapPerSessionKiB: number; idleCpuPercent: number; redisBytesPerSession: number };
  } | null;
  errors: string[];
}

const KiB = 1024;

function body(name: string, port: number, [username, password]: readonly [string, string]) {
  return { name, type: 'imap', host: '127.0.0.1', port, secure: false, tls: { starttls: 'off' }, username, password, idleTimeoutMs: 0 };
}

async function createAll(services: Service[], names: string[], ctx: ReplicaBenchContext, concurrency = 50): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < names.length) {
        const i = next++;
        await services[i % services.length]!.http.expect('POST', '/v1/sessions', [201], body(names[i]!, ctx.dovecot.ports.imap, ctx.users[i % ctx.users.length]!));
      }
    }),
  );
}

/** Which replica id holds each session (from the leases). */
async function holders(redis: Redis, prefix: string, names: string[]): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  for (let i = 0; i < names.length; i += 1000) {
    const chunk = names.slice(i, i + 1000);
    const values = await redis.mget(chunk.map((n) => `${prefix}lease:bench/${n}`));
    chunk.forEach((n, k) => {
      const v = values[k];
      const h = v ? v.slice(0, v.lastIndexOf('|')) : undefined;
      out.set(n, h === '-' ? undefined : h);
    });
  }
  return out;
}

/** The replica id a service logged at start (component cluster). */
async function idOf(svc: Service, redis: Redis, prefix: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const members = await redis.smembers(`${prefix}replicas`);
    for (const id of members) {
      const beat = await redis.get(`${prefix}replica:${id}`);
      if (beat && JSON.parse(beat).url.endsWith(`:${svc.port}`)) return id;
    }
    await sleep(100);
  }
  throw new Error(`replica on port ${svc.port} never showed its heartbeat`);
}

async function measured(services: Service[], port: number, paths: string[], opts: ReplicaBenchOptions, headers: Record<string, string>): Promise<Side> {
  const before = services.map((s) => sampleProc(s.child.pid).cpuS);
  const result = await load(port, paths, opts.inspectS, opts.connections, { headers });
  const cpu = services.reduce((acc, s, i) => acc + sampleProc(s.child.pid).cpuS - before[i]!, 0);
  if (result.non2xx || result.errors) throw new Error(`inspect load: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return { load: result, cpuUsPerRequest: result.requests ? (cpu * 1e6) / result.requests : Number.NaN };
}

function median(sides: Side[]): Side {
  return [...sides].sort((a, b) => a.load.rps - b.load.rps)[Math.floor((sides.length - 1) / 2)]!;
}

/** Inspect through the holder vs through the other replica (2 replicas), cached and live. */
async function inspectPhase(redisServer: RedisServer, ctx: ReplicaBenchContext, opts: ReplicaBenchOptions): Promise<ReplicaBenchResult['inspect']> {
  const out: Record<'cached' | 'live', { owner: Side; other: Side }> = {} as never;
  for (const variant of ['cached', 'live'] as const) {
    // a fleet of its own per variant; the benchmark's MSB_SUMMARY_MAX_AGE_MS is an hour: a cached inspect never reads the mailbox
    const prefix = `bi${randomBytes(3).toString('hex')}:`;
    const extra = sharedEnv(redisServer, prefix, opts);
    const services = [await startService(`replica-a-${variant}`, ctx.tmp, ctx.serviceEnv(opts.n, extra), { maxSockets: 64, headers: ctx.headers })];
    services.push(await startService(`replica-b-${variant}`, ctx.tmp, ctx.serviceEnv(opts.n, extra), { maxSockets: 64, headers: ctx.headers }));
    const redis = new Redis(redisServer.url);
    try {
      await sleep((2 * opts.leaseTtlMs) / 3 + 500);
      const names = Array.from({ length: opts.n }, (_, i) => `i${variant}${i}`);
      await createAll(services, names, ctx);
      await sleep(opts.settleMs);
      const idA = await idOf(services[0]!, redis, prefix);
      const held = await holders(redis, prefix, names);
      const onA = names.filter((n) => held.get(n) === idA);
      const query = variant === 'live' ? '?refresh=true' : '';
      const paths = onA.map((n) => `/v1/sessions/${n}${query}`);
      ctx.log(`  replicas, inspect (${variant}): ${onA.length} of ${names.length} sessions on replica A; ${opts.inspectRounds} rounds of ${opts.inspectS} s through A, then B`);
      await load(services[0]!.port, paths, 1, opts.connections, { headers: ctx.headers });
      await load(services[1]!.port, paths, 1, opts.connections, { headers: ctx.headers });
      const owner: Side[] = [];
      const other: Side[] = [];
      for (let r = 0; r < opts.inspectRounds; r++) {
        owner.push(await measured(services, services[0]!.port, paths, opts, ctx.headers));
        other.push(await measured(services, services[1]!.port, paths, opts, ctx.headers));
      }
      out[variant] = { owner: median(owner), other: median(other) };
      ctx.log(`    holder ${owner.map((s) => s.load.rps.toFixed(0)).join('/')} req/s, other replica ${other.map((s) => s.load.rps.toFixed(0)).join('/')} req/s`);
    } finally {
      redis.disconnect();
      for (const s of services) await s.stop();
    }
  }
  return out;
}

function sharedEnv(redis: RedisServer, prefix: string, opts: ReplicaBenchOptions): Record<string, string> {
  return {
    MSB_REDIS_URL: redis.url,
    MSB_REDIS_PREFIX: prefix,
    MSB_SESSION_STORE_KEY: randomBytes(32).toString('base64'),
    MSB_REPLICA_SECRET: randomBytes(24).toString('base64'),
    MSB_LEASE_TTL_MS: String(opts.leaseTtlMs),
  };
}

/** N sessions on 3 replicas; kill -9 of the one holding the most; seconds until every one is connected again. */
async function failoverPhase(redisServer: RedisServer, ctx: ReplicaBenchContext, opts: ReplicaBenchOptions): Promise<ReplicaBenchResult['failover']> {
  const prefix = `bf${randomBytes(3).toString('hex')}:`;
  const extra = sharedEnv(redisServer, prefix, opts);
  const n = opts.failoverN;
  const services: Service[] = [];
  const redis = new Redis(redisServer.url);
  try {
    for (const label of ['1', '2', '3']) services.push(await startService(`failover-${label}`, ctx.tmp, ctx.serviceEnv(n, extra), { maxSockets: 64, headers: ctx.headers }));
    await sleep((2 * opts.leaseTtlMs) / 3 + 500);
    const names = Array.from({ length: n }, (_, i) => `f${i}`);
    ctx.log(`  replicas, failover: creating ${n} sessions on 3 replicas`);
    await createAll(services, names, ctx);
    await sleep(opts.settleMs);
    const ids = await Promise.all(services.map((s) => idOf(s, redis, prefix)));
    const before = await holders(redis, prefix, names);
    const counts = ids.map((id) => [...before.values()].filter((h) => h === id).length);
    const victim = counts.indexOf(Math.max(...counts));
    const lost = counts[victim]!;
    const survivors = services.filter((_, i) => i !== victim);
    const survivorIds = new Set(ids.filter((_, i) => i !== victim));
    ctx.log(`  replicas, failover: sessions per replica ${counts.join(', ')}; kill -9 of the one with ${lost}`);
    const killedAt = performance.now();
    process.kill(services[victim]!.child.pid, 'SIGKILL');
    const tick = opts.leaseTtlMs / 3;
    // the logins go no faster than the fleet's cap of the one mail host
    const floorS = (opts.leaseTtlMs + opts.leaseTtlMs / 5 + lost * (1000 / opts.fleetCapPerSec)) / 1000;
    const budgetMs = 3 * (opts.leaseTtlMs + tick) + (3 * 1000 * lost) / opts.ratePerSec + 30_000;
    let seconds: number | null = null;
    while (performance.now() - killedAt < budgetMs) {
      const now = await holders(redis, prefix, names);
      if ([...now.values()].every((h) => h !== undefined && survivorIds.has(h))) {
        const list = JSON.parse((await survivors[0]!.http.expect('GET', '/v1/sessions', [200])).text) as { sessions: { state: string }[] };
        if (list.sessions.filter((s) => s.state === 'connected').length === n) {
          seconds = (performance.now() - killedAt) / 1000;
          break;
        }
      }
      await sleep(250);
    }
    const after = await holders(redis, prefix, names);
    const moved = names.filter((nm) => after.get(nm) !== before.get(nm)).length;
    ctx.log(`  replicas, failover: ${seconds === null ? 'NOT all back within the budget' : `${seconds.toFixed(1)} s`} (floor ${floorS.toFixed(1)} s: TTL + safety wait + logins at the fleet's cap of ${opts.fleetCapPerSec}/s, plus up to a tick of ${(tick / 1000).toFixed(1)} s); ${moved} sessions moved`);
    return { n, replicas: 3, lost, ttlMs: opts.leaseTtlMs, floorS: round(floorS, 2), seconds: seconds === null ? null : round(seconds, 2), moved };
  } finally {
    redis.disconnect();
    for (const s of services) await s.stop().catch(() => {});
  }
}

/** Memory and idle CPU per held session: one service with Redis vs the in-memory default, same sessions. */
async function memoryPhase(redisServer: RedisServer, ctx: ReplicaBenchContext, opts: ReplicaBenchOptions): Promise<ReplicaBenchResult['memory']> {
  const n = opts.n;
  const measure = async (label: string, extra: Record<string, string>, redis?: Redis) => {
    const svc = await startService(`memory-${label}`, ctx.tmp, ctx.serviceEnv(n, extra), { maxSockets: 64, headers: ctx.headers });
    try {
      // the code paths of create and close run once before the baseline is taken (as in the pool phase)
      for (let i = 0; i < 20; i++) {
        await svc.http.expect('POST', '/v1/sessions', [201], body(`warm${i}`, ctx.dovecot.ports.imap, ctx.users[i % ctx.users.length]!));
        await svc.http.expect('DELETE', `/v1/sessions/warm${i}`, [204]);
      }
      await sleep(opts.settleMs);
      const usedBefore = redis ? Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]) : 0;
      // RSS after the probe's full GC, so that garbage of the start-up does not count
      const baseMem = await svc.memory();
      const base = { rss: sampleProc(svc.child.pid).rss, mem: baseMem };
      await createAll([svc], Array.from({ length: n }, (_, i) => `m${i}`), ctx);
      await sleep(opts.settleMs);
      const heldMem: MemoryUsage = await svc.memory();
      const held = { rss: sampleProc(svc.child.pid).rss, mem: heldMem };
      const a = sampleProc(svc.child.pid);
      await sleep(opts.idleS * 1000);
      const b = sampleProc(svc.child.pid);
      const usedAfter = redis ? Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]) : 0;
      return {
        rssPerSessionKiB: round((held.rss - base.rss) / n / KiB, 2),
        heapPerSessionKiB: round((held.mem.heapUsed - base.mem.heapUsed) / n / KiB, 2),
        idleCpuPercent: round(((b.cpuS - a.cpuS) / ((b.at - a.at) / 1000)) * 100, 2),
        redisBytesPerSession: round((usedAfter - usedBefore) / n, 0),
      };
    } finally {
      await svc.stop();
    }
  };
  ctx.log(`  replicas, memory: ${n} sessions in one service, in memory, then with Redis; idle CPU over ${opts.idleS} s each`);
  const { redisBytesPerSession: _unused, ...memory } = await measure('in-memory', {});
  const redis = new Redis(redisServer.url);
  try {
    const withRedis = await measure('redis', sharedEnv(redisServer, `bm${randomBytes(3).toString('hex')}:`, opts), redis);
    ctx.log(`    RSS per session ${memory.rssPerSessionKiB} KiB in memory, ${withRedis.rssPerSessionKiB} KiB with Redis (and ${withRedis.redisBytesPerSession} bytes in Redis); idle CPU ${memory.idleCpuPercent}% vs ${withRedis.idleCpuPercent}%`);
    return { n, memory, redis: withRedis };
  } finally {
    redis.disconnect();
  }
}

export async function replicaBench(ctx: ReplicaBenchContext, opts: ReplicaBenchOptions): Promise<ReplicaBenchResult> {
  const result: ReplicaBenchResult = { options: opts, inspect: null, failover: null, memory: null, errors: [] };
  ctx.log(`replicas on Redis: inspect and memory with ${opts.n} sessions, failover of ${opts.failoverN}`);
  const redis = await startRedis();
  try {
    for (const [name, phase] of [
      ['inspect', async () => (result.inspect = await inspectPhase(redis, ctx, opts))],
      ['failover', async () => (result.failover = await failoverPhase(redis, ctx, opts))],
      ['memory', async () => (result.memory = await memoryPhase(redis, ctx, opts))],
    ] as const) {
      try {
        await phase();
      } catch (err) {
        result.errors.push(`replicas, ${name}: ${(err as Error).stack ?? String(err)}`);
        ctx.log(`  replicas, ${name} FAILED: ${(err as Error).message}`);
      }
    }
    if (result.failover && result.failover.seconds === null) result.errors.push(`replicas, failover: not every session was connected again within the budget`);
  } finally {
    await redis.close();
  }
  return result;
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');

/** The rows of the results table. */
export function replicaRows(r: ReplicaBenchResult | null | undefined): Row[] {
  if (!r) return [];
  const out: Row[] = [];
  if (r.inspect) {
    for (const [variant, what] of [['cached', 'cached summary: the other replica answers from the Redis directory'], ['live', '?refresh=true: the other replica forwards to the holder, which reads the mailbox']] as const) {
      const { owner, other } = r.inspect[variant];
      out.push({
        figure: `replicas: inspect through the other replica vs the holder, ${what}; req/s`,
        broker: other.load.rps.toFixed(0),
        baseline: `${owner.load.rps.toFixed(0)} (through the holder)`,
        ratio: ratio(other.load.rps, owner.load.rps),
        target: '–',
        met: null,
      });
      out.push({
        figure: `replicas: the same, latency p50 / p99 ms (${r.options.connections} connections), CPU µs per request (all replicas)`,
        broker: `${f2(other.load.latencyMs.p50)} / ${f2(other.load.latencyMs.p99)}; ${other.cpuUsPerRequest.toFixed(0)} µs`,
        baseline: `${f2(owner.load.latencyMs.p50)} / ${f2(owner.load.latencyMs.p99)}; ${owner.cpuUsPerRequest.toFixed(0)} µs`,
        ratio: ratio(other.load.latencyMs.p50, owner.load.latencyMs.p50),
        target: '–',
        met: null,
      });
    }
  }
  if (r.failover) {
    const f = r.failover;
    out.push({
      figure: `replicas: failover of ${f.lost} sessions (of ${f.n} on ${f.replicas} replicas) after kill -9, s until all connected again (MSB_LEASE_TTL_MS ${f.ttlMs})`,
      broker: f.seconds === null ? 'not all back' : f2(f.seconds),
      baseline: `${f2(f.floorS)} (TTL + TTL/5 + logins at the fleet's cap per host)`,
      ratio: f.seconds === null ? null : ratio(f.seconds, f.floorS),
      target: '< TTL + TTL/5 + a tick + logins',
      met: f.seconds === null ? false : f.seconds <= f.floorS + f.ttlMs / 3000 + 5,
    });
  }
  if (r.memory) {
    const { memory: mem, redis } = r.memory;
    out.push({
      figure: `replicas: RSS per held session with the Redis store vs in memory (N=${r.memory.n}), KiB`,
      broker: `${f2(redis.rssPerSessionKiB)} (+${redis.redisBytesPerSession} bytes in Redis)`,
      baseline: `${f2(mem.rssPerSessionKiB)} (in memory)`,
      ratio: ratio(redis.rssPerSessionKiB, mem.rssPerSessionKiB),
      target: '–',
      met: null,
    });
    out.push({
      figure: `replicas: JS heap per held session, Redis store vs in memory, KiB`,
      broker: f2(redis.heapPerSessionKiB),
      baseline: f2(mem.heapPerSessionKiB),
      ratio: ratio(redis.heapPerSessionKiB, mem.heapPerSessionKiB),
      target: '–',
      met: null,
    });
    out.push({
      figure: `replicas: idle CPU with N=${r.memory.n} sessions, Redis store vs in memory, % of a core`,
      broker: f2(redis.idleCpuPercent),
      baseline: f2(mem.idleCpuPercent),
      ratio: ratio(redis.idleCpuPercent, mem.idleCpuPercent),
      target: '–',
      met: null,
    });
  }
  return out;
}
