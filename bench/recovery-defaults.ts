// 7. Recovery with the default reconnect settings, the comparison issue 17 names: N IMAP sessions over TLS on one
// Dovecot, the server restarted; time until all are connected again (EmailEngine 2.79 measured side by side on
// such a setup: 1,000 after 9.4 s, 2,000 after 14 s) and whether the herd cost any login: sessions failed at the
// end, imap-login lines other than a login (connections dropped before or during authentication), and logins
// beyond N (attempts that had to be repeated). The service sets no MSB_RECONNECT_RATE_* (defaults: per host,
// adaptive).
import type { DovecotServer } from '../test/harness/dovecot.js';
import { startService } from './lib/children.js';
import type { Options } from './lib/options.js';
import { AUTH, createMany, HOST, serviceEnv, type CreateBody } from './lib/targets.js';
import { log } from './lib/util.js';
import { measureRecovery, type Recovery } from './recovery.js';

export interface DefaultRecovery extends Recovery {
  /** Sessions in state failed when the run ended. */
  failedAtEnd: number;
}

export async function measureRecoveryDefaults(dovecot: DovecotServer, tmp: string, opts: Options): Promise<DefaultRecovery[]> {
  const out: DefaultRecovery[] = [];
  const tlsBody = (name: string, port: number, user: string, pass: string): CreateBody => ({ name, type: 'imap', host: HOST, port, secure: true, username: user, password: pass, tls: { ca: dovecot.caPem } });
  for (const n of opts.recoveryNs) {
    // the defaults: no MSB_RECONNECT_RATE_PER_SEC (serviceEnv sets it for the other measurements)
    const env = serviceEnv(n, opts);
    delete env.MSB_RECONNECT_RATE_PER_SEC;
    const svc = await startService(`recovery-${n}`, tmp, env, { maxSockets: opts.concurrency + 8, cpuProfDir: opts.cpuProfDir, headers: AUTH });
    try {
      log(`recovery with defaults: creating ${n} IMAP sessions over TLS`);
      await createMany(svc, 0, n, opts.concurrency, dovecot.ports.imaps, tlsBody);
      // the budget of measureRecovery is computed from ratePerSec: 50 is the default start rate of a host
      const r = await measureRecovery(svc, dovecot, n, { ...opts, ratePerSec: 50 }, true);
      const states = r.statesAtEnd;
      out.push({ ...r, failedAtEnd: states.failed ?? 0 });
      log(`  recovery of ${n} (TLS, defaults): ${r.recoveryS === null ? `not all back ${JSON.stringify(states)}` : `${r.recoveryS} s`}, peak ${r.peakLoginsPerSec} logins/s, ${r.loginsAfterRestart} logins, ${r.otherLoginLines} other imap-login lines`);
      svc.child.assertAlive();
    } finally {
      await svc.stop();
    }
  }
  return out;
}
