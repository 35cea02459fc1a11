import { AppError } from '../../errors.js';
import { explain, field, networkCode, scrub, type ErrorLike } from '../../net/errors.js';

export interface GraphErrorContext {
  host: string;
  port: number;
  /** The mailbox the request was for: "me" or the /users/{id} value. */
  mailbox: string;
  /** HTTP status of Graph's answer; undefined when no answer came (transport failure). */
  status?: number;
  /** Graph's `error.code` and `error.message`, when the body had them. */
  graphCode?: string;
  graphMessage?: string;
  /** What Node's request failed with (code such as ECONNREFUSED), when no answer came. */
  transport?: unknown;
  /** For 429 / 5xx: when the caller may try again, from Retry-After or our own backoff. */
  retryAfterSeconds?: number;
  attempts?: number;
  secrets?: readonly string[];
}

/**
 * Maps a Microsoft Graph answer or transport failure to the same stable codes as the other protocols:
 * 401 = the token was refused (after one fresh token), 403 = access to the mailbox refused, 404 = no
 * such mailbox, 429 / 5xx after the retries = retry later (with retryAfterSeconds).
 */
export function toGraphError(ctx: GraphErrorContext): AppError {
  const where = `Microsoft Graph ${ctx.host}${ctx.port === 443 ? '' : `:${ctx.port}`}`;
  const said = [ctx.graphCode, ctx.graphMessage ? scrub(ctx.graphMessage, ctx.secrets) : undefined].filter(Boolean).join(': ');
  const tail = said ? ` (${said})` : '';
  const retry = ctx.retryAfterSeconds !== undefined ? { retryAfterSeconds: Math.max(1, Math.ceil(ctx.retryAfterSeconds)) } : {};
  const tries = ctx.attempts !== undefined && ctx.attempts > 1 ? ` after ${ctx.attempts} attempts` : '';
  const s = ctx.status;
  if (s === 401) {
    return new AppError(
      'MAIL_AUTH_FAILED',
      `${where} refused the access token (HTTP 401)${tail}: check the app registration's Microsoft Graph permissions (Mail.Read, Mail.Read.Shared for another mailbox, or the application permission Mail.Read) and admin consent`,
    );
  }
  if (s === 403) return new AppError('GRAPH_ACCESS_DENIED', `${where} refused access to mailbox ${ctx.mailbox} (HTTP 403)${tail}`);
  if (s === 404) return new AppError('GRAPH_MAILBOX_NOT_FOUND', `${where} has no mailbox ${ctx.mailbox}, or it has no Exchange Online mailbox (HTTP 404)${tail}`);
  if (s === 429) return new AppError('GRAPH_THROTTLED', `${where} throttled the request (HTTP 429)${tries}${tail}: retry after retryAfterSeconds`, retry);
  if (s !== undefined && s >= 500) return new AppError('GRAPH_UNAVAILABLE', `${where} answered HTTP ${s}${tries}${tail}: retry after retryAfterSeconds`, retry);
  if (s !== undefined) return new AppError('MAIL_PROTOCOL_ERROR', `${where}: unexpected answer HTTP ${s}${tail}`);
  if (ctx.transport instanceof AppError) return ctx.transport;
  const e = (typeof ctx.transport === 'object' && ctx.transport !== null ? ctx.transport : { message: String(ctx.transport) }) as ErrorLike;
  const code = networkCode(e);
  const libCode = field(e, 'code');
  const why = code === 'MAIL_TLS_FAILED' ? 'the TLS handshake failed (untrusted or mismatched certificate); give the CA in tls.ca or MSB_EXTRA_CA_FILE' : explain(code);
  const message = field(e, 'message');
  return new AppError(
    code === 'MAIL_PROTOCOL_ERROR' ? 'MAIL_NETWORK_ERROR' : code,
    `${where}: ${why}${libCode ? ` (${libCode})` : ''}${message ? `: ${scrub(message, ctx.secrets)}` : ''}`,
  );
}

