// 4. Recovery: restart Dovecot while the service holds N sessions; time until all are connected again and the
// login rate Dovecot saw (followed in its log, cheap for the service).
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DovecotServer } from '../test/harness/dovecot.js';
import type { Service } from './lib/children.js';
import type { Options } from './lib/options.js';
import { round, summarize } from './lib/stats.js';

export interface Recovery {
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
export async function measureRecovery(svc: Service, dovecot: DovecotServer, n: number, opts: Options, reconnectSupported: boolean): Promise<Recovery> {
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
  const otherBefore = tail.other;
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
    otherLoginLines: tail.other - otherBefore,
    timeline,
  };
}

/** How many of the service's sessions are in each state. */
export async function listStates(svc: Service): Promise<Record<string, number>> {
  const res = await svc.http.expect('GET', '/v1/sessions', [200]);
  const counts: Record<string, number> = {};
  for (const s of (JSON.parse(res.text) as { sessions: { state: string }[] }).sessions) counts[s.state] = (counts[s.state] ?? 0) + 1;
  return counts;
}
