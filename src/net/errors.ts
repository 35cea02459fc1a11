import { AppError, type ErrorCode } from '../errors.js';
import { redactSecrets } from '../security/redact.js';

/**
 * What every protocol's error translation shares: the socket, DNS, TLS and timeout codes of Node and the
 * mail libraries, and the scrubbing of server-provided text. Each protocol maps its own library's errors
 * in its folder (connectors/imap/errors.ts, ...) and falls back to these; the identity provider's in
 * oauth/errors.ts. Libraries reject with plain objects as well as Errors, so everything reads fields defensively.
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

/** The fields of a library error that the translations read. */
export interface ErrorLike {
  code?: unknown;
  message?: unknown;
  authenticationFailed?: unknown;
  serverResponseCode?: unknown;
  responseText?: unknown;
  tlsFailed?: unknown;
  eventName?: unknown;
  command?: unknown;
}

export function field(err: ErrorLike, key: keyof ErrorLike): string | undefined {
  const value = err[key];
  return typeof value === 'string' ? value : undefined;
}

/** Anything thrown, as an object whose fields can be read. */
export function errorLike(err: unknown): ErrorLike {
  return typeof err === 'object' && err !== null ? (err as ErrorLike) : { message: String(err) };
}

export interface MailErrorContext {
  protocol: string;
  host: string;
  port: number;
  /** Values that must never reach a message, even if a server echoes them. */
  secrets?: readonly string[];
}

/**
 * Removes secrets (the rule the mail libraries' log lines follow too: security/redact.ts) and control
 * characters from server-provided text, and bounds its length.
 */
export function scrub(text: string, secrets: readonly string[] = []): string {
  // eslint-disable-next-line no-control-regex
  let out = redactSecrets(text, secrets).replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return out.length > 300 ? `${out.slice(0, 300)}...` : out;
}

/**
 * Failures that are the answer of a server the caller named, to the caller's settings (wrong password,
 * certificate not trusted, nothing on that port): the caller hears them in full, so the log keeps them
 * quiet (info for the request, debug for the library's own line). Timeouts, cut connections and protocol
 * errors stay loud: they may be ours.
 */
export const EXPECTED_MAIL_FAILURES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'MAIL_AUTH_FAILED',
  'MAIL_TLS_FAILED',
  'MAIL_TLS_REQUIRED',
  'MAIL_STARTTLS_UNAVAILABLE',
  'MAIL_CONNECTION_REFUSED',
  'MAIL_HOST_NOT_FOUND',
  'MAIL_TEMPORARILY_UNAVAILABLE',
]);

/** The code of a socket, DNS, TLS or timeout failure; MAIL_PROTOCOL_ERROR when it is none of those. */
export function networkCode(err: ErrorLike): ErrorCode {
  const code = field(err, 'code');
  const message = field(err, 'message') ?? '';
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

/** A short, secret-free explanation of a code for error details. */
export function explain(code: ErrorCode): string {
  return EXPLAIN[code] ?? 'failed';
}

/**
 * Maps anything a mail library threw to an AppError with a stable code and a secret-free message.
 * `protocolCode` reads the library's own signs first (a refused login...); what it leaves is read as a
 * network failure.
 */
export function toMailError(err: unknown, ctx: MailErrorContext, protocolCode?: (e: ErrorLike) => ErrorCode | undefined): AppError {
  if (err instanceof AppError) return err;
  const e = errorLike(err);
  const code = protocolCode?.(e) ?? networkCode(e);
  const libCode = field(e, 'code');
  const serverText = field(e, 'responseText') ?? field(e, 'message') ?? '';
  const said = serverText ? `: ${scrub(serverText, ctx.secrets)}` : '';
  const detail = `${ctx.protocol.toUpperCase()} ${ctx.host}:${ctx.port}: ${explain(code)}${libCode ? ` (${libCode})` : ''}${said}`;
  return new AppError(code, detail);
}
