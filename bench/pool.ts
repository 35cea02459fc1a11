// 2-3. Pool scale and inspect: N idle IMAP sessions in one service process vs bare imapflow holding N
// connections in another (memory per session, time to create all N, idle CPU with keepalive); inspect
// throughput while they are held vs a bare Fastify route returning the same JSON; then recovery (recovery.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import type { DovecotServer } from '../test/harness/dovecot.js';
import { startHolder, startService, type MemoryUsage, type Service } from './lib/children.js';
import type { LoadResult } from './lib/load.js';
import { measureInspect } from './inspect.js';
import type { Options } from './lib/options.js';
import { sampleProc, type ProcSample } from './lib/proc.js';
import { round, summarize, type Summary } from './lib/stats.js';
import { AUTH, createMany, HOST, imapBody, POOL_USERS, serviceEnv, type Lifecycle } from './lib/targets.js';
import { KiB, log, within } from './lib/util.js';
import { listStates, measureRecovery, type Recovery } from './recovery.js';

export interface Side {
  createAll: { seconds: number; perSecond: number; latencyMs: Summary };
  base: { rss: number; mem: MemoryUsage };
  held: { rss: number; mem: MemoryUsage };
  rssPerSessionKiB: number;
  heapPerSessionKiB: number;
  /** heapUsed + external + arrayBuffers delta per session (after GC). */
  jsAndBuffersPerSessionKiB: number;
  idle: { seconds: number; cpuPercentOfOneCore: number; cpuSecondsPerMinute: number };
}

export interface PoolResult {
  n: number;
  concurrency: number;
  broker: Side;
  bare: Side | null;
  /** broker and bare: the median of the alternating rounds (all in `rounds`). */
  inspect: { broker: LoadResult; bare: LoadResult; bodyBytes: number; rounds: { broker: LoadResult[]; bare: LoadResult[] } };
  inspectDefaultAge: { n: number; broker: LoadResult; bare: LoadResult; maxAgeMs: number } | null;
  recovery: Recovery | null;
}

export function memDelta(base: { rss: number; mem: MemoryUsage }, held: { rss: number; mem: MemoryUsage }, n: number) {
  const js = (m: MemoryUsage) => m.heapUsed + m.external + m.arrayBuffers;
  return {
    rssPerSessionKiB: (held.rss - base.rss) / n / KiB,
    heapPerSessionKiB: (held.mem.heapUsed - base.mem.heapUsed) / n / KiB,
    jsAndBuffersPerSessionKiB: (js(held.mem) - js(base.mem)) / n / KiB,
  };
}

export async function idleCpu(pid: number, seconds: number): Promise<Side['idle']> {
  const a: ProcSample = sampleProc(pid);
  await sleep(seconds * 1000);
  const b = sampleProc(pid);
  const wall = (b.at - a.at) / 1000;
  const pct = ((b.cpuS - a.cpuS) / wall) * 100;
  return { seconds: round(wall, 1), cpuPercentOfOneCore: pct, cpuSecondsPerMinute: (pct / 100) * 60 };
}




export async function poolPhase(n: number, first: boolean, dovecot: DovecotServer, tmp: string, opts: Options, lifecycle: Lifecycle, errors: string[]): Promise<PoolResult> {
  const port = dovecot.ports.imap;
  const C = opts.concurrency;
  const svc = await startService(`pool-${n}`, tmp, serviceEnv(n, opts), { maxSockets: C + 8, cpuProfDir: opts.cpuProfDir, headers: AUTH });
  let broker: Side;
  let inspect: PoolResult['inspect'];
  let inspectDefaultAge: PoolResult['inspectDefaultAge'] = null;
  let recovery: Recovery | null = null;
  try {
    // warm-up: the code paths of create and close run before the baseline is taken
    for (let i = 0; i < 20; i++) {
      const [user, pass] = POOL_USERS[i % POOL_USERS.length]!;
      await svc.http.expect('POST', '/v1/sessions', [201], imapBody(`warm${i}`, port, user, pass));
      await svc.http.expect('DELETE', `/v1/sessions/warm${i}`, [204]);
    }
    await sleep(opts.settleMs);
    const base = { rss: sampleProc(svc.child.pid).rss, mem: await svc.memory() };
    log(`pool N=${n}: service RSS ${(base.rss / 2 ** 20).toFixed(1)} MiB before; creating ${n} sessions at concurrency ${C}`);
    const created = await within(createMany(svc, 0, n, C, port), 30 * 60_000, `creating ${n} sessions`);
    const ready = JSON.parse((await svc.http.expect('GET', '/ready', [200])).text) as { sessions?: number };
    if (ready.sessions !== n) throw new Error(`the service reports ${ready.sessions} sessions, expected ${n}`);
    await sleep(opts.settleMs);
    const held = { rss: sampleProc(svc.child.pid).rss, mem: await svc.memory() };
    log(`  created in ${(created.ms / 1000).toFixed(1)} s; RSS ${(held.rss / 2 ** 20).toFixed(1)} MiB; idle CPU for ${opts.idleS} s`);
    const idle = await idleCpu(svc.child.pid, opts.idleS);
    const afterIdle = await listStates(svc);
    if ((afterIdle.connected ?? 0) !== n) log(`  warning: after the idle window ${JSON.stringify(afterIdle)}`);
    broker = {
      createAll: { seconds: created.ms / 1000, perSecond: n / (created.ms / 1000), latencyMs: summarize(created.latencies) },
      base,
      held,
      ...memDelta(base, held, n),
      idle,
    };

    // 3. inspect throughput (inspect.ts), with the default summary age in a service of its own for the first N
    const ins = await measureInspect(svc, n, first, dovecot.ports.imap, tmp, opts);
    inspect = ins.inspect;
    inspectDefaultAge = ins.inspectDefaultAge;

    // 4. recovery after a mail-server restart
    log(`  recovery: restarting Dovecot with ${n} sessions held (cap ${opts.ratePerSec}/s${lifecycle.reconnectRate ? '' : ', NOT supported by this service build'})`);
    recovery = await measureRecovery(svc, dovecot, n, opts, lifecycle.reconnectRate);
    log(`  recovery: ${recovery.recoveryS === null ? `not all back (${JSON.stringify(recovery.statesAtEnd)})` : `${recovery.recoveryS} s`}, peak ${recovery.peakLoginsPerSec} logins/s`);
    // a failed recovery fails the run, but the other figures of this N are still reported
    if (recovery.recoveryS === null && lifecycle.reconnectRate) errors.push(`recovery of ${n} sessions did not complete within its time budget: ${JSON.stringify(recovery.statesAtEnd)}`);
    svc.child.assertAlive();
  } finally {
    await svc.stop();
  }

  // the baseline: bare imapflow holding N connections in another process
  log(`  bare imapflow holder: opening ${n} connections at concurrency ${C}`);
  const holder = await startHolder(tmp, String(n));
  let bareSide: Side;
  try {
    const target = { host: HOST, port, secure: false, users: POOL_USERS, status: true, concurrency: C };
    const warm = await holder.call<{ failures: number; firstError?: string }>({ cmd: 'open', ...target, n: 20 });
    if (warm.failures) throw new Error(`holder warm-up: ${warm.firstError}`);
    await holder.call({ cmd: 'closeAll' });
    await sleep(opts.settleMs);
    const base = { rss: sampleProc(holder.child.pid).rss, mem: await holder.call<MemoryUsage>({ cmd: 'mem' }) };
    const opened = await holder.call<{ ms: number; opened: number; failures: number; firstError?: string; latencies: number[] }>({ cmd: 'open', ...target, n, keepaliveMs: opts.keepaliveMs }, 30 * 60_000);
    if (opened.failures) throw new Error(`bare imapflow: ${opened.failures} of ${n} connections failed: ${opened.firstError}`);
    await sleep(opts.settleMs);
    const held = { rss: sampleProc(holder.child.pid).rss, mem: await holder.call<MemoryUsage>({ cmd: 'mem' }) };
    const idle = await idleCpu(holder.child.pid, opts.idleS);
    bareSide = {
      createAll: { seconds: opened.ms / 1000, perSecond: n / (opened.ms / 1000), latencyMs: summarize(opened.latencies) },
      base,
      held,
      ...memDelta(base, held, n),
      idle,
    };
    log(`  bare: opened in ${(opened.ms / 1000).toFixed(1)} s, RSS/conn ${bareSide.rssPerSessionKiB.toFixed(1)} KiB (broker ${broker.rssPerSessionKiB.toFixed(1)} KiB)`);
    await holder.call({ cmd: 'closeAll' }, 120_000);
  } finally {
    await holder.stop();
  }
  return { n, concurrency: C, broker, bare: bareSide, inspect, inspectDefaultAge, recovery };
}
