/**
 * Microsoft Graph lets one app have at most 4 requests in flight per mailbox; a fifth is answered 429
 * ("MailboxConcurrency"). One session already runs one operation at a time, but several sessions on the
 * same mailbox (bots sharing a shared mailbox, a download beside a listing) could exceed it. Every Graph
 * request takes a slot of its mailbox's key here first, and gives it back when its answer was read (or,
 * for a download, when the stream closed).
 *
 * Hand-written rather than p-limit: a waiter must give up at its request's deadline, and a slot must be
 * held past the function that took it (a stream outlives the call that opened it).
 */
export class MailboxLimiter {
  readonly #capacity: number;
  readonly #keys = new Map<string, { active: number; waiting: Array<() => void> }>();

  constructor(capacity = 4) {
    this.#capacity = capacity;
  }

  /**
   * Waits for a slot of `key` until `deadline` (epoch ms); resolves with the function that gives it back
   * (safe to call more than once), or with undefined when the deadline passed first.
   */
  acquire(key: string, deadline: number): Promise<(() => void) | undefined> {
    let entry = this.#keys.get(key);
    if (!entry) {
      entry = { active: 0, waiting: [] };
      this.#keys.set(key, entry);
    }
    const state = entry;
    const grant = () => {
      state.active += 1;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        state.active -= 1;
        const next = state.waiting.shift();
        if (next) next();
        else if (state.active === 0) this.#keys.delete(key);
      };
    };
    if (state.active < this.#capacity) return Promise.resolve(grant());
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(grant());
      };
      const timer = setTimeout(() => {
        const at = state.waiting.indexOf(wake);
        if (at >= 0) state.waiting.splice(at, 1);
        resolve(undefined);
      }, Math.max(0, deadline - Date.now()));
      state.waiting.push(wake);
    });
  }

  /** Requests in flight for `key` (for tests and metrics). */
  active(key: string): number {
    return this.#keys.get(key)?.active ?? 0;
  }
}
