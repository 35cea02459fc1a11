/** What reconnect attempts wait on: this process's bucket, or one shared by every replica (src/cluster/). */
export interface ReconnectLimiter {
  acquire(): Promise<void>;
  /** Drops every waiter (they never resolve); used at shutdown. */
  stop(): void;
}

/**
 * A token bucket shared by the pool: reconnect attempts take a token, so that a mail server coming back
 * after a restart is not hit by every session at once.
 */
export class RateLimiter implements ReconnectLimiter {
  readonly #perSecond: number;
  /** Bucket size: a tenth of a second's worth, so no one-second window sees much more than the rate. */
  readonly #burst: number;
  #tokens: number;
  #last = Date.now();
  #waiting: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;

  /** `perSecond` = 0 means unlimited. */
  constructor(perSecond: number) {
    this.#perSecond = perSecond;
    this.#burst = Math.max(1, Math.ceil(perSecond / 10));
    this.#tokens = this.#burst;
  }

  acquire(): Promise<void> {
    if (this.#perSecond <= 0) return Promise.resolve();
    this.#refill();
    if (this.#tokens >= 1 && this.#waiting.length === 0) {
      this.#tokens -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.#schedule();
    });
  }

  /** Drops every waiter (they never resolve); used at shutdown. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#waiting = [];
  }

  #refill(): void {
    const now = Date.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#perSecond);
    this.#last = now;
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#refill();
      while (this.#tokens >= 1 && this.#waiting.length > 0) {
        this.#tokens -= 1;
        this.#waiting.shift()!();
      }
      if (this.#waiting.length > 0) this.#schedule();
    }, Math.max(1, Math.ceil(1000 / this.#perSecond)));
  }
}
