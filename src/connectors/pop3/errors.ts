import { AppError, type ErrorCode } from '../../errors.js';
import { errorLike, field, toMailError, type ErrorLike, type MailErrorContext } from '../../net/errors.js';

/** Seconds to wait after a [LOGIN-DELAY] refusal when the server never said its delay (Cyrus counts in minutes). */
export const DEFAULT_LOGIN_DELAY_S = 60;

/**
 * The RFC 2449 / RFC 3206 response code of an -ERR reply ("[SYS/TEMP] ..."), upper case, without its
 * text; undefined when the reply has none. node-pop3 gives the reply without "-ERR " as the message.
 */
export function responseCode(e: ErrorLike): string | undefined {
  if (e.eventName !== 'error') return undefined;
  const m = /^\s*\[([A-Za-z0-9/-]{1,64})\]/.exec(field(e, 'message') ?? '');
  return m ? m[1]!.toUpperCase() : undefined;
}

/**
 * What a response code says about retrying (RFC 2449 8, RFC 3206): LOGIN-DELAY (logins too frequent),
 * IN-USE (another session holds the maildrop) and SYS/TEMP are temporary; AUTH is the credentials;
 * SYS/PERM is a lasting problem that no retry fixes. Codes are hierarchical ("SYS/TEMP/..."): the
 * prefix decides.
 */
function byResponseCode(code: string): ErrorCode | undefined {
  if (code === 'LOGIN-DELAY' || code === 'IN-USE' || code === 'SYS/TEMP' || code.startsWith('SYS/TEMP/')) return 'MAIL_TEMPORARILY_UNAVAILABLE';
  if (code === 'SYS/PERM' || code.startsWith('SYS/PERM/')) return 'MAIL_PERMANENTLY_UNAVAILABLE';
  if (code === 'AUTH' || code.startsWith('AUTH/')) return 'MAIL_AUTH_FAILED';
  return undefined;
}

/** node-pop3 reports an -ERR reply as an Error whose `command` is the command it answered. */
function pop3Code(e: ErrorLike): ErrorCode | undefined {
  const code = responseCode(e);
  const byCode = code ? byResponseCode(code) : undefined;
  if (byCode) return byCode;
  const command = field(e, 'command');
  // without a response code, a refused USER/PASS/AUTH is taken for the credentials (RFC 1939 servers say no more)
  if (e.eventName === 'error' && command !== undefined && /^(USER|PASS|AUTH|APOP)\b/i.test(command)) return 'MAIL_AUTH_FAILED';
  return undefined;
}

export interface Pop3ErrorContext extends Omit<MailErrorContext, 'protocol'> {
  /** The server's advertised LOGIN-DELAY in seconds, when known: how long a [LOGIN-DELAY] refusal asks to wait. */
  loginDelaySeconds?: number | undefined;
}

/** Maps a node-pop3 rejection to a stable code; a [LOGIN-DELAY] refusal says when to try again. */
export function toPop3Error(err: unknown, ctx: Pop3ErrorContext): AppError {
  const mapped = toMailError(err, { ...ctx, protocol: 'pop3' }, pop3Code);
  if (err instanceof AppError || responseCode(errorLike(err)) !== 'LOGIN-DELAY') return mapped;
  const wait = ctx.loginDelaySeconds && ctx.loginDelaySeconds > 0 ? ctx.loginDelaySeconds : DEFAULT_LOGIN_DELAY_S;
  return new AppError(mapped.code, mapped.message, { retryAfterSeconds: wait });
}
