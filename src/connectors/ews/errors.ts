import { AppError } from '../../errors.js';
import { explain, networkCode, scrub, type ErrorLike } from '../../net/errors.js';

export interface EwsErrorContext {
  host: string;
  port: number;
  /** The transport error @ewsjs/xhr saw (axios, with Node's `code`), which the library's rejection drops. */
  transport?: unknown;
  /** The HTTP status of an answer the library could not read (transport.ts): a 500 that is no SOAP fault, a 456. */
  unreadable?: number | undefined;
  /** The EWS response code by name (e.g. ErrorAccessDenied) when the library gave it as a number. */
  ewsCode?: string;
  /** Whether the request carried an OAuth2 bearer token (for the advice on a 401). */
  bearer?: boolean;
  secrets?: readonly string[];
  /** What the request addressed, for the item-level answer when the server says it does not exist. */
  scope?: EwsItemScope | undefined;
}

/** What an EWS request addressed: an id that no longer resolves is that thing's NOT_FOUND, never a reconnect. */
export type EwsItemScope = 'message' | 'attachment' | 'folder';

/**
 * EWS response codes (a SOAP fault, or most often ResponseClass="Error" inside an HTTP 200) that say the
 * addressed object is gone or its id is not one of this mailbox's: an answer, not a broken link.
 */
const EWS_NOT_FOUND_CODES = new Set([
  'ErrorItemNotFound',
  'ErrorInvalidId',
  'ErrorInvalidIdEmpty',
  'ErrorInvalidIdMalformed',
  'ErrorInvalidIdMalformedEwsLegacyIdFormat',
  'ErrorInvalidIdXml',
  'ErrorInvalidIdStoreObjectIdTooLong',
  'ErrorInvalidIdMonikerTooLong',
  'ErrorInvalidIdTooManyAttachmentLevels',
  'ErrorInvalidIdNotAnItemAttachmentId',
]);
const EWS_ATTACHMENT_CODES = new Set(['ErrorInvalidAttachmentId', 'ErrorCannotOpenFileAttachment']);
const EWS_FOLDER_CODES = new Set(['ErrorFolderNotFound', 'ErrorParentFolderNotFound', 'ErrorToFolderNotFound', 'ErrorSyncFolderNotFound']);

function itemLevel(ewsCode: string, scope: EwsItemScope, where: string): AppError | undefined {
  if (EWS_FOLDER_CODES.has(ewsCode)) return new AppError('FOLDER_NOT_FOUND', `${where}: the folder no longer exists (${ewsCode})`);
  if (scope === 'attachment' && (EWS_ATTACHMENT_CODES.has(ewsCode) || EWS_NOT_FOUND_CODES.has(ewsCode))) {
    return new AppError('ATTACHMENT_NOT_FOUND', `${where}: no such attachment (${ewsCode})`);
  }
  if (EWS_NOT_FOUND_CODES.has(ewsCode)) {
    return scope === 'folder'
      ? new AppError('FOLDER_NOT_FOUND', `${where}: the folder no longer exists (${ewsCode})`)
      : new AppError('MESSAGE_NOT_FOUND', `${where}: no such message in this mailbox (${ewsCode})`);
  }
  return undefined;
}

/**
 * EWS response codes that mean "this identity may not open this mailbox" (or send as it): the caller's
 * settings, not the server.
 */
const EWS_ACCESS_CODES = new Set([
  'ErrorAccessDenied',
  'ErrorSendAsDenied',
  'ErrorImpersonateUserDenied',
  'ErrorImpersonationDenied',
  'ErrorNonExistentMailbox',
  'ErrorInvalidExchangeImpersonationHeader',
  'ErrorMailboxConfiguration',
  'ErrorNoApplicableProxyCASServersAvailable',
]);

function transportCode(transport: unknown, message: string): string | undefined {
  const code = typeof transport === 'object' && transport !== null ? (transport as ErrorLike).code : undefined;
  if (typeof code === 'string') return code === 'ECONNABORTED' ? 'ETIMEDOUT' : code;
  // without the transport error, only the library's message is left: read Node's code from it
  const m = /\b(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH)\b/.exec(message);
  if (m) return m[1];
  if (/certificate|self[- ]signed|\bSSL\b|\bTLS\b/i.test(message)) return 'CERT_UNTRUSTED';
  if (/^timeout of \d+ms exceeded$/.test(message)) return 'ETIMEDOUT';
  return undefined;
}

/**
 * Maps an ews-javascript-api rejection (SoapFaultDetails / ServiceResponseException: not `Error`s) to the
 * same codes as IMAP/POP3: 401 = credentials rejected, transport failures by Node's code, SOAP faults and
 * error responses = protocol error, unless they say access to the mailbox is denied, or (with a `scope`)
 * that the addressed message, attachment or folder does not exist (MESSAGE_NOT_FOUND and the like).
 */
export function toEwsError(err: unknown, ctx: EwsErrorContext): AppError {
  if (err instanceof AppError) return err;
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as Record<string, unknown>;
  const where = `EWS ${ctx.host}:${ctx.port}`;
  // only Exchange's own words are quoted; the library's other messages are its internals (a TypeError
  // from parsing a broken answer, "The request failed. ...") and say nothing a caller can act on
  const message = serverSaid(e) ? scrub(typeof e.message === 'string' ? e.message : '', ctx.secrets) : '';
  // SoapFaultDetails carries HttpStatusCode; an answer the library did not wrap (a 500 without a fault) is the raw XHR answer
  const status = typeof e.HttpStatusCode === 'number' ? e.HttpStatusCode : typeof e.status === 'number' ? e.status : undefined;
  const faultCode = typeof e.faultCode === 'string' ? e.faultCode.replace(/^\w+:/, '') : undefined;
  const ewsCode = ctx.ewsCode ?? faultCode;

  if (ctx.unreadable === 456) {
    return new AppError('MAIL_AUTH_FAILED', `${where}: Exchange says the account is locked (HTTP 456); it must be unlocked before it can be used`);
  }
  if (ctx.unreadable !== undefined) {
    // a transport failure, as far as the session is concerned: retried, never taken for a refusal
    return new AppError('MAIL_PROTOCOL_ERROR', `${where}: HTTP ${ctx.unreadable} with an answer that is not an EWS SOAP message (an overloaded server or a proxy in front of it?)`);
  }
  if (status === 401) {
    const advice = ctx.bearer
      ? 'Exchange refused the access token (HTTP 401): check that the app registration has the EWS permission (EWS.AccessAsUser.All, or full_access_as_app with impersonation) and admin consent'
      : 'Exchange rejected the username or password (HTTP 401)';
    return new AppError('MAIL_AUTH_FAILED', `${where}: ${advice}`);
  }
  if (status === 403 || (ewsCode && EWS_ACCESS_CODES.has(ewsCode))) {
    const what = ewsCode === 'ErrorSendAsDenied' ? 'sending as this mailbox was refused' : 'access to the mailbox was refused';
    return new AppError('EWS_ACCESS_DENIED', `${where}: ${what}${ewsCode ? ` (${ewsCode})` : ''}${message ? `: ${message}` : ''}`);
  }
  if (ewsCode === 'ErrorMessageSizeExceeded') {
    return new AppError('MESSAGE_TOO_LARGE', `${where}: the message is larger than Exchange accepts for this mailbox (ErrorMessageSizeExceeded)`);
  }
  const notFound = ewsCode && ctx.scope ? itemLevel(ewsCode, ctx.scope, where) : undefined;
  if (notFound) return notFound;
  if (ewsCode) return new AppError('MAIL_PROTOCOL_ERROR', `${where}: Exchange answered ${ewsCode}${message ? `: ${message}` : ''}`);
  if (status !== undefined && status !== 200) {
    return new AppError('MAIL_PROTOCOL_ERROR', `${where}: HTTP ${status} (is the URL an EWS endpoint, such as https://host/EWS/Exchange.asmx?)`);
  }
  // the answer was larger than the bound set on the HTTP client (maxContentLength): a download too large
  const transportMessage = typeof ctx.transport === 'object' && ctx.transport !== null ? String((ctx.transport as ErrorLike).message ?? '') : '';
  if (/maxContentLength size of \d+ exceeded/.test(`${transportMessage} ${typeof e.message === 'string' ? e.message : ''}`)) {
    return new AppError('DOWNLOAD_TOO_LARGE', `${where}: the answer was larger than this server downloads through EWS (MSB_EWS_MAX_DOWNLOAD_BYTES)`);
  }
  const code = transportCode(ctx.transport, typeof e.message === 'string' ? e.message : '');
  if (code) {
    const mapped = networkCode({ code });
    const why =
      mapped === 'MAIL_TLS_FAILED'
        ? 'the TLS handshake failed (untrusted or mismatched certificate); give the CA in tls.ca or MSB_EXTRA_CA_FILE'
        : explain(mapped);
    return new AppError(mapped === 'MAIL_PROTOCOL_ERROR' ? 'MAIL_NETWORK_ERROR' : mapped, `${where}: ${why} (${code})`);
  }
  return new AppError('MAIL_PROTOCOL_ERROR', `${where}: unexpected answer${message ? `: ${message}` : ' (not an EWS answer the client could read)'}`);
}

/**
 * Whether a rejection's message is Exchange's: a SOAP fault the library parsed (it has a fault code), or
 * an EWS error response (ServiceResponseException, with the Response it came in).
 */
function serverSaid(e: Record<string, unknown>): boolean {
  return (e.faultCode !== null && e.faultCode !== undefined) || (typeof e.Response === 'object' && e.Response !== null);
}
