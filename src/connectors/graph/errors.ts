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
  /**
   * What the request named besides the mailbox: a 404 on it (or a malformed id) is that item's
   * not-found code, never GRAPH_MAILBOX_NOT_FOUND; the mailbox itself was found when the session connected.
   */
  item?: GraphItem;
  /** The request changes the mailbox (PATCH, POST, DELETE): a 403 means the app may read but not do this. */
  write?: boolean;
  /** The permission a 403 on this request names (default Mail.ReadWrite; sending needs Mail.Send). */
  permission?: GraphPermission;
}

export type GraphPermission = 'Mail.ReadWrite' | 'Mail.Send';

export type GraphItem = 'message' | 'folder' | 'attachment';

const ITEM_CODES = { message: 'MESSAGE_NOT_FOUND', folder: 'FOLDER_NOT_FOUND', attachment: 'ATTACHMENT_NOT_FOUND' } as const;
const ITEM_WORDS = {
  message: 'no such message (moved to another mailbox, deleted, or not an id of this session)',
  folder: 'the folder no longer exists',
  attachment: 'the message has no such attachment',
} as const;
/** Graph's codes for a 404 about the mailbox rather than the item a request named. */
const MAILBOX_CODES = new Set(['ErrorInvalidUser', 'MailboxNotEnabledForRESTAPI', 'MailboxNotHostedInExchangeOnline', 'ResourceNotFound']);
/** Graph answers 400 to an id it cannot read: for us that id names nothing. */
const BAD_ID_CODES = new Set(['ErrorInvalidIdMalformed', 'ErrorInvalidId']);

/**
 * Item-level answers: 404 ErrorItemNotFound (or a malformed id) on a message, folder or attachment is
 * that item's not-found code (the session stays connected); a 403 on a change names the missing write
 * permission. Undefined when the answer is not item-level.
 */
function toItemError(ctx: GraphErrorContext, where: string, tail: string): AppError | undefined {
  const { status, graphCode, item } = ctx;
  if (item && ((status === 404 && !MAILBOX_CODES.has(graphCode ?? '')) || (status === 400 && BAD_ID_CODES.has(graphCode ?? '')))) {
    return new AppError(ITEM_CODES[item], `${where}: ${ITEM_WORDS[item]} (HTTP ${status})${tail}`);
  }
  if (ctx.write && status === 403) {
    const send = ctx.permission === 'Mail.Send';
    return new AppError(
      'GRAPH_ACCESS_DENIED',
      `${where} refused to ${send ? 'send mail as' : 'change a message in'} mailbox ${ctx.mailbox} (HTTP 403)${tail}: the app registration needs the Microsoft Graph permission ${
        send ? 'Mail.Send (Mail.Send.Shared and Send As rights for another user\'s mailbox)' : 'Mail.ReadWrite (Mail.ReadWrite.Shared for another user\'s mailbox)'
      }, with admin consent`,
    );
  }
  return undefined;
}

/**
 * Maps a Microsoft Graph answer or transport failure to the same stable codes as the other protocols:
 * 401 = the token was refused (after one fresh token), 403 = access to the mailbox refused, 404 = no
 * such mailbox, 429 / 5xx after the retries = retry later (with retryAfterSeconds). A request about an
 * item (message, folder, attachment) maps its 404 to that item's code first (toItemError).
 */
export function toGraphError(ctx: GraphErrorContext): AppError {
  const where = `Microsoft Graph ${ctx.host}${ctx.port === 443 ? '' : `:${ctx.port}`}`;
  const said = [ctx.graphCode, ctx.graphMessage ? scrub(ctx.graphMessage, ctx.secrets) : undefined].filter(Boolean).join(': ');
  const tail = said ? ` (${said})` : '';
  const retry = ctx.retryAfterSeconds !== undefined ? { retryAfterSeconds: Math.max(1, Math.ceil(ctx.retryAfterSeconds)) } : {};
  const tries = ctx.attempts !== undefined && ctx.attempts > 1 ? ` after ${ctx.attempts} attempts` : '';
  const s = ctx.status;
  const itemError = toItemError(ctx, where, tail);
  if (itemError) return itemError;
  if (s === 401) {
    return new AppError(
      'MAIL_AUTH_FAILED',
      `${where} refused the access token (HTTP 401)${tail}: check the app registration's Microsoft Graph permissions (Mail.ReadWrite, Mail.ReadWrite.Shared for another mailbox, or the application permission Mail.ReadWrite) and admin consent`,
    );
  }
  if (s === 403) return new AppError('GRAPH_ACCESS_DENIED', `${where} refused access to mailbox ${ctx.mailbox} (HTTP 403)${tail}`);
  if (s === 404) return new AppError('GRAPH_MAILBOX_NOT_FOUND', `${where} has no mailbox ${ctx.mailbox}, or it has no Exchange Online mailbox (HTTP 404)${tail}`);
  if (s === 429) return new AppError('GRAPH_THROTTLED', `${where} throttled the request (HTTP 429)${tries}${tail}: retry after retryAfterSeconds`, retry);
  if (s !== undefined && s >= 500) return new AppError('GRAPH_UNAVAILABLE', `${where} answered HTTP ${s}${tries}${tail}: retry after retryAfterSeconds`, retry);
  if (s === 400) return new AppError('MAIL_PROTOCOL_ERROR', `${where} refused the request (HTTP 400)${tail}`);
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

