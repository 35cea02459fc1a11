import type { Config } from '../config.js';

/**
 * When a mail server restarts, every session on it reconnects at once. The gate spaces those attempts out
 * per mail host, so a pool spanning many hosts does not queue them all behind one cap, and adapts the rate
 * to how the host copes (AIMD, as TCP does): each fast login raises that host's rate a little, a refusal,
 * a timeout or a slow login halves it (at most once per `slowMs`, so one burst of failures counts once).
 *
 * The pool calls it through the small ReconnectGate interface only, so that a cluster can wrap it (e.g. a
 * fleet-wide token bucket in front of the per-host rate) without the sessions knowing.
 */

/** How an attempt went; `overload`: the failure says the host is down or overwhelmed (refused, reset, timed out). */
export interface AttemptReport {
  ok: boolean;
  /** From the turn being granted to the attempt's end. */
  ms: number;
  overload?: boolean;
}

export interface ReconnectGate {
  /** Waits for a turn to connect to `host`; call the returned function once with how the attempt went. */
  acquire(host: string): Promise<(report: AttemptReport) => void>;
  /** Drops every waiter (they never resolve); shutdown. */
  stop(): void;
}

export interface AdaptiveGateOptions {
  /** The rate each host starts at, attempts per second; 0 = no cap at all. */
  startPerSec: number;
  /** The most the rate of one host may rise to. */
  maxPerSec: number;
  /** A login slower than this counts as a sign of overload. */
  slowMs: number;
  /** Clock and timer, for tests. */
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

const NOOP_REPORT = (): void => {};

interface HostState {
  rate: number;
  tokens: number;
  last: number;
  waiting: (() => void)[];
  timer: unknown;
  lastDecreaseAt: number;
  lastUsedAt: number;
}

/** Hosts unused for this long are forgotten (their rate starts over): the map does not grow with every host ever seen. */
const FORGET_AFTER_MS = 10 * 60_000;

export class AdaptiveReconnectGate implements ReconnectGate {
  readonly #o: Required<AdaptiveGateOptions>;
  readonly #minPerSec: number;
  readonly #hosts = new Map<string, HostState>();
  #lastSweep = 0;

  constructor(options: AdaptiveGateOptions) {
    this.#o = {
      now: () => Date.now(),
      setTimer: (fn, ms) => setTimeout(fn, ms).unref(),
      clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
      ...options,
      maxPerSec: Math.max(options.startPerSec, options.maxPerSec),
    };
    // halving stops here: a host that refuses everything still gets a probe every so often
    this.#minPerSec = Math.max(1, Math.min(options.startPerSec, 5));
  }

  /** The current rate of a host (attempts per second), or undefined when it has none yet. For metrics and tests. */
  rate(host: string): number | undefined {
    return this.#hosts.get(host)?.rate;
  }

  acquire(host: string): Promise<(report: AttemptReport) => void> {
    if (this.#o.startPerSec <= 0) return Promise.resolve(NOOP_REPORT);
    const h = this.#host(host);
    this.#refill(h);
    const grant = (): ((report: AttemptReport) => void) => {
      const granted = this.#o.now();
      let reported = false;
      return (report) => {
        if (reported) return;
        reported = true;
        this.#report(h, report, this.#o.now() - granted);
      };
    };
    if (h.tokens >= 1 && h.waiting.length === 0) {
      h.tokens -= 1;
      return Promise.resolve(grant());
    }
    return new Promise((resolve) => {
      h.waiting.push(() => resolve(grant()));
      this.#schedule(h);
    });
  }

  stop(): void {
    for (const h of this.#hosts.values()) {
      if (h.timer !== undefined) this.#o.clearTimer(h.timer);
      h.timer = undefined;
      h.waiting = [];
    }
  }

  #host(host: string): HostState {
    const now = this.#o.now();
    if (now - this.#lastSweep > FORGET_AFTER_MS) {
      this.#lastSweep = now;
      for (const [name, h] of this.#hosts) if (h.waiting.length === 0 && now - h.lastUsedAt > FORGET_AFTER_MS) this.#hosts.delete(name);
    }
    let h = this.#hosts.get(host);
    if (!h) {
      const rate = this.#o.startPerSec;
      h = { rate, tokens: burst(rate), last: now, waiting: [], timer: undefined, lastDecreaseAt: -Infinity, lastUsedAt: now };
      this.#hosts.set(host, h);
    }
    h.lastUsedAt = now;
    return h;
  }

  #report(h: HostState, report: AttemptReport, ms: number): void {
    const slow = Math.max(ms, report.ms) > this.#o.slowMs;
    if (report.ok && !slow) {
      // additive increase per fast login: the rate grows with the logins the host handles well
      h.rate = Math.min(this.#o.maxPerSec, h.rate + 1);
      return;
    }
    if (!slow && !report.overload) return; // e.g. a wrong password: says nothing about the host's load
    const now = this.#o.now();
    if (now - h.lastDecreaseAt < this.#o.slowMs) return;
    h.lastDecreaseAt = now;
    h.rate = Math.max(this.#minPerSec, h.rate / 2);
    h.tokens = Math.min(h.tokens, burst(h.rate));
  }

  #refill(h: HostState): void {
    const now = this.#o.now();
    h.tokens = Math.min(burst(h.rate), h.tokens + ((now - h.last) / 1000) * h.rate);
    h.last = now;
  }

  #schedule(h: HostState): void {
    if (h.timer !== undefined) return;
    h.timer = this.#o.setTimer(() => {
      h.timer = undefined;
      this.#refill(h);
      while (h.tokens >= 1 && h.waiting.length > 0) {
        h.tokens -= 1;
        h.waiting.shift()!();
      }
      if (h.waiting.length > 0) this.#schedule(h);
    }, Math.max(1, Math.ceil(1000 / h.rate)));
  }
}

/** The gate the MSB_RECONNECT_RATE_* settings describe: this process's, per mail host. */
export function reconnectGateFor(c: Pick<Config, 'MSB_RECONNECT_RATE_PER_SEC' | 'MSB_RECONNECT_RATE_MAX_PER_SEC' | 'MSB_RECONNECT_SLOW_LOGIN_MS'>): AdaptiveReconnectGate {
  return new AdaptiveReconnectGate({ startPerSec: c.MSB_RECONNECT_RATE_PER_SEC, maxPerSec: c.MSB_RECONNECT_RATE_MAX_PER_SEC, slowMs: c.MSB_RECONNECT_SLOW_LOGIN_MS });
}

/** Bucket size: a tenth of a second's worth, so no one-second window sees much more than the rate. */
function burst(rate: number): number {
  return Math.max(1, Math.ceil(rate / 10));
}
