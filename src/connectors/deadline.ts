import { AppError } from '../errors.js';

/**
 * Settles with `promise`, or rejects with a MAIL_TIMEOUT after `ms`, calling `onTimeout` so the caller
 * can tear the connection down (libraries such as node-pop3 can leave a command pending forever).
 */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new AppError('MAIL_TIMEOUT', `${what}: no answer within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
