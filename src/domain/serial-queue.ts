import { AppError } from '../errors.js';

/**
 * Runs tasks one at a time, in order. A task that cannot start within `waitMs` (the one before it is
 * stuck) fails with SESSION_BUSY instead of waiting forever; the queue order is kept all the same.
 */
export class SerialQueue {
  #tail: Promise<void> = Promise.resolve();

  run<T>(task: () => Promise<T>, waitMs: number): Promise<T> {
    const previous = this.#tail;
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    // the next task waits for the previous one AND this one, even if this one gives up waiting
    this.#tail = previous.then(() => mine);
    return new Promise<T>((resolve, reject) => {
      let started = false;
      const timer = setTimeout(() => {
        if (started) return;
        release();
        reject(new AppError('SESSION_BUSY', `another operation on this session has not finished within ${waitMs} ms`, { retryAfterSeconds: 1 }));
      }, waitMs);
      previous.then(() => {
        clearTimeout(timer);
        if (started) return;
        started = true;
        task().then(resolve, reject).finally(release);
      });
    });
  }
}
