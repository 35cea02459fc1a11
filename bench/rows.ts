// The results table and chart of the runner, computed from the measurements.
import type { ChurnResult } from './churn.js';
import type { CreateCost } from './create-cost.js';
import type { DefaultRecovery } from './recovery-defaults.js';
import type { Options } from './lib/options.js';
import { svgChart, type Row } from './lib/report.js';
import { ratio, type Summary } from './lib/stats.js';
import type { Lifecycle } from './lib/targets.js';
import type { Machine } from './lib/util.js';
import type { PoolResult } from './pool.js';

export const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
export const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');

export function rows(create: CreateCost[], pool: PoolResult[], lifecycle: Lifecycle, opts: Options, http: Summary | null): Row[] {
  const out: Row[] = [];
  if (http) out.push({ figure: `HTTP round trip to the service, GET /health, median ms (n=${http.n})`, broker: f2(http.median), baseline: '–', ratio: null, target: '–', met: null });
  const le = (r: number, limit: number) => (Number.isFinite(r) ? r <= limit : null);
  const names: Record<string, string> = { imap: 'IMAP (plain)', pop3: 'POP3 (plain)', imaps: 'IMAP over TLS' };
  // on the emulated link the login dominates, and the target is tighter (issue 17)
  const limit = opts.linkMs ? 1.02 : 1.1;
  const target = `<= ${limit.toFixed(2)}x`;
  for (const c of create) {
    const b = c.variants.broker!.ms, bare = c.variants.bare!.ms;
    const what = c.protocol === 'pop3' ? 'bare node-pop3 connect+USER/PASS+STAT+QUIT' : 'bare imapflow connect+login+logout';
    out.push({ figure: `${names[c.protocol]} create+close, median ms (n=${c.iterations})`, broker: `${f2(b.median)} (+${f2(b.median - bare.median)})`, baseline: `${f2(bare.median)} (${what})`, ratio: ratio(b.median, bare.median), target, met: le(ratio(b.median, bare.median), limit) });
    out.push({ figure: `${names[c.protocol]} create+close, p99 ms`, broker: f2(b.p99), baseline: f2(bare.p99), ratio: ratio(b.p99, bare.p99), target: '–', met: null });
    // the same wire work as the broker: IMAP's STATUS INBOX; POP3's CAPA on a session's first login (LOGIN-DELAY)
    const same = c.variants.bareStatus ? 'bareStatus' : c.variants.bareCapa ? 'bareCapa' : undefined;
    const st = c.variants.bareStatus?.ms;
    if (same) {
      const sw = c.variants[same]!.ms;
      const how = same === 'bareStatus' ? 'bare imapflow connect+login+STATUS INBOX+logout' : 'bare node-pop3 connect+USER/PASS+STAT+CAPA+QUIT';
      out.push({ figure: `${names[c.protocol]} create+close vs the same wire work, median ms`, broker: f2(b.median), baseline: `${f2(sw.median)} (${how})`, ratio: ratio(b.median, sw.median), target, met: le(ratio(b.median, sw.median), limit) });
    }
    // CPU: the service's per create+close against the bare client's per run of the same wire work; the difference is the broker's own
    const sc = c.variants['broker.cpu']?.ms, bc = (same ? c.variants[`${same}.cpu`] : c.variants['bare.cpu'])?.ms;
    if (sc && bc) {
      out.push({ figure: `${names[c.protocol]} broker's own CPU per create+close (service CPU - bare client CPU), mean ms`, broker: `${f2(sc.mean - bc.mean)} (service ${f2(sc.mean)})`, baseline: `${f2(bc.mean)} (bare client CPU, same wire work)`, ratio: ratio(sc.mean, bc.mean), target: '<= 1 ms', met: sc.mean - bc.mean <= 1 });
    }
    const w = c.watch;
    if (w) {
      out.push({ figure: `${names[c.protocol]} create+close with the default watch (INBOX: the create also opens its IDLE connection), median ms`, broker: f2(w.defaultWatch.median), baseline: `${f2(w.noWatch.median)} (broker, watch: [], same run)`, ratio: ratio(w.defaultWatch.median, w.noWatch.median), target: '–', met: null });
      out.push({ figure: `${names[c.protocol]} logins per create+close with the default watch`, broker: String(w.loginsPerRun), baseline: '1 (watch: [])', ratio: null, target: '–', met: null });
    }
    out.push({ figure: `${names[c.protocol]} logins per create+close seen by Dovecot`, broker: String(c.loginsPerRun.broker), baseline: String(c.loginsPerRun.bare), ratio: ratio(c.loginsPerRun.broker, c.loginsPerRun.bare), target: '–', met: null });
    const tr = c.variants.bareServiceTrust?.ms;
    if (tr) {
      out.push({ figure: `${names[c.protocol]} create+close vs bare with the service's CA list, median ms`, broker: f2(b.median), baseline: `${f2(tr.median)} (bare imapflow + STATUS, ca = Node roots + NODE_EXTRA_CA_CERTS + test CA)`, ratio: ratio(b.median, tr.median), target: '–', met: null });
    }
    const tc = c.variants.bareServiceTrustCached?.ms;
    if (tc) {
      out.push({ figure: `${names[c.protocol]}: bare with that CA list in a SecureContext made once, median ms`, broker: f2(tc.median), baseline: `${f2(st?.median ?? Number.NaN)} (bare imapflow + STATUS, ca = test CA only)`, ratio: ratio(tc.median, st?.median ?? Number.NaN), target: '–', met: null });
    }
  }
  for (const p of pool) {
    const b = p.broker, bare = p.bare;
    if (bare) {
      out.push({ figure: `N=${p.n}: create all at concurrency ${p.concurrency}, s`, broker: f2(b.createAll.seconds), baseline: `${f2(bare.createAll.seconds)} (bare imapflow connect+login+STATUS)`, ratio: ratio(b.createAll.seconds, bare.createAll.seconds), target: '–', met: null });
      out.push({ figure: `N=${p.n}: memory per session, RSS delta KiB`, broker: f1(b.rssPerSessionKiB), baseline: `${f1(bare.rssPerSessionKiB)} (bare imapflow, RSS delta)`, ratio: ratio(b.rssPerSessionKiB, bare.rssPerSessionKiB), target: '<= 1.5x', met: le(ratio(b.rssPerSessionKiB, bare.rssPerSessionKiB), 1.5) });
      out.push({ figure: `N=${p.n}: memory per session, JS heap delta after GC KiB`, broker: f1(b.heapPerSessionKiB), baseline: `${f1(bare.heapPerSessionKiB)} (bare imapflow, heapUsed delta)`, ratio: ratio(b.heapPerSessionKiB, bare.heapPerSessionKiB), target: '<= 1.5x', met: le(ratio(b.heapPerSessionKiB, bare.heapPerSessionKiB), 1.5) });
      out.push({ figure: `N=${p.n}: idle CPU with ${opts.keepaliveMs > 0 ? `keepalive every ${opts.keepaliveMs / 1000} s` : 'keepalive off'}, % of one core`, broker: f2(b.idle.cpuPercentOfOneCore), baseline: `${f2(bare.idle.cpuPercentOfOneCore)} (bare imapflow, ${opts.keepaliveMs > 0 ? 'STATUS INBOX at the same interval' : 'no keepalive'})`, ratio: ratio(b.idle.cpuPercentOfOneCore, bare.idle.cpuPercentOfOneCore), target: '< 5% of one core', met: b.idle.cpuPercentOfOneCore < 5 });
    }
    const ib = p.inspect.broker, ia = p.inspect.bare;
    out.push({ figure: `N=${p.n}: inspect throughput, req/s (${ib.connections} conns, ${p.inspect.bodyBytes} B JSON)`, broker: f1(ib.rps), baseline: `${f1(ia.rps)} (bare Fastify route, same JSON)`, ratio: ratio(ib.rps, ia.rps), target: '>= 0.8x', met: Number.isFinite(ratio(ib.rps, ia.rps)) ? ratio(ib.rps, ia.rps) >= 0.8 : null });
    if (ib.serverCpuUsPerRequest !== null && ia.serverCpuUsPerRequest !== null) {
      out.push({ figure: `N=${p.n}: inspect server CPU per request, µs (server at ${f1(ib.serverCpuPercent ?? Number.NaN)}% / ${f1(ia.serverCpuPercent ?? Number.NaN)}% of a core)`, broker: f1(ib.serverCpuUsPerRequest), baseline: `${f1(ia.serverCpuUsPerRequest)} (bare Fastify route)`, ratio: ratio(ib.serverCpuUsPerRequest, ia.serverCpuUsPerRequest), target: '–', met: null });
    }
    out.push({ figure: `N=${p.n}: inspect latency p50 / p99, ms`, broker: `${ib.latencyMs.p50} / ${ib.latencyMs.p99}`, baseline: `${ia.latencyMs.p50} / ${ia.latencyMs.p99}`, ratio: ratio(ib.latencyMs.p99, ia.latencyMs.p99), target: '–', met: null });
    if (p.inspectDefaultAge) {
      const d = p.inspectDefaultAge;
      out.push({ figure: `N=${d.n}: inspect throughput with MSB_SUMMARY_MAX_AGE_MS=${d.maxAgeMs} (live STATUS), req/s`, broker: f1(d.broker.rps), baseline: `${f1(d.bare.rps)} (bare Fastify route)`, ratio: ratio(d.broker.rps, d.bare.rps), target: '(>= 0.8x)', met: null });
    }
    const r = p.recovery;
    if (r && lifecycle.reconnectRate) {
      const ideal = r.n / r.capPerSec;
      out.push({ figure: `N=${p.n}: recovery after a server restart, s`, broker: r.recoveryS === null ? `not complete (${r.connectedAtEnd} connected)` : f2(r.recoveryS), baseline: `${f2(ideal)} (N / cap ${r.capPerSec}/s)`, ratio: r.recoveryS === null ? null : ratio(r.recoveryS, ideal), target: '< 60 s', met: r.recoveryS !== null && r.recoveryS < 60 });
      const median = r.medianLoginsPerSec ?? Number.NaN;
      out.push({ figure: `N=${p.n}: login rate Dovecot saw during recovery, peak (median) per second`, broker: `${r.peakLoginsPerSec} (${Number.isFinite(median) ? median : '–'})`, baseline: `${r.capPerSec} (MSB_RECONNECT_RATE_PER_SEC: the host's start rate, adaptive since issue 17)`, ratio: ratio(r.peakLoginsPerSec, r.capPerSec), target: '–', met: null });
    } else if (r) {
      out.push({ figure: `N=${p.n}: recovery after a server restart, s`, broker: `not measured: the service build has no MSB_RECONNECT_RATE_PER_SEC; after 15 s: ${JSON.stringify(r.statesAtEnd)}`, baseline: `${f2(r.n / r.capPerSec)} (N / cap)`, ratio: null, target: '< 60 s', met: null });
    }
  }
  const maxHeld = Math.max(0, ...pool.map((p) => p.n));
  if (pool.length) out.push({ figure: 'most sessions held in one service process (this run)', broker: String(maxHeld), baseline: '–', ratio: null, target: '10,000', met: opts.quick ? null : maxHeld >= 10_000 });
  return out;
}

export function chart(pool: PoolResult[], m: Machine, opts: Options, date: string): string {
  const pts = (f: (p: PoolResult) => number | undefined) => pool.map((p) => ({ x: p.n, y: f(p) ?? Number.NaN }));
  // an RSS delta that is not positive (a GC between the two readings, at small N) is the allocator's noise: not drawn
  const rss = (v: number | undefined) => (v !== undefined && v > 0 ? v : undefined);
  return svgChart(
    [
      {
        title: 'Memory per held IMAP session',
        yLabel: 'KiB per session',
        series: [
          { label: 'broker RSS', color: '#1f77b4', points: pts((p) => rss(p.broker.rssPerSessionKiB)) },
          { label: 'bare imapflow RSS', color: '#ff7f0e', points: pts((p) => rss(p.bare?.rssPerSessionKiB)) },
          { label: 'broker heap (after GC)', color: '#1f77b4', dashed: true, points: pts((p) => p.broker.heapPerSessionKiB) },
          { label: 'bare imapflow heap (after GC)', color: '#ff7f0e', dashed: true, points: pts((p) => p.bare?.heapPerSessionKiB) },
        ],
      },
      {
        title: `Idle CPU, keepalive every ${opts.keepaliveMs / 1000} s`,
        yLabel: '% of one core',
        series: [
          { label: 'broker', color: '#1f77b4', points: pts((p) => p.broker.idle.cpuPercentOfOneCore) },
          { label: 'bare imapflow, same STATUS', color: '#ff7f0e', points: pts((p) => p.bare?.idle.cpuPercentOfOneCore) },
        ],
        hline: { y: 5, label: 'target 5 %' },
      },
      {
        title: 'Recovery after a Dovecot restart',
        yLabel: 'seconds until all connected',
        series: [
          { label: `N / ${opts.ratePerSec} per s (round 1's fixed cap)`, color: '#2ca02c', dashed: true, points: pts((p) => p.n / opts.ratePerSec) },
          { label: 'broker', color: '#1f77b4', points: pts((p) => p.recovery?.recoveryS ?? undefined) },
        ],
        hline: { y: 60, label: 'target 60 s' },
      },
    ],
    'sessions held (N)',
    `mail-session-broker bench${opts.quick ? ' --quick' : ''}, ${date.slice(0, 10)}; ${m.cores} x ${m.cpu}, ${m.memoryGiB} GiB, Node ${m.node}, Dovecot ${m.dovecot.split(' ')[0]}`,
  );
}

export function churnRows(c: ChurnResult): Row[] {
  return [
    { figure: `churn: ${c.cycles} create/refresh/close cycles (IMAP+POP3, 1 in ${c.wrongPasswordEvery} wrong password, ${c.concurrency} at once), heap after GC at the middle -> end, MiB`, broker: `${f2(c.heapMidMiB)} -> ${f2(c.heapEndMiB)} (${c.secondHalfGrowthMiB >= 0 ? '+' : ''}${f2(c.secondHalfGrowthMiB)})`, baseline: '–', ratio: null, target: '< 1 MiB growth', met: Math.abs(c.secondHalfGrowthMiB) < 1 },
    { figure: 'churn: heap slope after GC, first / second half, MiB per 1000 cycles', broker: `${f2(c.firstHalfSlopeMiBPer1000)} / ${f2(c.secondHalfSlopeMiBPer1000)}`, baseline: '–', ratio: null, target: '–', met: null },
  ];
}

/** EmailEngine 2.79, measured side by side on one Dovecot over TLS (issue 17). */
const PEER_RECOVERY_S: Record<number, number> = { 1000: 9.4, 2000: 14 };

export function recoveryDefaultRows(rs: DefaultRecovery[]): Row[] {
  return rs.flatMap((r) => {
    const peer = PEER_RECOVERY_S[r.n];
    return [
      { figure: `N=${r.n} over TLS, default reconnect settings: recovery after a server restart, s`, broker: r.recoveryS === null ? `not complete (${r.connectedAtEnd} connected)` : f2(r.recoveryS), baseline: peer ? `${peer} (EmailEngine 2.79, issue 17)` : '–', ratio: peer && r.recoveryS !== null ? ratio(r.recoveryS, peer) : null, target: peer ? `< ${peer} s` : '–', met: peer ? r.recoveryS !== null && r.recoveryS < peer : null },
      { figure: `N=${r.n} over TLS, defaults: logins after the restart / other imap-login lines / sessions failed; peak (median) logins per s`, broker: `${r.loginsAfterRestart} / ${r.otherLoginLines} / ${r.failedAtEnd}; ${r.peakLoginsPerSec} (${Number.isFinite(r.medianLoginsPerSec) ? r.medianLoginsPerSec : '–'})`, baseline: `${2 * r.n} / 0 / 0 (a session and its INBOX watch: two logins each)`, ratio: null, target: 'no login failure', met: r.failedAtEnd === 0 && r.loginsAfterRestart <= 2 * r.n },
    ];
  });
}
