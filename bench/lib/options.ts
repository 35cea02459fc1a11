// The benchmark's options: `npm run bench [-- --quick] [--only=...] [--no-replicas | --replicas-only] [--link=10ms] ...`
// (see parseOptions).

/** The measurements of a run, in the order they run. */
export const MEASUREMENTS = ['create', 'pool', 'recovery', 'churn', 'read', 'change', 'events', 'replicas'];

export interface Options {
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
  /** Set by the runner when cpuProf: where the services write their profiles. */
  cpuProfDir?: string | undefined;
  /** --link=10ms: the mail traffic of the service and the bare clients goes through Toxiproxy with this latency each way (0 = loopback). */
  linkMs: number;
  /** Pool sizes of the recovery with default settings (IMAP over TLS). */
  recoveryNs: number[];
  /** Create/refresh/close cycles of the churn measurement. */
  churnCycles: number;
  /** The measurements to run (MEASUREMENTS); all by default. */
  only: Set<string>;
  out: string;
  /** Whole-run watchdog. */
  maxMinutes: number;
}

export function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = quick
    ? { quick, ns: [200], creates: 50, warmup: 5, concurrency: 50, connections: 32, inspectS: 5, inspectRounds: 2, idleS: 10, settleMs: 2000, keepaliveMs: 60_000, ratePerSec: 250, downtimeMs: 1000, defaultAgeN: 200, skipBuild: false, cpuProf: false, linkMs: 0, recoveryNs: [200], churnCycles: 1000, only: new Set(MEASUREMENTS), out: 'quick', maxMinutes: 10 }
    : { quick, ns: [1000, 5000, 10_000], creates: 500, warmup: 20, concurrency: 50, connections: 32, inspectS: 10, inspectRounds: 3, idleS: 60, settleMs: 5000, keepaliveMs: 60_000, ratePerSec: 250, downtimeMs: 2000, defaultAgeN: 1000, skipBuild: false, cpuProf: false, linkMs: 0, recoveryNs: [1000, 2000], churnCycles: 20_000, only: new Set(MEASUREMENTS), out: 'latest', maxMinutes: 150 };
  for (const arg of argv) {
    const [key, value = ''] = arg.replace(/^--/, '').split('=');
    const num = Number(value);
    switch (key) {
      case 'quick': break;
      // the replica part (bench/replicas.ts): skip it, or run only it (applied after the loop, whatever the order)
      case 'no-replicas': case 'replicas-only': break;
      case 'n': o.ns = value.split(',').map(Number).filter((x) => Number.isInteger(x) && x > 0); break;
      case 'creates': o.creates = num; break;
      case 'recovery-n': o.recoveryNs = value.split(',').map(Number).filter((x) => Number.isInteger(x) && x > 0); break;
      case 'churn-cycles': o.churnCycles = num; break;
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
      case 'link': {
        const m = /^(\d+)ms$/.exec(value);
        if (!m || Number(m[1]) <= 0) throw new Error('--link: give the latency each way, like --link=10ms');
        o.linkMs = Number(m[1]);
        break;
      }
      case 'only': {
        const wanted = value.split(',').filter(Boolean);
        const unknown = wanted.filter((w) => !MEASUREMENTS.includes(w));
        if (unknown.length || !wanted.length) throw new Error(`--only: give some of ${MEASUREMENTS.join(',')}`);
        o.only = new Set(wanted);
        break;
      }
      default: throw new Error(`unknown option ${arg}; options: --quick --n=1000,5000 --creates=N --concurrency=N --connections=N --inspect-s=S --inspect-rounds=N --idle-s=S --keepalive-ms=MS --rate=PER_S --default-age-n=N --skip-build --cpu-prof --link=10ms --only=${MEASUREMENTS.join(',')} --no-replicas --replicas-only --recovery-n=1000,2000 --churn-cycles=N --out=NAME; or --render=RESULTS.json`);
    }
  }
  if (argv.includes('--replicas-only')) o.only = new Set(['replicas']);
  if (argv.includes('--no-replicas')) o.only.delete('replicas');
  if (!o.only.size) throw new Error('--no-replicas with --replicas-only (or --only=replicas) leaves nothing to measure');
  // the link mode measures create cost only (a login over a 20 ms round trip takes ~0.2 s: fewer runs)
  if (o.linkMs) {
    o.only = new Set(['create']);
    if (!argv.some((a) => a.startsWith('--creates='))) o.creates = quick ? 20 : 100;
    o.warmup = Math.min(o.warmup, 5);
    if (!argv.some((a) => a.startsWith('--out='))) o.out = `link-${o.linkMs}ms${quick ? '-quick' : ''}`;
  }
  if (!o.ns.length) throw new Error('--n: give pool sizes like --n=1000,5000');
  return o;
}
