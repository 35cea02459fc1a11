import { AppError, type ErrorCode } from './errors.js';

/**
 * The one place where errors from imapflow, node-pop3 and Node's sockets become stable codes.
 * Libraries reject with plain objects as well as Errors, so everything here reads fields defensively.
 */

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
  'EPROTO',
  'STARTTLS_INJECTION',
  'UPGRADE_TIMEOUT',
]);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ETIMEOUT', 'GREETING_TIMEOUT', 'CONNECT_TIMEOUT', 'ESOCKETTIMEDOUT', 'DEADLINE']);
const NETWORK_CODES = new Set([
  'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'NoConnection', 'EConnectionClosed',
]);

interface ErrorLike {
  code?: unknown;
  message?: unknown;
  authenticationFailed?: unknown;
  serverResponseCode?: unknown;
  responseText?: unknown;
  tlsFailed?: unknown;
  eventName?: unknown;
  command?: unknown;
}

function field(err: ErrorLike, key: keyof ErrorLike): string | undefined {
  const value = err[key];
  return typeof value === 'string' ? value : undefined;
}

export interface MailErrorContext {
  protocol: string;
  host: string;
  port: number;
  /** Values that must never reach a message, even if a server echoes them. */
  secrets?: readonly string[];
}

/** Removes secrets and control characters from server-provided text and bounds its length. */
export function scrub(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 3) out = out.split(secret).join('[redacted]');
  }
  // eslint-disable-next-line no-control-regex
  out = out.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return out.length > 300 ? `${out.slice(0, 300)}...` : out;
}

function classify(err: ErrorLike): ErrorCode {
  const code = field(err, 'code');
  const message = field(err, 'message') ?? '';
  if (err.authenticationFailed === true || field(err, 'serverResponseCode') === 'AUTHENTICATIONFAILED') return 'MAIL_AUTH_FAILED';
  // node-pop3 reports an -ERR reply as an Error whose `command` is the command it answered
  const command = field(err, 'command');
  if (err.eventName === 'error' && command !== undefined && /^(USER|PASS|AUTH|APOP)\b/i.test(command)) return 'MAIL_AUTH_FAILED';
  if (code === 'ECONNREFUSED') return 'MAIL_CONNECTION_REFUSED';
  if (code === 'ENOTFOUND') return 'MAIL_HOST_NOT_FOUND';
  if (err.tlsFailed === true && /STARTTLS/i.test(message) && code !== 'STARTTLS_INJECTION') return 'MAIL_STARTTLS_UNAVAILABLE';
  if (err.tlsFailed === true || (code !== undefined && (TLS_CODES.has(code) || code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS')))) {
    return 'MAIL_TLS_FAILED';
  }
  if ((code !== undefined && TIMEOUT_CODES.has(code)) || err.eventName === 'timeout' || message === 'timeout') return 'MAIL_TIMEOUT';
  if ((code !== undefined && NETWORK_CODES.has(code)) || err.eventName === 'close' || err.eventName === 'end' || message === 'no-socket') {
    return 'MAIL_NETWORK_ERROR';
  }
  return 'MAIL_PROTOCOL_ERROR';
}

const EXPLAIN: Partial<Record<ErrorCode, string>> = {
  MAIL_AUTH_FAILED: 'the server rejected the username or password',
  MAIL_HOST_NOT_FOUND: 'the host name does not resolve',
  MAIL_CONNECTION_REFUSED: 'nothing accepts connections on that port',
  MAIL_NETWORK_ERROR: 'the connection failed or was cut',
  MAIL_TIMEOUT: 'no answer in time',
  MAIL_TLS_FAILED: 'the TLS handshake failed (untrusted or mismatched certificate, or TLS against a plain port); give the CA in tls.ca, check secure and port, or for test servers set tls.verifyCertificate to false',
  MAIL_STARTTLS_UNAVAILABLE: 'the server does not offer STARTTLS; use secure: true, or set tls.starttls to "opportunistic" or "off" to allow an unencrypted connection',
  MAIL_PROTOCOL_ERROR: 'unexpected answer',
};

/** Maps anything a mail library threw to an AppError with a stable code and a secret-free message. */
export function toMailError(err: unknown, ctx: MailErrorContext): AppError {
  if (err instanceof AppError) return err;
  const e: ErrorLike = typeof err === 'object' && err !== null ? (err as ErrorLike) : { message: String(err) };
  const code = classify(e);
  const libCode = field(e, 'code');
  const serverText = field(e, 'responseText') ?? field(e, 'message') ?? '';
  const said = serverText ? `: ${scrub(serverText, ctx.secrets)}` : '';
  const detail = `${ctx.protocol.toUpperCase()} ${ctx.host}:${ctx.port}: ${EXPLAIN[code] ?? 'failed'}${libCode ? ` (${libCode})` : ''}${said}`;
  return new AppError(code, detail);
}

// ---- Exchange Web Services (ews-javascript-api) ----------------------------------------------------

export interface EwsErrorContext {
  host: string;
  port: number;
  /** The transport error @ewsjs/xhr saw (axios, with Node's `code`), which the library's rejection drops. */
  transport?: unknown;
  /** The EWS response code by name (e.g. ErrorAccessDenied) when the library gave it as a number. */
  ewsCode?: string;
  /** Whether the request carried an OAuth2 bearer token (for the advice on a 401). */
  bearer?: boolean;
  secrets?: readonly string[];
}

/** EWS response codes that mean "this identity may not open this mailbox": the caller's settings, not the server. */
const EWS_ACCESS_CODES = new Set([
  'ErrorAccessDenied',
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
 * error responses = protocol error, unless they say access to the mailbox is denied.
 */
export function toEwsError(err: unknown, ctx: EwsErrorContext): AppError {
  if (err instanceof AppError) return err;
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as Record<string, unknown>;
  const where = `EWS ${ctx.host}:${ctx.port}`;
  const message = scrub(typeof e.message === 'string' ? e.message : '', ctx.secrets);
  const status = typeof e.HttpStatusCode === 'number' ? e.HttpStatusCode : undefined;
  const faultCode = typeof e.faultCode === 'string' ? e.faultCode.replace(/^\w+:/, '') : undefined;
  const ewsCode = ctx.ewsCode ?? faultCode;

  if (status === 401) {
    const advice = ctx.bearer
      ? 'Exchange refused the access token (HTTP 401): check that the app registration has the EWS permission (EWS.AccessAsUser.All, or full_access_as_app with impersonation) and admin consent'
      : 'Exchange rejected the username or password (HTTP 401)';
    return new AppError('MAIL_AUTH_FAILED', `${where}: ${advice}`);
  }
  if (status === 403 || (ewsCode && EWS_ACCESS_CODES.has(ewsCode))) {
    return new AppError('EWS_ACCESS_DENIED', `${where}: access to the mailbox was refused${ewsCode ? ` (${ewsCode})` : ''}${message ? `: ${message}` : ''}`);
  }
  if (ewsCode) return new AppError('MAIL_PROTOCOL_ERROR', `${where}: Exchange answered ${ewsCode}${message ? `: ${message}` : ''}`);
  if (status !== undefined && status !== 200) {
    return new AppError('MAIL_PROTOCOL_ERROR', `${where}: HTTP ${status} (is the URL an EWS endpoint, such as https://host/EWS/Exchange.asmx?)`);
  }
  const code = transportCode(ctx.transport, message);
  if (code) {
    const mapped = classify({ code });
    const why =
      mapped === 'MAIL_TLS_FAILED'
        ? 'the TLS handshake failed (untrusted or mismatched certificate); give the CA in tls.ca or MSB_EXTRA_CA_FILE'
        : (EXPLAIN[mapped] ?? 'failed');
    return new AppError(mapped === 'MAIL_PROTOCOL_ERROR' ? 'MAIL_NETWORK_ERROR' : mapped, `${where}: ${why} (${code})${message ? `: ${message}` : ''}`);
  }
  return new AppError('MAIL_PROTOCOL_ERROR', `${where}: unexpected answer${message ? `: ${message}` : ''}`);
}

// ---- OAuth2 identity provider (@azure/msal-node, and the redirect's ?error=) ------------------------

export interface OAuthErrorContext {
  authorityHost: string;
  /** What was being done, which decides what an invalid_grant means. */
  step: 'password' | 'clientCredentials' | 'silent' | 'redeem' | 'authorize';
  /** The last transport failure of the identity provider's HTTP client, when recent. */
  transport?: { code?: string; message: string };
  secrets?: readonly string[];
}

const MFA_CODES = new Set([50072, 50074, 50076, 50079, 50158]);
const CREDENTIAL_CODES = new Set([50034, 50053, 50055, 50056, 50057, 50126]);
const CLIENT_CODES = new Set([700016, 7000215, 7000218, 7000222, 70001, 70002, 90002, 900023, 700027]);
const DENIED_CODES = new Set([65001, 65004, 50105, 53003]);
const INTERACTION_ERRORS = new Set(['invalid_grant', 'interaction_required', 'login_required', 'consent_required', 'bad_token', 'no_tokens_found', 'refresh_token_expired']);
const UNREACHABLE_ERRORS = new Set(['network_error', 'endpoints_resolution_error', 'openid_config_error', 'network_request_failed']);

interface MsalErrorLike {
  errorCode?: unknown;
  errorMessage?: unknown;
  subError?: unknown;
  errorNo?: unknown;
  name?: unknown;
  message?: unknown;
}

function aadsts(e: MsalErrorLike): number | undefined {
  if (typeof e.errorNo === 'string' && /^\d+$/.test(e.errorNo)) return Number(e.errorNo);
  const text = `${typeof e.errorMessage === 'string' ? e.errorMessage : ''} ${typeof e.message === 'string' ? e.message : ''}`;
  const m = /AADSTS(\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** The provider's own words, without the trace/correlation ids Azure AD appends. */
function providerSays(e: MsalErrorLike, secrets: readonly string[] = []): string {
  const text = typeof e.errorMessage === 'string' && e.errorMessage ? e.errorMessage : typeof e.message === 'string' ? e.message : '';
  return scrub(text.split(/\s*(Trace ID:|\r|\n)/)[0] ?? '', secrets);
}

/** Whether a silent token request failed because a person must sign in again (refresh refused, expired, MFA, consent). */
export function oauthNeedsInteraction(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as MsalErrorLike;
  const n = aadsts(e);
  return (
    e.name === 'InteractionRequiredAuthError' ||
    (typeof e.errorCode === 'string' && INTERACTION_ERRORS.has(e.errorCode)) ||
    (typeof e.subError === 'string' && e.subError === 'bad_token') ||
    (n !== undefined && (MFA_CODES.has(n) || n === 70008 || n === 700082 || n === 700084 || n === 65001))
  );
}

/** Maps an msal-node rejection to a stable code; MFA answers say to use the authorization code flow. */
export function toOAuthError(err: unknown, ctx: OAuthErrorContext): AppError {
  if (err instanceof AppError) return err;
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as MsalErrorLike;
  const where = `identity provider ${ctx.authorityHost}`;
  const errorCode = typeof e.errorCode === 'string' ? e.errorCode : undefined;
  const n = aadsts(e);
  const tag = [errorCode, n !== undefined ? `AADSTS${n}` : undefined].filter(Boolean).join(' ');
  const says = providerSays(e, ctx.secrets);
  const tail = `${tag ? ` (${tag})` : ''}${says ? `: ${says}` : ''}`;

  if (n !== undefined && MFA_CODES.has(n)) {
    return new AppError(
      'OAUTH_MFA_REQUIRED',
      `${where} requires multi-factor authentication (AADSTS${n}), which the username + password flow cannot satisfy: create the session with auth.flow "authorizationCode" instead (a person signs in once, MFA included; later connections refresh silently)`,
    );
  }
  if (errorCode && UNREACHABLE_ERRORS.has(errorCode)) {
    const t = ctx.transport;
    const cause = t?.code ? classify({ code: t.code }) : undefined;
    const why =
      cause === 'MAIL_TLS_FAILED'
        ? `the TLS handshake failed (${t!.code}): add the identity provider's CA to MSB_EXTRA_CA_FILE`
        : cause === 'MAIL_CONNECTION_REFUSED'
          ? 'connection refused'
          : cause === 'MAIL_HOST_NOT_FOUND'
            ? 'the host name does not resolve'
            : cause === 'MAIL_TIMEOUT'
              ? 'no answer in time'
              : t
                ? scrub(t.message, ctx.secrets)
                : 'it did not answer as an OpenID Connect provider';
    return new AppError('OAUTH_PROVIDER_UNAVAILABLE', `${where} could not be used: ${why}${t?.code && cause !== 'MAIL_TLS_FAILED' ? ` (${t.code})` : ''} [${errorCode}]`);
  }
  if (n !== undefined && CREDENTIAL_CODES.has(n)) {
    return new AppError('MAIL_AUTH_FAILED', `${where} rejected the username or password${tail}`);
  }
  if ((n !== undefined && CLIENT_CODES.has(n)) || errorCode === 'invalid_client' || errorCode === 'unauthorized_client') {
    return new AppError('OAUTH_CLIENT_REJECTED', `${where} rejected the app registration (client ID, client secret or tenant)${tail}`);
  }
  if ((n !== undefined && DENIED_CODES.has(n)) || errorCode === 'access_denied' || errorCode === 'consent_required') {
    return new AppError('OAUTH_ACCESS_DENIED', `${where} refused access${tail}`);
  }
  // after the specific codes above: what is left of "interaction required" on ROPC is MFA or a similar prompt
  if (ctx.step === 'password' && (e.name === 'InteractionRequiredAuthError' || errorCode === 'interaction_required')) {
    return new AppError(
      'OAUTH_MFA_REQUIRED',
      `${where} requires an interactive sign-in (such as multi-factor authentication), which the username + password flow cannot do: create the session with auth.flow "authorizationCode" instead${tail}`,
    );
  }
  if (errorCode === 'invalid_grant' && ctx.step === 'password') {
    return new AppError('MAIL_AUTH_FAILED', `${where} rejected the username or password${tail}`);
  }
  if (e.name === 'ClientConfigurationError') {
    return new AppError('OAUTH_PROVIDER_ERROR', `${where}: the OAuth2 settings were refused by MSAL${tail}`);
  }
  return new AppError('OAUTH_PROVIDER_ERROR', `${where} answered with an error${tail || ': unexpected answer'}`);
}

/** The error a provider sent to the redirect endpoint (?error=...&error_description=...). */
export function oauthCallbackError(error: string, description: string | undefined, ctx: Pick<OAuthErrorContext, 'authorityHost'>): AppError {
  const says = description ? `: ${scrub(description.split(/\s*(Trace ID:|\r|\n)/)[0] ?? '')}` : '';
  const code = /^[a-z_]{1,64}$/.test(error) ? error : 'invalid_error_code';
  const refused = code === 'access_denied' || code === 'consent_required' || code === 'login_required' || code === 'interaction_required';
  return new AppError(
    refused ? 'OAUTH_ACCESS_DENIED' : 'OAUTH_PROVIDER_ERROR',
    `${refused ? 'the sign-in was refused' : 'the sign-in failed'} at identity provider ${ctx.authorityHost} (${code})${says}`,
  );
}

// ---- Microsoft Graph (plain HTTPS, src/connectors/graph.ts) --------------------------------------

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
  const code = classify(e);
  const libCode = field(e, 'code');
  const why = code === 'MAIL_TLS_FAILED' ? 'the TLS handshake failed (untrusted or mismatched certificate); give the CA in tls.ca or MSB_EXTRA_CA_FILE' : (EXPLAIN[code] ?? 'failed');
  const message = field(e, 'message');
  return new AppError(
    code === 'MAIL_PROTOCOL_ERROR' ? 'MAIL_NETWORK_ERROR' : code,
    `${where}: ${why}${libCode ? ` (${libCode})` : ''}${message ? `: ${scrub(message, ctx.secrets)}` : ''}`,
  );
}

// ---- OAuth2 token endpoints of other providers (src/oauth/generic-provider.ts) --------------------

export interface TokenEndpointErrorContext {
  /** host[:port] of the token endpoint. */
  endpoint: string;
  grant: 'refresh_token' | 'client_credentials';
  status?: number;
  /** The RFC 6749 `error` and `error_description` of the answer. */
  error?: string;
  description?: string;
  /** The transport failure when no answer came. */
  transport?: { code?: string; message: string; error?: unknown };
  secrets?: readonly string[];
}

/** Maps an RFC 6749 token endpoint answer (or its absence) to the codes used for Microsoft's. */
export function toTokenEndpointError(ctx: TokenEndpointErrorContext): AppError {
  const where = `token endpoint ${ctx.endpoint}`;
  const tail = `${ctx.error ? ` (${scrub(ctx.error, ctx.secrets).slice(0, 64)})` : ''}${ctx.description ? `: ${scrub(ctx.description, ctx.secrets)}` : ''}`;
  if (ctx.transport?.error instanceof AppError) return ctx.transport.error;
  if (ctx.status === undefined) {
    const t = ctx.transport;
    const cause = t?.code ? classify({ code: t.code }) : undefined;
    const why = cause === 'MAIL_TLS_FAILED' ? 'the TLS handshake failed: add its CA to MSB_EXTRA_CA_FILE' : t ? scrub(t.message, ctx.secrets) : 'no answer';
    return new AppError('OAUTH_PROVIDER_UNAVAILABLE', `${where} could not be used: ${why}${t?.code ? ` (${t.code})` : ''}`);
  }
  if (ctx.error === 'invalid_client' || ctx.error === 'unauthorized_client') {
    return new AppError('OAUTH_CLIENT_REJECTED', `${where} rejected the client (client ID or client secret)${tail}`);
  }
  if (ctx.error === 'invalid_grant') {
    // the refresh token came with the request: no sign-in here can replace it
    return new AppError(
      'MAIL_AUTH_FAILED',
      ctx.grant === 'refresh_token'
        ? `${where} refused the refresh token (expired, revoked or for another client)${tail}: create the session again with a new auth.refreshToken`
        : `${where} refused the grant${tail}`,
    );
  }
  if (ctx.error === 'access_denied' || ctx.error === 'invalid_scope') return new AppError('OAUTH_ACCESS_DENIED', `${where} refused access${tail}`);
  return new AppError('OAUTH_PROVIDER_ERROR', `${where} answered HTTP ${ctx.status}${tail || ' without an access token'}`);
}
