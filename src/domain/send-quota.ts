import { AppError } from '../errors.js';

/**
 * Sends per principal per minute (a sliding window over the last 60 s), so that one bot cannot turn the
 * service into a spam cannon through a mailbox it holds. 0 = no limit.
 */
export class SendQuota {
  readonly #perMinute: number;
  readonly #sent = new Map<string, number[]>();

  constructor(perMinute: number) {
    this.#perMinute = perMinute;
  }

  /** Counts one send by `principal`, or throws SEND_RATE_LIMITED with when to try again. */
  take(principal: string, now = Date.now()): void {
    if (this.#perMinute <= 0) return;
    const recent = (this.#sent.get(principal) ?? []).filter((at) => at > now - 60_000);
    if (recent.length >= this.#perMinute) {
      const retryAfterSeconds = Math.max(1, Math.ceil((recent[0]! + 60_000 - now) / 1000));
      this.#sent.set(principal, recent);
      throw new AppError('SEND_RATE_LIMITED', `more than ${this.#perMinute} messages sent in the last minute`, { retryAfterSeconds });
    }
    recent.push(now);
    this.#sent.set(principal, recent);
  }
}
