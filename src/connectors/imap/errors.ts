import type { AppError, ErrorCode } from '../../errors.js';
import { field, toMailError, type ErrorLike, type MailErrorContext } from '../../net/errors.js';

/**
 * RFC 5530 response codes that say the refusal is not about the credentials: try again later (a
 * subsystem is down, another session holds something), or log in over TLS. imapflow marks every NO to a
 * login as authenticationFailed, so these are read first.
 */
const TEMPORARY_CODES = new Set(['UNAVAILABLE', 'INUSE']);

/** imapflow's signs of a refused login, read before the network codes. */
function imapCode(e: ErrorLike): ErrorCode | undefined {
  const responseCode = field(e, 'serverResponseCode')?.toUpperCase();
  if (responseCode && TEMPORARY_CODES.has(responseCode)) return 'MAIL_TEMPORARILY_UNAVAILABLE';
  if (responseCode === 'PRIVACYREQUIRED') return 'MAIL_TLS_REQUIRED';
  if (e.authenticationFailed === true || responseCode === 'AUTHENTICATIONFAILED') return 'MAIL_AUTH_FAILED';
  return undefined;
}

/** Maps an imapflow rejection or 'error' event to a stable code. */
export function toImapError(err: unknown, ctx: Omit<MailErrorContext, 'protocol'>): AppError {
  return toMailError(err, { ...ctx, protocol: 'imap' }, imapCode);
}
