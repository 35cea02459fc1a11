// Events (issue 15): how soon new mail reaches an SSE client, and what watching by IDLE costs while nothing happens.
//   1. Latency: `sessions` IMAP sessions held, each watching its own INBOX (the default watch, an IDLE connection
//      each); a message is delivered into one session's INBOX from outside the service (the harness's Maildir
//      delivery, as an MDA does: no login on the measured path) and the time until its `message.new` frame is
//      parsed off GET /v1/events is taken in this process. Baseline in the same run, interleaved: bare imapflow
//      clients in this process IDLE-ing on mailboxes of the same kind, timed from the same delivery to their
//      `exists` event, and to the end of the fetches the service's watcher makes on it (a UID FETCH of what is new,
//      then the summary), so the same wire work. Deliveries go out one every SPACING_MS, each to a mailbox of its
//      own, without waiting for the events (an open loop); one whose event does not come within the deadline is
//      counted as lost.
//   2. Idle CPU: N sessions watching INBOX (two connections each), N sessions with `watch: []` (keepalive only)
//      and bare imapflow holding N IDLE-ing connections, each in a process of its own, one after the other.
//      N is the issue's 10,000 unless two connections a session do not fit under the open-file limit with room.
// Called by bench/run.ts (`--only=events`).
import { readdirSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImapFlow } from 'imapflow';
import type { DovecotServer } from '../test/harness/dovecot.js';
import { onSseFrames } from '../test/harness/sse-client.js';
// the query of the service's watcher on new mail (src/connectors/imap/watch.ts), so the bare baseline fetches the same
import { SUMMARY_QUERY } from '../src/connectors/imap/access.js';
import { startHolder, startService, type Service } from './lib/children.js';
import type { Options } from './lib/options.js';
import { openFileLimit, sampleProc } from './lib/proc.js';
import type { Row } from './lib/report.js';
import { ratio, round, summarize, type Summary } from './lib/stats.js';
import { AUTH, createMany, HOST, imapBody, imapOptions, serviceEnv, type CreateBody } from './lib/targets.js';
import { log, within } from './lib/util.js';
import { idleCpu } from './pool.js';
import { listStates } from './recovery.js';
import { f1, f2 } from './rows.js';

/** Mailboxes of the latency part: one per held session (at most 1,000), then one per bare client. */
const SESSION_USERS = 1000;
const BARE_USERS = 200;
export const EVENT_USERS: [string, string][] = Array.from({ length: SESSION_USERS + BARE_USERS }, (_, i) => [`ev${String(i).padStart(4, '0')}@example.test`, `ev-Secret-${i}`]);
/** The issue's figure; each watching session holds two connections (its own and its IDLE one). */
const ISSUE_IDLE_N = 10_000;
/** Time between two deliveries (broker and bare alternating): about 20 in flight at once. */
const SPACING_MS = 25;
/** Descriptors left for everything else of the service (listener, HTTP sockets, logs, ...). */
const FD_ROOM = 2000;

export interface Latency {
  delivered: number;
  /** No event within the deadline. */
  lost: number;
  ms: Summary;
}

export interface IdleSide {
  n: number;
  /** Open descriptors of the process while idle (its sockets to Dovecot and a few more). */
  fds: number;
  rssMiB: number;
  seconds: number;
  cpuPercentOfOneCore: number;
}

export interface EventsResult {
  sessions: number;
  deliveries: number;
  deadlineMs: number;
  latency: { broker: Latency; bareExists: Latency; bareFetched: Latency };
  idle: { n: number; fdLimit: number; why: string; keepaliveMs: number; watch: IdleSide; noWatch: IdleSide; bareIdle: IdleSide };
}

interface Frame {
  type: string;
  body: { session?: string; data?: { subject?: string | null } };
}

/** GET /v1/events on a real socket, frames parsed as they arrive (test/harness/sse-client.ts, as the tests read them). */
async function openEvents(port: number, onFrame: (f: Frame) => void): Promise<{ close(): void; ended: Promise<void> }> {
  let res!: IncomingMessage;
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/events', headers: AUTH }, (r) => {
      res = r;
      resolve();
    });
    req.on('error', reject);
    req.end();
  });
  if (res.statusCode !== 200) throw new Error(`GET /v1/events answered ${res.statusCode}`);
  let closing = false;
  onSseFrames(res, (frame) => {
    if (frame.data) onFrame({ type: frame.event ?? '', body: JSON.parse(frame.data) as Frame['body'] });
  });
  const ended = new Promise<void>((resolve) => res.once('close', () => resolve()));
  void ended.then(() => {
    if (!closing) log('  events: the SSE stream ended by itself');
  });
  return { close: () => { closing = true; res.destroy(); }, ended };
}

/** Waits for `done` (resolved with performance.now()) or the deadline: the time, or null (lost). */
async function timed(done: Promise<number>, deadlineMs: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), deadlineMs); });
  try {
    return await Promise.race([done, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A promise with its resolve, for a delivery's awaited event. */
function deferred(): { promise: Promise<number>; resolve: (at: number) => void } {
  let resolve!: (at: number) => void;
  const promise = new Promise<number>((r) => (resolve = r));
  return { promise, resolve };
}

/** A bare imapflow client watching INBOX as the service's watch connection does; on EXISTS it makes the watcher's fetches. */
async function bareWatcher(port: number, user: string, pass: string) {
  const client = new ImapFlow({ ...imapOptions({ port, secure: false }, user, pass), disableAutoIdle: false, autoIdleDelay: 0, maxIdleTime: 4 * 60_000 });
  client.on('error', () => {});
  await within(client.connect(), 30_000, `bare watcher ${user}: connect`);
  const box = await within(client.mailboxOpen('INBOX', { readOnly: true }), 30_000, `bare watcher ${user}: EXAMINE`);
  let lastUid = Number(box.uidNext) - 1;
  let waiting: { exists: (at: number) => void; fetched: (at: number) => void } | undefined;
  let chain = Promise.resolve();
  client.on('exists', () => {
    const at = performance.now();
    const w = waiting;
    w?.exists(at);
    chain = chain.then(async () => {
      const rows = await client.fetchAll(`${lastUid + 1}:*`, { uid: true }, { uid: true });
      const fresh = rows.map((r) => r.uid).filter((u) => u > lastUid);
      if (!fresh.length) return;
      await client.fetchAll(fresh, SUMMARY_QUERY, { uid: true });
      lastUid = Math.max(...fresh);
      w?.fetched(performance.now());
    }).catch(() => undefined);
  });
  return {
    expect(): { exists: Promise<number>; fetched: Promise<number> } {
      const e = deferred();
      const f = deferred();
      waiting = { exists: e.resolve, fetched: f.resolve };
      return { exists: e.promise, fetched: f.promise };
    },
    close: () => client.logout().catch(() => undefined).finally(() => client.close()),
  };
}

function message(user: string, token: string): string {
  return `From: Sender <sender@example.test>\r\nTo: ${user}\r\nSubject: ${token}\r\nMessage-ID: <${token}@example.test>\r\nDate: Wed, 02 Dec 2026 08:00:00 +0000\r\n\r\nNew mail ${token}.\r\n`;
}

/** A session watching its INBOX (the default watch): the body of the pool without `watch: []`. */
const watchedBody = (name: string, port: number, user: string, pass: string): CreateBody => {
  const { watch: _none, ...body } = imapBody(name, port, user, pass);
  return body;
};
/** Session p<i> belongs to mailbox i modulo the held sessions of the latency part. */
const userOf = (sessions: number) => (name: string): [string, string] => EVENT_USERS[Number(name.slice(1)) % sessions]!;

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function idleSide(pid: number, n: number, seconds: number): Promise<IdleSide> {
  const idle = await idleCpu(pid, seconds);
  return { n, fds: fdCount(pid), rssMiB: round(sampleProc(pid).rss / 2 ** 20, 1), seconds: idle.seconds, cpuPercentOfOneCore: idle.cpuPercentOfOneCore };
}

/** Creates sessions p<from>..p<to-1>, watching or not, and checks that the service holds them all connected. */
async function hold(svc: Service, from: number, to: number, port: number, sessions: number, watched: boolean, opts: Options): Promise<void> {
  const user = userOf(sessions);
  const body = (name: string, p: number) => {
    const [u, pw] = user(name);
    return watched ? watchedBody(name, p, u, pw) : imapBody(name, p, u, pw);
  };
  const created = await within(createMany(svc, from, to, opts.concurrency, port, body), 30 * 60_000, `creating ${to - from} sessions`);
  log(`  events: ${to - from} sessions ${watched ? 'watching INBOX' : 'with watch: []'} created in ${(created.ms / 1000).toFixed(1)} s`);
  const states = await listStates(svc);
  if ((states.connected ?? 0) !== to) throw new Error(`events: expected ${to} connected sessions, the service lists ${JSON.stringify(states)}`);
}

/** Stops a service (it logs out of every session first) and says how long that took. */
async function stopTimed(svc: Service): Promise<void> {
  const t = performance.now();
  await svc.stop();
  log(`  events: service ${svc.child.name} stopped in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}

export async function measureEvents(dovecot: DovecotServer, tmp: string, opts: Options): Promise<EventsResult> {
  const port = dovecot.ports.imap;
  const sessions = opts.quick ? 100 : SESSION_USERS;
  const deliveries = opts.quick ? 30 : 200;
  const deadlineMs = opts.quick ? 5000 : 10_000;
  // the quick run only shows that the measurement works (CI): short windows
  const idleS = opts.quick ? 3 : opts.idleS;
  const settleMs = opts.quick ? 1000 : opts.settleMs;
  const fdLimit = openFileLimit();
  const fitting = Math.floor((fdLimit - FD_ROOM) / 2 / 1000) * 1000;
  const n = opts.quick ? sessions : Math.min(ISSUE_IDLE_N, fitting);
  const why = opts.quick
    ? 'quick run: a small N'
    : n < ISSUE_IDLE_N
      ? `${ISSUE_IDLE_N} watching sessions need ${2 * ISSUE_IDLE_N} descriptors in one process (a session and its IDLE connection), over the open-file limit of ${fdLimit}; the largest whole thousand with ${FD_ROOM} left over`
      : 'the issue\'s figure';
  if (n < 100) throw new Error(`events: the open-file limit ${fdLimit} leaves room for ${n} watching sessions only`);
  const bareCount = Math.min(deliveries, BARE_USERS);
  log(`events: seeding ${sessions + bareCount} mailboxes; N = ${n} for the idle CPU (${why})`);
  for (const [user] of [...EVENT_USERS.slice(0, sessions), ...EVENT_USERS.slice(SESSION_USERS, SESSION_USERS + bareCount)]) {
    for (let i = 0; i < 3; i++) await dovecot.deliver(user, message(user, `seed-${i}`));
  }

  // 1. latency, with `sessions` watching sessions held
  // both services start at once (a start takes seconds on a busy machine); the second holds nothing until 2b
  const start = (label: string) => startService(label, tmp, serviceEnv(n, opts), { maxSockets: opts.concurrency + 8, cpuProfDir: opts.cpuProfDir, headers: AUTH });
  const [svcStart, plainStart] = await Promise.allSettled([start('events-watch'), start('events-nowatch')]);
  if (svcStart.status === 'rejected' || plainStart.status === 'rejected') {
    for (const s of [svcStart, plainStart]) if (s.status === 'fulfilled') await s.value.stop();
    throw svcStart.status === 'rejected' ? svcStart.reason : (plainStart as PromiseRejectedResult).reason;
  }
  const svc = svcStart.value;
  const plain = plainStart.value;
  let result: EventsResult['latency'];
  let watchIdle: IdleSide;
  try {
    log(`events: ${sessions} sessions watching INBOX, ${deliveries} deliveries to them and as many to ${bareCount} bare imapflow IDLE clients, interleaved, one every ${SPACING_MS} ms`);
    await hold(svc, 0, sessions, port, sessions, true, opts);
    const pending = new Map<string, (at: number) => void>();
    const stream = await openEvents(svc.port, (f) => {
      if (f.type !== 'message.new') return;
      const subject = f.body.data?.subject ?? '';
      pending.get(`${f.body.session}/${subject}`)?.(performance.now());
    });
    const bare = await Promise.all(EVENT_USERS.slice(SESSION_USERS, SESSION_USERS + bareCount).map(([u, p]) => bareWatcher(port, u, p)));
    const brokerMs: number[] = [];
    const existsMs: number[] = [];
    const fetchedMs: number[] = [];
    const lost = { broker: 0, exists: 0, fetched: 0 };
    try {
      const stride = Math.max(1, Math.floor(sessions / deliveries));
      const viaBroker = async (k: number) => {
        const i = (k * stride) % sessions;
        const [user] = EVENT_USERS[i]!;
        const token = `ev-${k}-${i}`;
        const d = deferred();
        pending.set(`p${i}/${token}`, d.resolve);
        const t0 = performance.now();
        await dovecot.deliver(user, message(user, token));
        const at = await timed(d.promise, deadlineMs);
        pending.delete(`p${i}/${token}`);
        if (at === null) lost.broker++; else brokerMs.push(at - t0);
      };
      const viaBare = async (k: number) => {
        const j = k % bareCount;
        const [user] = EVENT_USERS[SESSION_USERS + j]!;
        const w = bare[j]!.expect();
        const t0 = performance.now();
        await dovecot.deliver(user, message(user, `bare-${k}`));
        const fetched = await timed(w.fetched, deadlineMs);
        const exists = await timed(w.exists, 0);
        if (exists === null) lost.exists++; else existsMs.push(exists - t0);
        if (fetched === null) lost.fetched++; else fetchedMs.push(fetched - t0);
      };
      // open loop: a delivery every SPACING_MS, alternating sides (the order swapped every other pair), each to a
      // mailbox of its own, without waiting for the previous event: Dovecot tells IDLE clients of new mail about
      // half a second after it lands, so deliveries one after the other would take minutes
      const flights: Promise<void>[] = [];
      for (let k = 0; k < deliveries; k++) {
        for (const side of k % 2 === 0 ? [viaBroker, viaBare] : [viaBare, viaBroker]) {
          flights.push(side(k));
          await sleep(SPACING_MS);
        }
      }
      await Promise.all(flights);
      svc.child.assertAlive();
    } finally {
      stream.close();
      await Promise.all(bare.map((b) => b.close()));
    }
    const side = (ms: number[], l: number): Latency => ({ delivered: deliveries, lost: l, ms: summarize(ms) });
    result = { broker: side(brokerMs, lost.broker), bareExists: side(existsMs, lost.exists), bareFetched: side(fetchedMs, lost.fetched) };
    log(`  events: median ${f1(result.broker.ms.median)} ms to message.new (lost ${result.broker.lost}), bare exists ${f1(result.bareExists.ms.median)} ms (lost ${result.bareExists.lost}), bare + fetches ${f1(result.bareFetched.ms.median)} ms`);
    // every delivery lost on a side means the measurement itself broke (no IDLE, no stream), not a slow figure
    if (result.broker.ms.n === 0 || result.bareExists.ms.n === 0) throw new Error(`events: no delivery was seen (broker ${result.broker.ms.n}, bare ${result.bareExists.ms.n} of ${deliveries})`);

    // 2a. idle CPU, N watching sessions (the latency part's, grown to N)
    if (n > sessions) await hold(svc, sessions, n, port, sessions, true, opts);
    await sleep(settleMs);
    log(`  events: idle CPU of ${n} watching sessions for ${idleS} s`);
    watchIdle = await idleSide(svc.child.pid, n, idleS);
    svc.child.assertAlive();
  } catch (err) {
    await plain.stop();
    throw err;
  } finally {
    await stopTimed(svc);
  }

  // 2b. N sessions with watch: [] (keepalive only)
  let noWatch: IdleSide;
  try {
    await hold(plain, 0, n, port, sessions, false, opts);
    await sleep(settleMs);
    log(`  events: idle CPU of ${n} sessions with watch: [] for ${idleS} s`);
    noWatch = await idleSide(plain.child.pid, n, idleS);
    plain.child.assertAlive();
  } finally {
    await stopTimed(plain);
  }

  // 2c. bare imapflow holding N IDLE-ing connections
  let bareIdle: IdleSide;
  const holder = await startHolder(tmp, `events-idle-${n}`);
  try {
    const opened = await holder.call<{ ms: number; failures: number; firstError?: string }>({ cmd: 'open', host: HOST, port, secure: false, users: EVENT_USERS.slice(0, sessions), idle: true, concurrency: opts.concurrency, n, keepaliveMs: 0 }, 30 * 60_000);
    if (opened.failures) throw new Error(`events: bare imapflow, ${opened.failures} of ${n} IDLE connections failed: ${opened.firstError}`);
    log(`  events: bare imapflow opened ${n} IDLE connections in ${(opened.ms / 1000).toFixed(1)} s; idle CPU for ${idleS} s`);
    await sleep(settleMs);
    bareIdle = await idleSide(holder.child.pid, n, idleS);
    const mem = await holder.call<{ drops: number }>({ cmd: 'mem' });
    if (mem.drops) throw new Error(`events: ${mem.drops} bare IDLE connections were closed while idle`);
    await holder.call({ cmd: 'closeAll' }, 120_000);
  } finally {
    await holder.stop();
  }
  log(`  events: idle CPU % of a core, N=${n}: watching ${f2(watchIdle.cpuPercentOfOneCore)}, watch: [] ${f2(noWatch.cpuPercentOfOneCore)}, bare IDLE ${f2(bareIdle.cpuPercentOfOneCore)}`);
  return { sessions, deliveries, deadlineMs, latency: result, idle: { n, fdLimit, why, keepaliveMs: opts.keepaliveMs, watch: watchIdle, noWatch, bareIdle } };
}

const pct = (l: Latency) => `${f1(l.ms.median)} / ${f1(l.ms.p99)}`;
const plus = (a: Latency, b: Latency) => { const d = a.ms.median - b.ms.median; return `${d >= 0 ? '+' : ''}${f1(d)}`; };
const lostOf = (l: Latency) => `${l.lost} of ${l.delivered}`;

export function eventsRows(r: EventsResult): Row[] {
  const { broker, bareExists, bareFetched } = r.latency;
  const i = r.idle;
  const ka = `keepalive STATUS every ${i.keepaliveMs / 1000} s`;
  return [
    { figure: `delivery -> message.new at an SSE client, ${r.sessions} watching sessions held, p50 / p99 ms (n=${broker.ms.n})`, broker: `${pct(broker)} (${plus(broker, bareExists)})`, baseline: `${pct(bareExists)} (bare imapflow IDLE: delivery -> exists)`, ratio: ratio(broker.ms.median, bareExists.ms.median), target: '–', met: null },
    { figure: 'the same against bare imapflow doing the watcher\'s fetches after exists, p50 / p99 ms', broker: `${pct(broker)} (${plus(broker, bareFetched)})`, baseline: `${pct(bareFetched)} (exists, UID FETCH n:*, UID FETCH of the summary)`, ratio: ratio(broker.ms.median, bareFetched.ms.median), target: '–', met: null },
    { figure: `deliveries lost (no event within ${r.deadlineMs / 1000} s)`, broker: lostOf(broker), baseline: `${lostOf(bareExists)} (exists), ${lostOf(bareFetched)} (fetched)`, ratio: null, target: '0', met: broker.lost === 0 },
    { figure: `N=${i.n} (${i.why}): idle CPU, sessions watching INBOX by IDLE (2 connections each, ${ka}), % of one core`, broker: `${f2(i.watch.cpuPercentOfOneCore)} (${i.watch.fds} fds)`, baseline: `${f2(i.noWatch.cpuPercentOfOneCore)} (broker, watch: [], ${ka} only; ${i.noWatch.fds} fds)`, ratio: ratio(i.watch.cpuPercentOfOneCore, i.noWatch.cpuPercentOfOneCore), target: '–', met: null },
    { figure: `N=${i.n}: idle CPU, sessions watching INBOX, % of one core`, broker: f2(i.watch.cpuPercentOfOneCore), baseline: `${f2(i.bareIdle.cpuPercentOfOneCore)} (bare imapflow, N connections IDLE-ing on INBOX, no keepalive; ${i.bareIdle.fds} fds)`, ratio: ratio(i.watch.cpuPercentOfOneCore, i.bareIdle.cpuPercentOfOneCore), target: '–', met: null },
    { figure: `N=${i.n}: RSS while idle, MiB`, broker: `${f1(i.watch.rssMiB)} watching, ${f1(i.noWatch.rssMiB)} watch: []`, baseline: `${f1(i.bareIdle.rssMiB)} (bare imapflow IDLE)`, ratio: ratio(i.watch.rssMiB, i.bareIdle.rssMiB), target: '–', met: null },
  ];
}
