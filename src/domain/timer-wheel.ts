/**
 * One timer structure for every session's keepalives, reconnect delays and idle expiry: a binary min-heap of
 * due times driven by a single Node timer, instead of two or three Node timers per session.
 *
 * Why: 10,000 sessions with jittered periods made Node keep one timer list per distinct duration, each with
 * its own native handle; here one timer is armed at the earliest due time, rounded up to `resolutionMs`, so
 * sessions that fall due within one resolution step run in one wake-up. Timers never keep the process alive
 * (the Node timer is unref'd), as the per-session timers before them.
 *
 * Cancelling marks the entry; marked entries are dropped when they reach the top of the heap, or all at once
 * when they are more than half of it, so cancelled keepalives of closed sessions do not pile up.
 */

export interface TimerHandle {
  /** Stops the callback from running; safe to call more than once, and after it ran. */
  cancel(): void;
}

/** What the wheel needs from the platform: a clock and one (re-armable) timer. Tests pass a fake. */
export interface TimerHost {
  now(): number;
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const nodeHost: TimerHost = {
  now: () => Date.now(),
  set: (fn, ms) => setTimeout(fn, ms).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** The longest delay a Node timer takes (2^31 - 1 ms, about 24.8 days). */
const MAX_NODE_TIMER_MS = 2 ** 31 - 1;

interface Entry {
  due: number;
  /** Insertion order: entries due at the same time run in the order they were scheduled. */
  seq: number;
  fn: (() => void) | undefined;
}

export class TimerWheel {
  readonly #host: TimerHost;
  readonly #resolutionMs: number;
  readonly #heap: Entry[] = [];
  #seq = 0;
  #cancelled = 0;
  #armed: { handle: unknown; at: number } | undefined;
  #stopped = false;

  /** resolutionMs: how late a callback may run at most, in exchange for batching (default 100 ms). */
  constructor(options: { resolutionMs?: number; host?: TimerHost } = {}) {
    this.#host = options.host ?? nodeHost;
    this.#resolutionMs = Math.max(1, options.resolutionMs ?? 100);
  }

  /** Live (not cancelled) timers. */
  get size(): number {
    return this.#heap.length - this.#cancelled;
  }

  /** Runs fn once, delayMs from now (never before; at most resolutionMs later). An error thrown by fn is not caught. */
  schedule(delayMs: number, fn: () => void): TimerHandle {
    if (this.#stopped) return { cancel() {} };
    const entry: Entry = { due: this.#host.now() + Math.max(0, delayMs), seq: this.#seq++, fn };
    this.#push(entry);
    this.#arm();
    return {
      cancel: () => {
        if (!entry.fn) return;
        entry.fn = undefined;
        this.#cancelled += 1;
        if (this.#cancelled > 64 && this.#cancelled * 2 > this.#heap.length) this.#compact();
      },
    };
  }

  /** Cancels everything and refuses new timers (shutdown). */
  stop(): void {
    this.#stopped = true;
    if (this.#armed) this.#host.clear(this.#armed.handle);
    this.#armed = undefined;
    this.#heap.length = 0;
    this.#cancelled = 0;
  }

  /** Arms the one Node timer for the earliest live entry, unless it is armed early enough already. */
  #arm(): void {
    this.#dropCancelledTop();
    const top = this.#heap[0];
    if (!top) {
      if (this.#armed) this.#host.clear(this.#armed.handle);
      this.#armed = undefined;
      return;
    }
    const now = this.#host.now();
    // round up to the resolution: everything due in the same step shares one wake-up
    const at = Math.ceil(Math.max(top.due, now) / this.#resolutionMs) * this.#resolutionMs;
    if (this.#armed && this.#armed.at <= at) return;
    if (this.#armed) this.#host.clear(this.#armed.handle);
    // Node fires a longer timer after 1 ms: a far one wakes at the limit and arms again (#fire runs nothing early)
    this.#armed = { handle: this.#host.set(() => this.#fire(), Math.min(MAX_NODE_TIMER_MS, Math.max(0, at - now))), at };
  }

  #fire(): void {
    this.#armed = undefined;
    const now = this.#host.now();
    try {
      for (;;) {
        this.#dropCancelledTop();
        const top = this.#heap[0];
        if (!top || top.due > now) break;
        this.#pop();
        const fn = top.fn!;
        top.fn = undefined;
        fn();
      }
    } finally {
      // also when a callback threw: the other sessions' timers must keep running
      this.#arm();
    }
  }

  #dropCancelledTop(): void {
    while (this.#heap.length > 0 && this.#heap[0]!.fn === undefined) {
      this.#pop();
      this.#cancelled -= 1;
    }
  }

  #compact(): void {
    const live = this.#heap.filter((e) => e.fn !== undefined);
    this.#heap.length = 0;
    this.#cancelled = 0;
    for (const e of live) this.#push(e);
  }

  #less(a: Entry, b: Entry): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  #push(entry: Entry): void {
    const h = this.#heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  #pop(): Entry | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
