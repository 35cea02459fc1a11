import type { AppError, ErrorCode } from '../../errors.js';
import { field, toMailError, type ErrorLike, type MailErrorContext } from '../../net/errors.js';

/** imapflow's signs of a refused login, read before the network codes. */
function imapCode(e: ErrorLike): ErrorCode | undefined {
  if (e.authenticationFailed === true || field(e, 'serverResponseCode') === 'AUTHENTICATIONFAILED') return 'MAIL_AUTH_FAILED';
  return undefined;
}

/** Maps an imapflow rejection or 'error' event to a stable code. */
export function toImapError(err: unknown, ctx: Omit<MailErrorContext, 'protocol'>): AppError {
  return toMailError(err, { ...ctx, protocol: 'imap' }, imapCode);
}
