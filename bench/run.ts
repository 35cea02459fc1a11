// Benchmarks of issue #7: what a session costs, how many one process holds, and how the broker
// compares with the bare libraries. `npm run bench` (full, by hand) or `npm run bench -- --quick` (CI).
//
// It builds the service, starts its own Dovecot tuned for thousands of connections (test/harness,
// scale: true), starts the service as a separate process (`node dist/server.js`) and measures, each
// figure against a baseline measured in the same run:
//   1. create cost: sequential create + close over HTTP vs bare imapflow / node-pop3 (plain IMAP, POP3,
//      IMAP over TLS);
//   2. pool scale: N idle IMAP sessions in one service process vs bare imapflow holding N connections in
//      another process: memory per session, time to create all N, idle CPU with keepalive;
//   3. inspect throughput while N sessions are held vs a bare Fastify route returning the same JSON;
//   4. recovery: restart Dovecot while N sessions are held; time until all are connected again and the
//      peak login rate Dovecot saw;
//   5. reading mail (bench/mail-read.ts): a page of 50 from a 10,000-message folder, attachment throughput and
//      memory, a parsed 25 MB message (--quick: smaller);
//   6. changing mail (bench/mail-change.ts): a bulk move of 10,000 messages (--quick: 1,000) vs bare imapflow.
// Results: bench/results/latest.{json,md,svg} (--quick: bench/results/quick.*). Targets that are missed are
// reported, not failures; the exit code is non-zero only when something broke (a create failed, a process
// died, a phase timed out).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, openSync, readSync, closeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSecureContext, rootCertificates } from 'node:tls';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import Pop3Command from 'node-pop3';
import { defaultUsers, startDovecot, type DovecotServer } from '../test/harness/dovecot.js';
import { ROOT, startBareRoute, startHolder, startService, type MemoryUsage, type Service } from './lib/children.js';
import { load, type LoadResult } from './lib/load.js';
import { FD_LIMIT, openFileLimit, sampleProc, systemBusyPercent, type ProcSample } from './lib/proc.js';
import { markdownTable, svgChart, type Row } from './lib/report.js';
import { ratio, round, summarize, type Summary } from './lib/stats.js';
import { mailReadRows, measureMailRead, type MailReadResult } from './mail-read.js';
import { replicaBench, replicaOptions, replicaRows, type ReplicaBenchResult } from './replicas.js';
import { mailChangeRows, measureMailChange, type MailChangeResult } from './mail-change.js';

// ------------------------------------------------------------------------------------------ options

interface Options {
  quick: boolean;
  /** Pool sizes, in order. */
  ns: number[];
  /** Sequential create+close iterations per protocol and variant (after `warmup`). */
  creates: number;
  warmup: number;
  /** Concurrency of "create all N". */
  concurrency: number;
  /** autocannon connections and seconds per run. */
  connections: number;
  inspectS: number;
  inspectRounds: number;
  /** Window of the idle-CPU measurement. */
  idleS: number;
  /** Wait after creating N before sampling memory. */
  settleMs: number;
  /** MSB_KEEPALIVE_INTERVAL_MS for the service, and the holder's keepalive (STATUS INBOX) period. */
  keepaliveMs: number;
  /** MSB_RECONNECT_RATE_PER_SEC. */
  ratePerSec: number;
  /** How long Dovecot stays down in the recovery test. */
  downtimeMs: number;
  /** Sessions for the inspect run with the default MSB_SUMMARY_MAX_AGE_MS (0 = skip). */
  defaultAgeN: number;
  skipBuild: boolean;
  /** Start the services with --cpu-prof; profiles are kept in the run's temp dir. */
  cpuProf: boolean;
  out: string;
  /** Whole-run watchdog. */
  maxMinutes: number;
}

function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = quick
    ? { quick, ns: [200], creates: 50, warmup: 5, concurrency: 50, connections: 32, inspectS: 5, inspectRounds: 2, idleS: 10, settleMs: 2000, keepaliveMs: 60_000, ratePerSec: 250, downtimeMs: 1000, defaultAgeN: 200, skipBuild: false, cpuProf: false, out: 'quick', maxMinutes: 10 }
    : { quick, ns: [1000, 5000, 10_000], creates: 500, warmup: 20, concurrency: 50, connections: 32, inspectS: 10, inspectRounds: 3, idleS: 60, settleMs: 5000, keepaliveMs: 60_000, ratePerSec: 250, downtimeMs: 2000, defaultAgeN: 1000, skipBuild: false, cpuProf: false, out: 'latest', maxMinutes: 150 };
  for (const arg of argv) {
    const [key, value = ''] = arg.replace(/^--/, '').split('=');
    const num = Number(value);
    switch (key) {
      case 'quick': break;
      // bench/replicas.ts: skip it, or run only it
      case 'no-replicas': case 'replicas-only': break;
      case 'n': o.ns = value.split(',').map(Number).filter((x) => Number.isInteger(x) && x > 0); break;
      case 'creates': o.creates = num; break;
      case 'concurrency': o.concurrency = num; break;
      case 'connections': o.connections = num; break;
      case 'inspect-s': o.inspectS = num; break;
      case 'inspect-rounds': o.inspectRounds = num; break;
      case 'idle-s': o.idleS = num; break;
      case 'keepalive-ms': o.keepaliveMs = num; break;
      case 'rate': o.ratePerSec = num; break;
      case 'default-age-n': o.defaultAgeN = num; break;
      case 'skip-build': o.skipBuild = true; break;
      case 'cpu-prof': o.cpuProf = true; break;
      case 'out': o.out = value; break;
      default: throw new Error(`unknown option ${arg}; options: --quick --n=1000,5000 --creates=N --concurrency=N --connections=N --inspect-s=S --inspect-rounds=N --idle-s=S --keepalive-ms=MS --rate=PER_S --default-age-n=N --skip-build --cpu-prof --out=NAME --no-replicas --replicas-only; or --render=RESULTS.json`);
    }
  }
  if (!o.ns.length) throw new Error('--n: give pool sizes like --n=1000,5000');
  return o;
}

// ----------------------------------------------------------------------------- small helpers

const t0 = performance.now();
const log = (msg: string): void => console.log(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);
const KiB = 1024;
/** Where the services write CPU profiles (--cpu-prof), else undefined. */
let cpuProfDir: string | undefined;

/** Rejects after ms; every network step of the benchmark is bounded in time. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Re-runs this process under `ulimit -n FD_LIMIT` when its limit is lower (Dovecot inherits it too). */
function ensureFdLimit(): void {
  if (openFileLimit() >= FD_LIMIT || process.env.MSB_BENCH_REEXEC) return;
  const script = `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  const res = spawnSync('bash', ['-c', script, 'bench', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, MSB_BENCH_REEXEC: '1' },
  });
  process.exit(res.status ?? 1);
}

function machine() {
  const cpus = os.cpus();
  const version = (pkg: string): string => {
    try { return (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version; } catch { return '?'; }
  };
  let dovecot = '?';
  try { dovecot = execFileSync('dovecot', ['--version'], { encoding: 'utf8' }).trim(); } catch { /* reported as ? */ }
  return {
    cpu: cpus[0]?.model ?? '?',
    cores: cpus.length,
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    dovecot,
    imapflow: version('imapflow'),
    nodePop3: version('node-pop3'),
    fastify: version('fastify'),
    autocannon: version('autocannon'),
  };
}

// ------------------------------------------------------------------------------ mail targets

const HOST = '127.0.0.1';
const SEQ_USER = 'alice@example.test';
const SEQ_PASS = defaultUsers[SEQ_USER]!;
/** Pool sessions are spread over these users (Dovecot limits connections per user and IP). */
const POOL_USERS: [string, string][] = Array.from({ length: 20 }, (_, i) => [`bench${String(i).padStart(2, '0')}@example.test`, `bench-Secret-${i}`]);

interface Target {
  port: number;
  secure: boolean;
  ca?: string | string[] | undefined;
  secureContext?: import('node:tls').SecureContext;
}

/** The imapflow options of the service's ImapConnector (src/connectors/imap.ts), with logger: false. */
function imapOptions(t: Target, user: string, pass: string): ImapFlowOptions {
  return {
    host: HOST,
    port: t.port,
    secure: t.secure,
    doSTARTTLS: t.secure ? undefined : false,
    tls: { minVersion: 'TLSv1.2', ...(t.ca ? { ca: t.ca } : {}), ...(t.secureContext ? { secureContext: t.secureContext } : {}) },
    auth: { user, pass },
    logger: false,
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    disableAutoIdle: true,
    clientInfo: { name: 'mail-session-broker' },
  } as ImapFlowOptions;
}

async function bareImap(t: Target, status: boolean): Promise<void> {
  const client = new ImapFlow(imapOptions(t, SEQ_USER, SEQ_PASS));
  client.on('error', () => {});
  try {
    await within(client.connect(), 30_000, 'bare imapflow connect');
    if (status) await within(client.status('INBOX', { messages: true, unseen: true }), 30_000, 'bare imapflow STATUS');
    await within(client.logout(), 30_000, 'bare imapflow LOGOUT');
  } finally {
    client.close();
  }
}

async function barePop3(port: number): Promise<void> {
  const pop = new Pop3Command({ host: HOST, port, tls: false, user: SEQ_USER, password: SEQ_PASS, timeout: 30_000 });
  (pop as unknown as { on(e: string, f: () => void): void }).on('error', () => {});
  try {
    // login is lazy: STAT connects, sends USER and PASS, then STAT; the same wire work as the service
    await within(pop.STAT(), 30_000, 'bare node-pop3 STAT');
    await within(pop.QUIT(), 30_000, 'bare node-pop3 QUIT');
  } catch (err) {
    (pop as unknown as { _socket?: { destroy(): void } | null })._socket?.destroy();
    throw err;
  }
}

type CreateBody = Record<string, unknown> & { name: string };

function imapBody(name: string, port: number, user: string, pass: string): CreateBody {
  return { name, type: 'imap', host: HOST, port, secure: false, username: user, password: pass, tls: { starttls: 'off' } };
}

// ------------------------------------------------------------------------------ 1. create cost

interface Variant {
  key: string;
  label: string;
  run: () => Promise<Record<string, number> | void>;
}

/** Runs the variants interleaved (rotating order each iteration) so drift hits them alike. */
async function measureVariants(variants: Variant[], iterations: number, warmup: number): Promise<Record<string, number[]>> {
  const samples: Record<string, number[]> = {};
  for (let i = -warmup; i < iterations; i++) {
    const shift = ((i % variants.length) + variants.length) % variants.length;
    const order = [...variants.slice(shift), ...variants.slice(0, shift)];
    for (const v of order) {
      const started = performance.now();
      const parts = await v.run();
      const ms = performance.now() - started;
      if (i < 0) continue;
      (samples[v.key] ??= []).push(ms);
      for (const [k, val] of Object.entries(parts ?? {})) (samples[`${v.key}.${k}`] ??= []).push(val);
    }
  }
  return samples;
}

interface CreateCost {
  protocol: string;
  iterations: number;
  /** Logins Dovecot logged per create+close (broker) and per bare run: the wire work actually done. */
  loginsPerRun: { broker: number; bare: number };
  variants: Record<string, { label: string; ms: Summary }>;
}

/** Sequential GET /health: the floor of one HTTP exchange with the service on this machine. */
async function httpFloor(svc: Service, count: number): Promise<Summary> {
  const ms: number[] = [];
  for (let i = 0; i < count + 10; i++) {
    const res = await svc.http.expect('GET', '/health', [200]);
    if (i >= 10) ms.push(res.ms);
  }
  return summarize(ms);
}

async function createCost(svc: Service, dovecot: DovecotServer, opts: Options): Promise<CreateCost[]> {
  const { ports, caPem } = dovecot;
  let seq = 0;
  const broker = (body: Omit<CreateBody, 'name'>): Variant['run'] => async () => {
    const name = `seq-${++seq}`;
    const created = await svc.http.expect('POST', '/v1/sessions', [201], { ...body, name });
    const closed = await svc.http.expect('DELETE', `/v1/sessions/${name}`, [204]);
    return { post: created.ms, delete: closed.ms };
  };
  const creds = { host: HOST, username: SEQ_USER, password: SEQ_PASS };
  // the service's trust for a session with tls.ca: Node's roots + NODE_EXTRA_CA_CERTS + the CA (src/connectors/tls.ts)
  let extra: string[] = [];
  try { if (process.env.NODE_EXTRA_CA_CERTS) extra = [readFileSync(process.env.NODE_EXTRA_CA_CERTS, 'utf8')]; } catch { /* as the service */ }
  const serviceTrust = [...rootCertificates, ...extra, caPem];
  const cachedContext = createSecureContext({ ca: serviceTrust, minVersion: 'TLSv1.2' });

  const plain: Target = { port: ports.imap, secure: false };
  const tls: Target = { port: ports.imaps, secure: true, ca: caPem };
  const suites: { protocol: string; variants: Variant[] }[] = [
    {
      protocol: 'imap',
      variants: [
        { key: 'broker', label: 'broker POST + DELETE (connect, login, STATUS INBOX, LOGOUT)', run: broker({ type: 'imap', port: ports.imap, secure: false, tls: { starttls: 'off' }, ...creds }) },
        { key: 'bare', label: 'bare imapflow connect + login + logout', run: () => bareImap(plain, false) },
        { key: 'bareStatus', label: 'bare imapflow connect + login + STATUS INBOX + logout', run: () => bareImap(plain, true) },
      ],
    },
    {
      protocol: 'pop3',
      variants: [
        { key: 'broker', label: 'broker POST + DELETE (connect, USER/PASS, STAT, QUIT; DELETE sends nothing)', run: broker({ type: 'pop3', port: ports.pop3, secure: false, tls: { starttls: 'off' }, ...creds }) },
        { key: 'bare', label: 'bare node-pop3 connect + USER/PASS + STAT + QUIT', run: () => barePop3(ports.pop3) },
      ],
    },
    {
      protocol: 'imaps',
      variants: [
        { key: 'broker', label: 'broker POST + DELETE over TLS (tls.ca)', run: broker({ type: 'imap', port: ports.imaps, secure: true, tls: { ca: caPem }, ...creds }) },
        { key: 'bare', label: 'bare imapflow TLS (ca: test CA) connect + login + logout', run: () => bareImap(tls, false) },
        { key: 'bareStatus', label: 'bare imapflow TLS connect + login + STATUS INBOX + logout', run: () => bareImap(tls, true) },
        { key: 'bareServiceTrust', label: 'bare imapflow TLS + STATUS, ca = Node roots + NODE_EXTRA_CA_CERTS + test CA (the service\'s trust list)', run: () => bareImap({ ...tls, ca: serviceTrust }, true) },
        { key: 'bareServiceTrustCached', label: 'bare imapflow TLS + STATUS, the same trust list in one SecureContext made once', run: () => bareImap({ ...tls, ca: undefined, secureContext: cachedContext }, true) },
      ],
    },
  ];
  const out: CreateCost[] = [];
  for (const suite of suites) {
    log(`create cost ${suite.protocol}: ${opts.creates} x ${suite.variants.length} variants (+${opts.warmup} warm-up)`);
    // the wire work each side really does, from Dovecot's log
    const loginLine = new RegExp(`${suite.protocol === 'pop3' ? 'pop3' : 'imap'}-login: Info: Login: user=<${SEQ_USER.replace(/\./g, '\\.')}>`);
    const logins = async (run: Variant['run']): Promise<number> => {
      const before = await dovecot.countLog(loginLine);
      for (let k = 0; k < 5; k++) await run();
      await sleep(300);
      return ((await dovecot.countLog(loginLine)) - before) / 5;
    };
    const loginsPerRun = { broker: await logins(suite.variants[0]!.run), bare: await logins(suite.variants[1]!.run) };
    const samples = await measureVariants(suite.variants, opts.creates, opts.warmup);
    svc.child.assertAlive();
    const variants: CreateCost['variants'] = {};
    for (const v of suite.variants) variants[v.key] = { label: v.label, ms: summarize(samples[v.key] ?? []) };
    for (const part of ['post', 'delete']) {
      const s = samples[`broker.${part}`];
      if (s) variants[`broker.${part}`] = { label: `broker ${part.toUpperCase()} alone`, ms: summarize(s) };
    }
    out.push({ protocol: suite.protocol, iterations: opts.creates, loginsPerRun, variants });
    log(`  ${suite.protocol}: broker median ${variants.broker!.ms.median.toFixed(2)} ms, bare ${variants.bare!.ms.median.toFixed(2)} ms`);
  }
  return out;
}

// ------------------------------------------------------------------------------ 2-4. pool

interface Side {
  createAll: { seconds: number; perSecond: number; latencyMs: Summary };
  base: { rss: number; mem: MemoryUsage };
  held: { rss: number; mem: MemoryUsage };
  rssPerSessionKiB: number;
  heapPerSessionKiB: number;
  /** heapUsed + external + arrayBuffers delta per session (after GC). */
  jsAndBuffersPerSessionKiB: number;
  idle: { seconds: number; cpuPercentOfOneCore: number; cpuSecondsPerMinute: number };
}

interface Recovery {
  n: number;
  capPerSec: number;
  downtimeMs: number;
  stopMs: number;
  /** From Dovecot stopping until the service showed no session connected. */
  dropSeenMs: number | null;
  /** From Dovecot accepting again until every session was connected (null: not all came back). */
  recoveryS: number | null;
  connectedAtEnd: number;
  statesAtEnd: Record<string, number>;
  /** Most logins in one wall-clock second of Dovecot's log after the restart. */
  peakLoginsPerSec: number;
  /** Median logins per wall-clock second (NaN when recovery took under 3 s). */
  medianLoginsPerSec: number;
  loginsAfterRestart: number;
  /** Other imap-login lines (connections without a login) after the restart. */
  otherLoginLines: number;
  /** [seconds since Dovecot accepted again, logins Dovecot logged since] */
  timeline: [number, number][];
}

interface PoolResult {
  n: number;
  concurrency: number;
  broker: Side;
  bare: Side | null;
  /** broker and bare: the median of the alternating rounds (all in `rounds`). */
  inspect: { broker: LoadResult; bare: LoadResult; bodyBytes: number; rounds: { broker: LoadResult[]; bare: LoadResult[] } };
  inspectDefaultAge: { n: number; broker: LoadResult; bare: LoadResult; maxAgeMs: number } | null;
  recovery: Recovery | null;
}

function memDelta(base: { rss: number; mem: MemoryUsage }, held: { rss: number; mem: MemoryUsage }, n: number) {
  const js = (m: MemoryUsage) => m.heapUsed + m.external + m.arrayBuffers;
  return {
    rssPerSessionKiB: (held.rss - base.rss) / n / KiB,
    heapPerSessionKiB: (held.mem.heapUsed - base.mem.heapUsed) / n / KiB,
    jsAndBuffersPerSessionKiB: (js(held.mem) - js(base.mem)) / n / KiB,
  };
}

async function idleCpu(pid: number, seconds: number): Promise<Side['idle']> {
  const a: ProcSample = sampleProc(pid);
  await sleep(seconds * 1000);
  const b = sampleProc(pid);
  const wall = (b.at - a.at) / 1000;
  const pct = ((b.cpuS - a.cpuS) / wall) * 100;
  return { seconds: round(wall, 1), cpuPercentOfOneCore: pct, cpuSecondsPerMinute: (pct / 100) * 60 };
}

/** Creates sessions p<from>..p<to-1> at `concurrency`; any failure aborts (and fails the run). */
async function createMany(svc: Service, from: number, to: number, concurrency: number, port: number): Promise<{ ms: number; latencies: number[] }> {
  const latencies: number[] = [];
  let next = from;
  let failure: Error | undefined;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < to && !failure) {
      const i = next++;
      const [user, pass] = POOL_USERS[i % POOL_USERS.length]!;
      try {
        const res = await svc.http.expect('POST', '/v1/sessions', [201], imapBody(`p${i}`, port, user, pass));
        latencies.push(res.ms);
      } catch (err) {
        failure ??= new Error(`creating session p${i} failed: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, to - from) }, worker));
  if (failure) throw failure;
  return { ms: performance.now() - started, latencies };
}

async function listStates(svc: Service): Promise<Record<string, number>> {
  const res = await svc.http.expect('GET', '/v1/sessions', [200]);
  const counts: Record<string, number> = {};
  for (const s of (JSON.parse(res.text) as { sessions: { state: string }[] }).sessions) counts[s.state] = (counts[s.state] ?? 0) + 1;
  return counts;
}

function readFrom(file: string, offset: number): string {
  const fd = openSync(file, 'r');
  try {
    const size = statSync(file).size;
    const buf = Buffer.alloc(Math.max(0, size - offset));
    readSync(fd, buf, 0, buf.length, offset);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Reads Dovecot's log incrementally and counts IMAP logins per wall-clock second (the log's resolution). */
class LoginTail {
  readonly #file: string;
  #pos: number;
  #partial = '';
  logins = 0;
  other = 0;
  readonly perSecond = new Map<string, number>();

  constructor(file: string) {
    this.#file = file;
    this.#pos = statSync(file).size;
  }

  poll(): void {
    const text = this.#partial + readFrom(this.#file, this.#pos);
    this.#pos += Buffer.byteLength(text) - Buffer.byteLength(this.#partial);
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) {
      const m = /^(\w{3} +\d+ \d\d:\d\d:\d\d) imap-login: Info: (\w+)/.exec(line);
      if (!m) continue;
      if (m[2] === 'Login') {
        this.logins++;
        this.perSecond.set(m[1]!, (this.perSecond.get(m[1]!) ?? 0) + 1);
      } else this.other++;
    }
  }
}

/**
 * Stops Dovecot while the service holds n sessions, keeps it down for downtimeMs, starts it again and
 * measures how long until the service shows every session connected. Progress is followed in Dovecot's
 * log (cheap for the service); the service's session list is read only at the start and at the end.
 */
async function measureRecovery(svc: Service, dovecot: DovecotServer, n: number, opts: Options, reconnectSupported: boolean): Promise<Recovery> {
  const tail = new LoginTail(path.join(dovecot.dir, 'dovecot.log'));
  const pollMs = Math.max(250, Math.min(1000, n / 10));
  const stopStarted = performance.now();
  await dovecot.stop();
  const stopMs = performance.now() - stopStarted;
  // wait until the service has seen the connections go (bounded)
  let dropSeenMs: number | null = null;
  const dropDeadline = Date.now() + 30_000;
  while (Date.now() < dropDeadline) {
    const states = await listStates(svc);
    if (!states.connected) { dropSeenMs = performance.now() - stopStarted; break; }
    await sleep(pollMs);
  }
  await sleep(Math.max(0, opts.downtimeMs - (performance.now() - stopStarted)));
  tail.poll();
  const loginsBefore = tail.logins;
  await dovecot.start();
  const up = performance.now();
  const timeline: [number, number][] = [];
  // bounded: the cap allows n / rate seconds; give it 3x that plus 30 s (15 s when the service has no reconnect)
  const budgetMs = reconnectSupported ? 30_000 + (3 * 1000 * n) / opts.ratePerSec : 15_000;
  let recoveryS: number | null = null;
  let states: Record<string, number> = {};
  let lastListAt = 0;
  while (performance.now() - up < budgetMs) {
    svc.child.assertAlive();
    tail.poll();
    const t = (performance.now() - up) / 1000;
    const loggedIn = tail.logins - loginsBefore;
    timeline.push([round(t, 2), loggedIn]);
    // the list (n session views) only once Dovecot has seen n logins, or every 5 s as a fallback
    if (loggedIn >= n || performance.now() - lastListAt > 5000) {
      lastListAt = performance.now();
      states = await listStates(svc);
      if ((states.connected ?? 0) >= n) { recoveryS = (performance.now() - up) / 1000; break; }
    }
    await sleep(250);
  }
  if (recoveryS === null) states = await listStates(svc);
  await sleep(500); // Dovecot's log process writes asynchronously
  tail.poll();
  return {
    n,
    capPerSec: opts.ratePerSec,
    downtimeMs: opts.downtimeMs,
    stopMs: round(stopMs),
    dropSeenMs: dropSeenMs === null ? null : round(dropSeenMs),
    recoveryS: recoveryS === null ? null : round(recoveryS, 2),
    connectedAtEnd: states.connected ?? 0,
    statesAtEnd: states,
    peakLoginsPerSec: Math.max(0, ...tail.perSecond.values()),
    // whole seconds only: the first and last second of the log are partial
    medianLoginsPerSec: summarize([...tail.perSecond.values()].slice(1, -1)).median,
    loginsAfterRestart: tail.logins - loginsBefore,
    otherLoginLines: tail.other,
    timeline,
  };
}

interface Lifecycle {
  keepalive: boolean;
  reconnectRate: boolean;
  idleTimeout: boolean;
}

// API authentication as in production (a bot key); variables an older build does not know are ignored.
const API_KEY = `msb_bench_${randomBytes(24).toString('base64url')}`;
const AUTH = { authorization: `Bearer ${API_KEY}` };

function serviceEnv(n: number, opts: Options, extra: Record<string, string> = {}): Record<string, string> {
  return {
    MSB_AUTH: 'keys',
    MSB_API_KEYS: `bench:bot:${createHash('sha256').update(API_KEY, 'utf8').digest('hex')}`,
    // off: one principal sends thousands of requests a second here
    MSB_RATE_LIMIT_PER_MINUTE: '0',
    // Dovecot listens on 127.0.0.1 on free ports: the default deny list without loopback, any port
    MSB_OUTBOUND_DENY: '0.0.0.0/8,169.254.0.0/16,fe80::/10,224.0.0.0/4,ff00::/8,255.255.255.255/32',
    MSB_OUTBOUND_PORTS: '*',
    MSB_MAX_SESSIONS: String(n + 100),
    // one principal holds every session and creates them 50 at a time here
    MSB_MAX_SESSIONS_PER_PRINCIPAL: String(n + 100),
    MSB_MAX_CONNECTING_PER_PRINCIPAL: '1000',
    MSB_MAX_CONNECTIONS: '10000',
    MSB_SUMMARY_MAX_AGE_MS: '3600000',
    MSB_KEEPALIVE_INTERVAL_MS: String(opts.keepaliveMs),
    MSB_RECONNECT_RATE_PER_SEC: String(opts.ratePerSec),
    MSB_IDLE_TIMEOUT_MS: '0',
    MSB_SHUTDOWN_TIMEOUT_MS: '60000',
    ...extra,
  };
}

/** The run with the median req/s of several. */
function medianRun(runs: LoadResult[]): LoadResult {
  return [...runs].sort((a, b) => a.rps - b.rps)[Math.floor((runs.length - 1) / 2)]!;
}

async function poolPhase(n: number, first: boolean, dovecot: DovecotServer, tmp: string, opts: Options, lifecycle: Lifecycle, errors: string[]): Promise<PoolResult> {
  const port = dovecot.ports.imap;
  const C = opts.concurrency;
  const svc = await startService(`pool-${n}`, tmp, serviceEnv(n, opts), { maxSockets: C + 8, cpuProfDir, headers: AUTH });
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

    // 3. inspect throughput vs a bare Fastify route with the same JSON
    const sample = await svc.http.expect('GET', '/v1/sessions/p0', [200]);
    const bodyFile = path.join(tmp, `inspect-body-${n}.json`);
    writeFileSync(bodyFile, sample.text);
    const paths = Array.from({ length: n }, (_, i) => `/v1/sessions/p${i}`);
    log(`  inspect: autocannon ${opts.connections} connections, ${opts.inspectRounds} alternating rounds of ${opts.inspectS} s (broker, bare Fastify)`);
    const bare = await startBareRoute(tmp, String(n), bodyFile);
    const runs: { broker: LoadResult[]; bare: LoadResult[] } = { broker: [], bare: [] };
    try {
      await load(svc.port, paths, 1, opts.connections, { headers: AUTH }); // warm-up
      await load(bare.port, paths, 1, opts.connections, { headers: AUTH });
      for (let r = 0; r < opts.inspectRounds; r++) {
        runs.broker.push(await load(svc.port, paths, opts.inspectS, opts.connections, { serverPid: svc.child.pid, headers: AUTH }));
        svc.child.assertAlive();
        runs.bare.push(await load(bare.port, paths, opts.inspectS, opts.connections, { serverPid: bare.pid, headers: AUTH }));
      }
    } finally {
      await bare.stop();
    }
    const brokerLoad = medianRun(runs.broker);
    const bareLoad = medianRun(runs.bare);
    for (const run of runs.broker) {
      if (run.non2xx || run.errors) throw new Error(`inspect load: ${run.non2xx} non-2xx answers, ${run.errors} errors`);
    }
    inspect = { broker: brokerLoad, bare: bareLoad, bodyBytes: Buffer.byteLength(sample.text), rounds: runs };
    log(`  inspect: broker ${runs.broker.map((r) => r.rps.toFixed(0)).join('/')} req/s, bare ${runs.bare.map((r) => r.rps.toFixed(0)).join('/')} req/s`);

    // the same with the default MSB_SUMMARY_MAX_AGE_MS (inspect refreshes summaries live), in another service
    if (first && opts.defaultAgeN > 0) {
      const m = Math.min(n, opts.defaultAgeN);
      const svc2 = await startService(`default-age-${m}`, tmp, serviceEnv(m, opts, { MSB_SUMMARY_MAX_AGE_MS: '' }), { maxSockets: C + 8, cpuProfDir, headers: AUTH });
      try {
        await createMany(svc2, 0, m, C, port);
        const p2 = paths.slice(0, m);
        await load(svc2.port, p2, 1, opts.connections, { headers: AUTH }); // warm-up
        const b2 = await load(svc2.port, p2, opts.inspectS, opts.connections, { serverPid: svc2.child.pid, headers: AUTH });
        svc2.child.assertAlive();
        inspectDefaultAge = { n: m, broker: b2, bare: bareLoad, maxAgeMs: 5000 };
        log(`  inspect with MSB_SUMMARY_MAX_AGE_MS default (5000), ${m} sessions: ${b2.rps.toFixed(0)} req/s`);
      } finally {
        await svc2.stop();
      }
    }

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

// ------------------------------------------------------------------------------ report

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');

function rows(create: CreateCost[], pool: PoolResult[], lifecycle: Lifecycle, opts: Options, http: Summary | null): Row[] {
  const out: Row[] = [];
  if (http) out.push({ figure: `HTTP round trip to the service, GET /health, median ms (n=${http.n})`, broker: f2(http.median), baseline: '–', ratio: null, target: '–', met: null });
  const le = (r: number, limit: number) => (Number.isFinite(r) ? r <= limit : null);
  const names: Record<string, string> = { imap: 'IMAP (plain)', pop3: 'POP3 (plain)', imaps: 'IMAP over TLS' };
  for (const c of create) {
    const b = c.variants.broker!.ms, bare = c.variants.bare!.ms;
    const what = c.protocol === 'pop3' ? 'bare node-pop3 connect+USER/PASS+STAT+QUIT (same wire work)' : 'bare imapflow connect+login+logout';
    out.push({ figure: `${names[c.protocol]} create+close, median ms (n=${c.iterations})`, broker: `${f2(b.median)} (+${f2(b.median - bare.median)})`, baseline: `${f2(bare.median)} (${what})`, ratio: ratio(b.median, bare.median), target: '<= 1.10x', met: le(ratio(b.median, bare.median), 1.1) });
    out.push({ figure: `${names[c.protocol]} create+close, p99 ms`, broker: f2(b.p99), baseline: f2(bare.p99), ratio: ratio(b.p99, bare.p99), target: '–', met: null });
    const st = c.variants.bareStatus?.ms;
    if (st) {
      out.push({ figure: `${names[c.protocol]} create+close vs the same wire work, median ms`, broker: f2(b.median), baseline: `${f2(st.median)} (bare imapflow connect+login+STATUS INBOX+logout)`, ratio: ratio(b.median, st.median), target: '<= 1.10x', met: le(ratio(b.median, st.median), 1.1) });
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
      out.push({ figure: `N=${p.n}: login rate Dovecot saw during recovery, peak (median) per second`, broker: `${r.peakLoginsPerSec} (${Number.isFinite(median) ? median : '–'})`, baseline: `${r.capPerSec} (MSB_RECONNECT_RATE_PER_SEC)`, ratio: ratio(r.peakLoginsPerSec, r.capPerSec), target: 'peak <= 1.1x cap', met: r.peakLoginsPerSec <= 1.1 * r.capPerSec });
    } else if (r) {
      out.push({ figure: `N=${p.n}: recovery after a server restart, s`, broker: `not measured: the service build has no MSB_RECONNECT_RATE_PER_SEC; after 15 s: ${JSON.stringify(r.statesAtEnd)}`, baseline: `${f2(r.n / r.capPerSec)} (N / cap)`, ratio: null, target: '< 60 s', met: null });
    }
  }
  const maxHeld = Math.max(0, ...pool.map((p) => p.n));
  out.push({ figure: 'most sessions held in one service process (this run)', broker: String(maxHeld), baseline: '–', ratio: null, target: '10,000', met: opts.quick ? null : maxHeld >= 10_000 });
  return out;
}

function chart(pool: PoolResult[], m: ReturnType<typeof machine>, opts: Options, date: string): string {
  const pts = (f: (p: PoolResult) => number | undefined) => pool.map((p) => ({ x: p.n, y: f(p) ?? Number.NaN }));
  return svgChart(
    [
      {
        title: 'Memory per held IMAP session',
        yLabel: 'KiB per session',
        series: [
          { label: 'broker RSS', color: '#1f77b4', points: pts((p) => p.broker.rssPerSessionKiB) },
          { label: 'bare imapflow RSS', color: '#ff7f0e', points: pts((p) => p.bare?.rssPerSessionKiB) },
          { label: 'broker heap (after GC)', color: '#1f77b4', dashed: true, points: pts((p) => p.broker.heapPerSessionKiB) },
          { label: 'bare imapflow heap (after GC)', color: '#ff7f0e', dashed: true, points: pts((p) => p.bare?.heapPerSessionKiB) },
        ],
      },
      {
        title: 'Recovery after a Dovecot restart',
        yLabel: 'seconds until all connected',
        series: [
          { label: `N / cap (${opts.ratePerSec}/s), the floor`, color: '#2ca02c', dashed: true, points: pts((p) => p.n / opts.ratePerSec) },
          { label: 'broker', color: '#1f77b4', points: pts((p) => p.recovery?.recoveryS ?? undefined) },
        ],
        hline: { y: 60, label: 'target 60 s' },
      },
    ],
    'sessions held (N)',
    `mail-session-broker bench${opts.quick ? ' --quick' : ''}, ${date.slice(0, 10)}; ${m.cores} x ${m.cpu}, ${m.memoryGiB} GiB, Node ${m.node}, Dovecot ${m.dovecot.split(' ')[0]}`,
  );
}

// ------------------------------------------------------------------------------ output

interface Results {
  mode: string;
  date: string;
  durationS: number;
  machine: ReturnType<typeof machine>;
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
  replicas?: ReplicaBenchResult | null;
  mailChange?: MailChangeResult | undefined;
}

/** Writes <base>.json, .md and .svg (rows are computed here from the measurements); returns the markdown. */
function writeOutputs(results: Results, base: string): string {
  const { machine: m, options: opts, background, notes, errors } = results;
  results.rows = [
    ...rows(results.create, results.pool, results.lifecycleEnvSupported, opts, results.httpRoundTripMs),
    ...(results.mailRead ? mailReadRows(results.mailRead) : []),
    ...(results.mailChange ? mailChangeRows(results.mailChange) : []),
    ...replicaRows(results.replicas),
  ];
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
  const md =
    `# mail-session-broker benchmark (${results.mode} run)\n\n` +
    `Measured ${results.date.slice(0, 16).replace('T', ' ')} UTC on ${m.cores} x ${m.cpu}, ${m.memoryGiB} GiB, ${m.kernel}; ` +
    `Node ${m.node}, Dovecot ${m.dovecot}, imapflow ${m.imapflow}, node-pop3 ${m.nodePop3}, Fastify ${m.fastify}. ` +
    `Everything on 127.0.0.1; run took ${results.durationS} s; load average ${background.loadavgBefore} before, ${background.loadavgAfter} after. ` +
    `Generated by \`npm run bench${opts.quick ? ' -- --quick' : ''}\` (bench/run.ts); ratio = broker / baseline.\n\n` +
    markdownTable(results.rows) +
    (notes.length ? `\nNotes:\n${notes.map((n) => `- ${n}`).join('\n')}\n` : '') +
    (errors.length ? `\n**The run failed:**\n\n\`\`\`\n${errors.join('\n')}\n\`\`\`\n` : '');
  writeFileSync(`${base}.md`, md);
  writeFileSync(`${base}.svg`, chart(results.pool, m, opts, results.date));
  return md;
}

// ------------------------------------------------------------------------------ main

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
  let replicas: ReplicaBenchResult | null = null;
  let mailChange: MailChangeResult | undefined;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'msb-bench-'));
  let dovecot: DovecotServer | undefined;
  let lifecycle: Lifecycle = { keepalive: false, reconnectRate: false, idleTimeout: false };
  if (opts.cpuProf) {
    cpuProfDir = path.join(tmp, 'profiles');
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
    dovecot = await startDovecot({ scale: true, users: { ...defaultUsers, ...Object.fromEntries(POOL_USERS) } });
    for (const user of [SEQ_USER, ...POOL_USERS.map(([u]) => u)]) {
      for (let i = 0; i < 3; i++) await dovecot.deliver(user, `From: bench@example.test\r\nTo: ${user}\r\nSubject: bench ${i}\r\nMessage-ID: <bench-${i}@example.test>\r\n\r\nHello ${i}.\r\n`);
    }

    if (!process.argv.includes('--replicas-only')) {
      // 1. create cost, in a service of its own
      const svc = await startService('create', tmp, serviceEnv(100, opts), { maxSockets: 1, cpuProfDir, headers: AUTH });
      try {
        httpRoundTrip = await httpFloor(svc, opts.creates);
        create = await createCost(svc, dovecot, opts);
      } finally {
        await svc.stop();
      }

      // 2-4. pool, inspect, recovery for each N
      for (const [i, n] of opts.ns.entries()) pool.push(await poolPhase(n, i === 0, dovecot, tmp, opts, lifecycle, errors));

      // the read side (bench/mail-read.ts), with a Dovecot and a service of its own
      mailRead = await measureMailRead({ quick: opts.quick, tmp, log });

      // the change side (bench/mail-change.ts): a bulk move against bare imapflow's
      mailChange = await measureMailChange({ quick: opts.quick, tmp, log });
    }

    // 5. replicas on Redis (bench/replicas.ts)
    if (!process.argv.includes('--no-replicas')) {
      replicas = await replicaBench({ dovecot, tmp, users: POOL_USERS, serviceEnv: (n, extra) => serviceEnv(n, opts, extra), headers: AUTH, log }, replicaOptions(opts.quick, opts));
      errors.push(...replicas.errors);
    }
  } catch (err) {
    errors.push((err as Error).stack ?? String(err));
    console.error(`[bench] FAILED: ${(err as Error).stack ?? String(err)}`);
  } finally {
    await dovecot?.close().catch((err: unknown) => errors.push(`stopping Dovecot: ${String(err)}`));
  }

  background.loadavgAfter = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const results: Results = {
    mode: opts.quick ? 'quick' : 'full',
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
    replicas,
    mailChange,
  };
  const outDir = path.join(ROOT, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const base = path.join(outDir, opts.out);
  const durationS = results.durationS;
  console.log(`\n${writeOutputs(results, base)}`);
  console.log(`[bench] wrote ${path.relative(ROOT, base)}.{json,md,svg} in ${durationS} s${errors.length ? `; service/holder logs kept in ${tmp}` : ''}`);
  if (cpuProfDir) console.log(`[bench] CPU profiles in ${cpuProfDir}: summarise with npx tsx bench/profile-top.ts ${cpuProfDir}/*.cpuprofile`);
  if (!errors.length && !cpuProfDir) rmSync(tmp, { recursive: true, force: true });
  return errors.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
