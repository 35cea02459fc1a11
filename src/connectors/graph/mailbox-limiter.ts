/**
 * Microsoft Graph lets one app have at most 4 requests in flight per mailbox; a fifth is answered 429
 * ("MailboxConcurrency"). One session already runs one operation at a time, but several sessions on the
 * same mailbox (bots sharing a shared mailbox, a download beside a listing) could exceed it. Every Graph
 * request takes a slot of its mailbox's key here first, and gives it back when its answer was read (or,
 * for a download, when the stream closed). A JSON batch takes as many slots as Outlook runs of its
 * requests at once (up to 4), since each of them counts against the same limit.
 *
 * Hand-written rather than p-limit: a waiter must give up at its request's deadline, a slot must be
 * held past the function that took it (a stream outlives the call that opened it), and one waiter may
 * need several slots at once (taken together, so two batches cannot each hold half and wait forever).
 */
export class MailboxLimiter {
  readonly #capacity: number;
  readonly #keys = new Map<string, { active: number; waiting: { weight: number; wake: () => void }[] }>();

  constructor(capacity = 4) {
    this.#capacity = capacity;
  }

  /**
   * Waits for `weight` slots of `key` (default 1, at most the capacity) until `deadline` (epoch ms);
   * resolves with the function that gives them back (safe to call more than once), or with undefined
   * when the deadline passed first. Waiters are served in order: a large one is not overtaken.
   */
  acquire(key: string, deadline: number, weight = 1): Promise<(() => void) | undefined> {
    const need = Math.max(1, Math.min(this.#capacity, Math.floor(weight)));
    let entry = this.#keys.get(key);
    if (!entry) {
      entry = { active: 0, waiting: [] };
      this.#keys.set(key, entry);
    }
    const state = entry;
    const wakeWaiters = () => {
      while (state.waiting.length > 0 && state.active + state.waiting[0]!.weight <= this.#capacity) state.waiting.shift()!.wake();
      if (state.active === 0 && state.waiting.length === 0) this.#keys.delete(key);
    };
    const grant = () => {
      state.active += need;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        state.active -= need;
        wakeWaiters();
      };
    };
    if (state.waiting.length === 0 && state.active + need <= this.#capacity) return Promise.resolve(grant());
    return new Promise((resolve) => {
      const waiter = {
        weight: need,
        wake: () => {
          clearTimeout(timer);
          resolve(grant());
        },
      };
      const timer = setTimeout(() => {
        const at = state.waiting.indexOf(waiter);
        if (at >= 0) state.waiting.splice(at, 1);
        // a large waiter that gave up may have held back smaller ones behind it
        wakeWaiters();
        resolve(undefined);
      }, Math.max(0, deadline - Date.now()));
      state.waiting.push(waiter);
    });
  }

  /** Requests in flight for `key` (for tests and metrics). */
  active(key: string): number {
    return this.#keys.get(key)?.active ?? 0;
  }
}
