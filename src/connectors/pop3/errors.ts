import type { AppError, ErrorCode } from '../../errors.js';
import { field, toMailError, type ErrorLike, type MailErrorContext } from '../../net/errors.js';

/** node-pop3 reports an -ERR reply as an Error whose `command` is the command it answered. */
function pop3Code(e: ErrorLike): ErrorCode | undefined {
  const command = field(e, 'command');
  if (e.eventName === 'error' && command !== undefined && /^(USER|PASS|AUTH|APOP)\b/i.test(command)) return 'MAIL_AUTH_FAILED';
  return undefined;
}

/** Maps a node-pop3 rejection to a stable code. */
export function toPop3Error(err: unknown, ctx: Omit<MailErrorContext, 'protocol'>): AppError {
  return toMailError(err, { ...ctx, protocol: 'pop3' }, pop3Code);
}
