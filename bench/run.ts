// Benchmarks of issues #7 and #17: what a session costs, how many one process holds, and how the broker compares
// with the bare libraries, each figure against a baseline measured in the same run.
//   npm run bench                 full run (about 25 minutes): bench/results/latest.{json,md,svg}
//   npm run bench -- --quick      CI (about 3 minutes): bench/results/quick.* (not tracked)
//   npm run bench -- --only=create,pool,read   a part of it
//   npm run bench -- --quick --no-replicas     all but the replica part (CI: .ci/run); --replicas-only: only it
//   npm run bench -- --link=10ms  create cost over an emulated link (Toxiproxy, 10 ms each way, installed by
//                                 bench/lib/install-toxiproxy.sh): bench/results/link-10ms.*
// It builds the service, starts its own Dovecot tuned for thousands of connections (test/harness, scale: true)
// and the service as a separate process (`node dist/server.js`). One module per measurement:
//   create-cost.ts  sequential create + close over HTTP vs bare imapflow / node-pop3 (IMAP, POP3, IMAP over TLS);
//   pool.ts         N held IMAP sessions vs bare imapflow holding N: memory, time to create all, idle CPU;
//   inspect.ts      inspect throughput while N are held vs a bare Fastify route with the same JSON;
//   recovery.ts     restart Dovecot while N are held: time until all are connected again, login rate;
//   recovery-defaults.ts  the same over TLS with the default reconnect settings, 1,000 and 2,000 sessions;
//   churn.ts        heap after GC under create/refresh/close churn (IMAP, POP3, some wrong passwords);
//   mail-read.ts    reading mail (a page from a big folder, attachment throughput, a parsed big message);
//   mail-change.ts  changing mail: a bulk move of 10,000 messages (--quick: 1,000) vs bare imapflow;
//   events.ts       new mail to an SSE client with 1,000 watching sessions vs bare imapflow IDLE; idle CPU of
//                   N watching sessions vs watch: [] vs bare IDLE (N = 9,000 here: the open-file limit);
//   replicas.ts     replicas on Redis: inspect through another replica, failover after kill -9, memory per session.
// Targets that are missed are reported, not failures; the exit code is non-zero only when something broke (a
// create failed, a process died, a phase timed out).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultUsers, startDovecot, type DovecotServer } from '../test/harness/dovecot.js';
import { createCost, httpFloor, type CreateCost } from './create-cost.js';
import { ROOT, startService } from './lib/children.js';
import { startToxiproxy, type Toxiproxy } from './lib/toxiproxy.js';
import { parseOptions, type Options } from './lib/options.js';
import { FD_LIMIT, openFileLimit, systemBusyPercent } from './lib/proc.js';
import { markdownTable, type Row } from './lib/report.js';
import { round, type Summary } from './lib/stats.js';
import { AUTH, POOL_USERS, SEQ_USER, serviceEnv, type Lifecycle } from './lib/targets.js';
import { ensureFdLimit, log, machine, t0, type Machine } from './lib/util.js';
import { mailChangeRows, measureMailChange, type MailChangeResult } from './mail-change.js';
import { mailReadRows, measureMailRead, type MailReadResult } from './mail-read.js';
import { poolPhase, type PoolResult } from './pool.js';
import { churnRows, chart, recoveryDefaultRows, rows } from './rows.js';
import { measureRecoveryDefaults, type DefaultRecovery } from './recovery-defaults.js';
import { measureChurn, type ChurnResult } from './churn.js';
import { EVENT_USERS, eventsRows, measureEvents, type EventsResult } from './events.js';
import { replicaBench, replicaOptions, replicaRows, type ReplicaBenchResult } from './replicas.js';

interface Results {
  mode: string;
  date: string;
  durationS: number;
  machine: Machine;
  background: { busyPercentBefore: number; loadavgBefore: string; loadavgAfter: string };
  options: Options;
  lifecycleEnvSupported: Lifecycle;
  notes: string[];
  errors: string[];
  rows: Row[];
  httpRoundTripMs: Summary | null;
  create: CreateCost[];
  pool: PoolResult[];
  mailRead?: MailReadResult | undefined;
  churn?: ChurnResult | undefined;
  recoveryDefaults?: DefaultRecovery[];
  mailChange?: MailChangeResult | undefined;
  events?: EventsResult | undefined;
  replicas?: ReplicaBenchResult | null;
}

/** Writes <base>.json, .md and .svg (rows are computed here from the measurements); returns the markdown. */
function writeOutputs(results: Results, base: string): string {
  const { machine: m, options: opts, background, notes, errors } = results;
  results.rows = [
    ...rows(results.create, results.pool, results.lifecycleEnvSupported, opts, results.httpRoundTripMs),
    ...recoveryDefaultRows(results.recoveryDefaults ?? []),
    ...(results.churn ? churnRows(results.churn) : []),
    ...(results.mailRead ? mailReadRows(results.mailRead) : []),
    ...(results.mailChange ? mailChangeRows(results.mailChange) : []),
    ...(results.events ? eventsRows(results.events) : []),
    ...replicaRows(results.replicas),
  ];
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
  const md =
    `# mail-session-broker benchmark (${results.mode})\n\n` +
    `Measured ${results.date.slice(0, 16).replace('T', ' ')} UTC on ${m.cores} x ${m.cpu}, ${m.memoryGiB} GiB, ${m.kernel}; ` +
    `Node ${m.node}, Dovecot ${m.dovecot}, imapflow ${m.imapflow}, node-pop3 ${m.nodePop3}, Fastify ${m.fastify}. ` +
    (opts.linkMs ? `Everything on 127.0.0.1; the mail connections (service and bare clients alike) went through Toxiproxy with a latency toxic of ${opts.linkMs} ms each way; run took` : `Everything on 127.0.0.1; run took`) + ` ${results.durationS} s; load average ${background.loadavgBefore} before, ${background.loadavgAfter} after. ` +
    `Generated by \`npm run bench${opts.quick ? ' -- --quick' : ''}\` (bench/run.ts${opts.linkMs ? ` --link=${opts.linkMs}ms` : ''}); ratio = broker / baseline.\n\n` +
    markdownTable(results.rows) +
    (notes.length ? `\nNotes:\n${notes.map((n) => `- ${n}`).join('\n')}\n` : '') +
    (errors.length ? `\n**The run failed:**\n\n\`\`\`\n${errors.join('\n')}\n\`\`\`\n` : '');
  writeFileSync(`${base}.md`, md);
  if (results.pool.length) writeFileSync(`${base}.svg`, chart(results.pool, m, opts, results.date));
  return md;
}

async function main(): Promise<number> {
  // --render=FILE.json: write the table and chart again from a results file (no measuring)
  const render = process.argv.find((a) => a.startsWith('--render='))?.slice('--render='.length);
  if (render) {
    const results = JSON.parse(readFileSync(render, 'utf8')) as Results;
    console.log(writeOutputs(results, render.replace(/\.json$/, '')));
    return 0;
  }
  const opts = parseOptions(process.argv.slice(2));
  ensureFdLimit();
  const watchdog = setTimeout(() => {
    console.error(`[bench] watchdog: the run took over ${opts.maxMinutes} minutes; stopping everything`);
    process.exit(2); // the harness's exit hooks kill every registered process group
  }, opts.maxMinutes * 60_000);
  watchdog.unref();

  const m = machine();
  const errors: string[] = [];
  const notes: string[] = [];
  let create: CreateCost[] = [];
  let httpRoundTrip: Summary | null = null;
  const pool: PoolResult[] = [];
  let mailRead: MailReadResult | undefined;
  let churn: ChurnResult | undefined;
  let recoveryDefaults: DefaultRecovery[] = [];
  let mailChange: MailChangeResult | undefined;
  let events: EventsResult | undefined;
  let replicas: ReplicaBenchResult | null = null;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'msb-bench-'));
  let dovecot: DovecotServer | undefined;
  let toxiproxy: Toxiproxy | undefined;
  let lifecycle: Lifecycle = { keepalive: false, reconnectRate: false, idleTimeout: false };
  if (opts.cpuProf) {
    opts.cpuProfDir = path.join(tmp, 'profiles');
    notes.push('The services ran with --cpu-prof: the sampling profiler costs CPU, so times, idle CPU and throughput are worse than without it.');
  }
  const fdLimit = openFileLimit();
  log(`mode ${opts.quick ? 'quick' : 'full'}; N = ${opts.ns.join(', ')}; open-file limit ${fdLimit}; ${m.cores} x ${m.cpu}; logs in ${tmp}`);
  if (fdLimit < FD_LIMIT) notes.push(`The open-file limit could not be raised to ${FD_LIMIT} here (it is ${fdLimit}, the hard limit); every process ran with ${fdLimit}.`);
  // other work on the machine (e.g. test suites) makes every figure noisier: say how busy it was
  const background = { busyPercentBefore: round(await systemBusyPercent(2000), 1), loadavgBefore: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '), loadavgAfter: '' };
  log(`machine busy before the run: ${background.busyPercentBefore}% of all CPUs (load average ${background.loadavgBefore})`);
  if (background.busyPercentBefore > 10) notes.push(`The machine was not idle: ${background.busyPercentBefore}% of all CPUs busy in the 2 s before the run (load average ${background.loadavgBefore}); figures are noisier.`);
  try {
    const needed = Math.max(...opts.ns) + 1000;
    if (fdLimit < needed) throw new Error(`the open-file limit ${fdLimit} is too low for N=${Math.max(...opts.ns)} (needs about ${needed}); run as root or raise the hard limit`);
    if (!opts.skipBuild) {
      log('npm run build');
      execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
    }
    const configJs = readFileSync(path.join(ROOT, 'dist/config.js'), 'utf8');
    lifecycle = {
      keepalive: configJs.includes('MSB_KEEPALIVE_INTERVAL_MS'),
      reconnectRate: configJs.includes('MSB_RECONNECT_RATE_PER_SEC'),
      idleTimeout: configJs.includes('MSB_IDLE_TIMEOUT_MS'),
    };
    const missing = Object.entries({ MSB_KEEPALIVE_INTERVAL_MS: lifecycle.keepalive, MSB_RECONNECT_RATE_PER_SEC: lifecycle.reconnectRate, MSB_IDLE_TIMEOUT_MS: lifecycle.idleTimeout }).filter(([, v]) => !v).map(([k]) => k);
    if (missing.length) {
      notes.push(`This service build does not know ${missing.join(', ')} (set anyway, ignored): ${!lifecycle.keepalive ? 'no keepalive traffic in the idle-CPU window; ' : ''}${!lifecycle.reconnectRate ? 'recovery is not measured.' : ''}`);
      log(`note: ${notes[notes.length - 1]}`);
    }

    log('starting Dovecot (scale settings)');
    dovecot = await startDovecot({ scale: true, users: { ...defaultUsers, ...Object.fromEntries(POOL_USERS), ...(opts.only.has('events') ? Object.fromEntries(EVENT_USERS) : {}) } });
    for (const user of [SEQ_USER, ...POOL_USERS.map(([u]) => u)]) {
      for (let i = 0; i < 3; i++) await dovecot.deliver(user, `From: bench@example.test\r\nTo: ${user}\r\nSubject: bench ${i}\r\nMessage-ID: <bench-${i}@example.test>\r\n\r\nHello ${i}.\r\n`);
    }

    // 1. create cost, in a service of its own
    if (opts.only.has('create')) {
      const svc = await startService('create', tmp, serviceEnv(100, opts), { maxSockets: 1, cpuProfDir: opts.cpuProfDir, headers: AUTH });
      try {
        httpRoundTrip = await httpFloor(svc, opts.creates);
        let ports = dovecot.ports;
        if (opts.linkMs) {
          // --link: every mail connection of the service and of the bare clients goes through Toxiproxy
          toxiproxy = await startToxiproxy(tmp);
          const link = (name: string, port: number) => toxiproxy!.link(name, port, opts.linkMs);
          ports = { imap: await link('imap', ports.imap), imaps: await link('imaps', ports.imaps), pop3: await link('pop3', ports.pop3), pop3s: await link('pop3s', ports.pop3s) };
          log(`Toxiproxy ${toxiproxy.version}: ${opts.linkMs} ms latency each way on IMAP ${ports.imap}, IMAPS ${ports.imaps}, POP3 ${ports.pop3}`);
        }
        create = await createCost(svc, dovecot, opts, ports);
      } finally {
        await svc.stop();
      }
    }

    // 2-4. pool, inspect, recovery for each N
    if (opts.only.has('pool')) for (const [i, n] of opts.ns.entries()) pool.push(await poolPhase(n, i === 0, dovecot, tmp, opts, lifecycle, errors));

    // recovery with the default reconnect settings, over TLS
    if (opts.only.has('recovery')) recoveryDefaults = await measureRecoveryDefaults(dovecot, tmp, opts);

    // 5. memory under churn, in a service of its own
    if (opts.only.has('churn')) {
      log(`churn: ${opts.churnCycles} create/refresh/close cycles (IMAP and POP3, one in ten with a wrong password)`);
      churn = await measureChurn(dovecot, tmp, opts);
      log(`  churn: heap after GC ${churn.heapMidMiB} MiB at the middle, ${churn.heapEndMiB} MiB at the end; slope ${churn.firstHalfSlopeMiBPer1000} / ${churn.secondHalfSlopeMiBPer1000} MiB per 1000 (first / second half)`);
    }

    // the read side (bench/mail-read.ts), with a Dovecot and a service of its own
    if (opts.only.has('read')) mailRead = await measureMailRead({ quick: opts.quick, tmp, log });

    // the change side (bench/mail-change.ts): a bulk move against bare imapflow's, with a Dovecot and a service of its own
    if (opts.only.has('change')) mailChange = await measureMailChange({ quick: opts.quick, tmp, log });

    // events (bench/events.ts): new mail to an SSE client, and the idle cost of watching, on this run's Dovecot
    if (opts.only.has('events')) events = await measureEvents(dovecot, tmp, opts);

    // replicas on Redis (bench/replicas.ts), on this run's Dovecot
    if (opts.only.has('replicas')) {
      replicas = await replicaBench({ dovecot, tmp, users: POOL_USERS, serviceEnv: (n, extra) => serviceEnv(n, opts, extra), headers: AUTH, log }, replicaOptions(opts.quick, opts));
      errors.push(...replicas.errors);
    }
  } catch (err) {
    errors.push((err as Error).stack ?? String(err));
    console.error(`[bench] FAILED: ${(err as Error).stack ?? String(err)}`);
  } finally {
    await toxiproxy?.stop();
    await dovecot?.close().catch((err: unknown) => errors.push(`stopping Dovecot: ${String(err)}`));
  }

  background.loadavgAfter = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const results: Results = {
    mode: `${opts.quick ? 'quick run' : 'full run'}${opts.linkMs ? `, emulated link of ${opts.linkMs} ms each way` : ''}`,
    date: new Date().toISOString(),
    durationS: round((performance.now() - t0) / 1000, 1),
    machine: m,
    background,
    options: opts,
    lifecycleEnvSupported: lifecycle,
    notes,
    errors,
    rows: [],
    httpRoundTripMs: httpRoundTrip,
    create,
    pool,
    mailRead,
    churn,
    recoveryDefaults,
    mailChange,
    events,
    replicas,
  };
  const outDir = path.join(ROOT, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const base = path.join(outDir, opts.out);
  const durationS = results.durationS;
  console.log(`\n${writeOutputs(results, base)}`);
  console.log(`[bench] wrote ${path.relative(ROOT, base)}.{json,md,svg} in ${durationS} s${errors.length ? `; service/holder logs kept in ${tmp}` : ''}`);
  if (opts.cpuProfDir) console.log(`[bench] CPU profiles in ${opts.cpuProfDir}: summarise with npx tsx bench/profile-top.ts ${opts.cpuProfDir}/*.cpuprofile`);
  if (!errors.length && !opts.cpuProfDir) rmSync(tmp, { recursive: true, force: true });
  return errors.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);