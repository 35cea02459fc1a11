import { AppError } from '../../errors.js';
import { errorLike, explain, field, networkCode, scrub } from '../../net/errors.js';

export interface SmtpErrorContext {
  host: string;
  port: number;
  /** Values that must never reach a message, even if the server echoes them (the password and its SASL forms, the token). */
  secrets: readonly string[];
}

/**
 * The server's reply as a detail may carry it: secrets scrubbed (net/errors.ts) and every address replaced,
 * since a refusal quotes the recipient ("550 5.1.1 <bob@example.com>: unknown user") and error details of
 * 4xx/5xx answers are logged, where addresses must not go. The refused addresses are in `rejected`.
 */
function serverText(text: string | undefined, secrets: readonly string[]): string {
  if (!text) return '';
  return `: ${scrub(text, secrets).replace(/<?[^\s<>@]+@[^\s<>]+>?/g, '<address>')}`;
}

/** A rejected recipient as nodemailer reports it (a string; an object with an address for some envelopes). */
function recipients(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value.map((r: unknown) => (typeof r === 'string' ? r : typeof (r as { address?: unknown })?.address === 'string' ? (r as { address: string }).address : '')).filter(Boolean);
}

/**
 * Maps what nodemailer rejects with to the SMTP codes: a refused login (535 and other 5xx to AUTH) is
 * SMTP_AUTH_FAILED; a permanent refusal of the message or of every recipient (5xx) SMTP_REJECTED with the
 * reply code in `smtpCode` and the refused addresses in `rejected`; the server's SIZE limit
 * MESSAGE_TOO_LARGE; everything that another attempt may fix (a temporary 4xx reply, no connection, a
 * connection cut before the server took the message, TLS, timeouts) SMTP_UNAVAILABLE. In every case
 * nothing was reported sent.
 */
export function toSmtpError(err: unknown, ctx: SmtpErrorContext): AppError {
  if (err instanceof AppError) return err;
  const e = errorLike(err) as ReturnType<typeof errorLike> & { responseCode?: unknown; response?: unknown; originalCode?: unknown; rejected?: unknown };
  const where = `SMTP ${ctx.host}:${ctx.port}`;
  const code = field(e, 'code');
  const reply = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const said = serverText(typeof e.response === 'string' ? e.response : undefined, ctx.secrets);
  const smtp = reply !== undefined ? { smtpCode: reply } : {};
  const temporary = reply !== undefined && reply >= 400 && reply < 500;
  if (code === 'EAUTH') {
    if (temporary) return new AppError('SMTP_UNAVAILABLE', `${where}: the login was refused for now, try again later${said}`, smtp);
    return new AppError('SMTP_AUTH_FAILED', `${where}: the server rejected the username or password${said}`, smtp);
  }
  if (code === 'EENVELOPE' || code === 'EMESSAGE') {
    const rejected = recipients(e.rejected);
    const what = code === 'EMESSAGE' ? 'the message' : rejected.length > 0 ? `every recipient (${rejected.length})` : 'the sender';
    const extra = { ...smtp, ...(rejected.length > 0 ? { rejected } : {}) };
    if (code === 'EMESSAGE' && (reply === 552 || (reply === undefined && /size/i.test(field(e, 'message') ?? '')))) {
      return new AppError('MESSAGE_TOO_LARGE', `${where}: the message is larger than the server takes${said}`, extra);
    }
    if (temporary) return new AppError('SMTP_UNAVAILABLE', `${where}: the server deferred ${what}, try again later${said}`, extra);
    return new AppError('SMTP_REJECTED', `${where}: the server refused ${what}${said}`, extra);
  }
  if (temporary) return new AppError('SMTP_UNAVAILABLE', `${where}: the server asks to try again later${said}`, smtp);
  // a socket, DNS, TLS or timeout failure: read by Node's own code where nodemailer kept it
  const cause = networkCode({ ...e, code: typeof e.originalCode === 'string' ? e.originalCode : code === 'ETLS' ? 'EPROTO' : code });
  const how = cause === 'MAIL_PROTOCOL_ERROR' ? (code === 'ECONNECTION' ? explain('MAIL_NETWORK_ERROR') : explain(cause)) : explain(cause);
  return new AppError('SMTP_UNAVAILABLE', `${where}: ${how}${code ? ` (${code})` : ''}${said}`, smtp);
}
