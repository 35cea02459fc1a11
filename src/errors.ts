/**
 * The one registry of stable error codes. Bots switch on `code`; the HTTP status and title come from here,
 * and the README's error table is checked against this list by a test.
 */
export const errorCatalog = {
  VALIDATION_ERROR: { status: 400, title: 'The request is not valid' },
  UNAUTHENTICATED: { status: 401, title: 'A valid API key is required' },
  FORBIDDEN: { status: 403, title: 'This API key may not do this' },
  DESTINATION_FORBIDDEN: { status: 403, title: "The server's outbound policy does not allow this destination" },
  SECRET_UNAVAILABLE: { status: 422, title: 'A referenced secret does not exist or may not be read' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  REQUEST_TIMEOUT: { status: 408, title: 'The request was not received in time' },
  MALFORMED_REQUEST: { status: 400, title: 'The request could not be read' },
  ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'This route does not take this method' },
  SESSION_NOT_FOUND: { status: 404, title: 'No session with this name' },
  SESSION_CONFLICT: { status: 409, title: 'A session with this name exists with other settings' },
  SESSION_NOT_READY: { status: 409, title: 'The session is not connected' },
  AUTHORIZATION_REQUIRED: { status: 409, title: 'The session waits for an OAuth2 sign-in' },
  INVALID_SETTINGS: { status: 422, title: 'The settings are well-formed but do not fit together' },
  INSECURE_TLS_FORBIDDEN: { status: 422, title: 'Turning certificate verification off is not allowed on this server' },
  UNSUPPORTED_OPTION: { status: 422, title: 'This option is not supported for this connection type' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'The request body is too large' },
  HEADERS_TOO_LARGE: { status: 431, title: 'The request headers or URL are too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Send the body as application/json' },
  SESSION_LIMIT_REACHED: { status: 503, title: 'The session pool is full' },
  SESSION_QUOTA_EXCEEDED: { status: 429, title: 'This principal holds, or is connecting, as many sessions as it may' },
  SESSION_RECONNECTING: { status: 503, title: 'The session lost its connection and is reconnecting' },
  SESSION_BUSY: { status: 503, title: 'Another operation on this session has not finished' },
  MAIL_AUTH_FAILED: { status: 422, title: 'The mail server rejected the credentials' },
  MAIL_HOST_NOT_FOUND: { status: 422, title: 'The mail server host name does not resolve' },
  MAIL_CONNECTION_REFUSED: { status: 502, title: 'The mail server refused the connection' },
  MAIL_NETWORK_ERROR: { status: 502, title: 'The network connection to the mail server failed' },
  MAIL_TIMEOUT: { status: 504, title: 'The mail server did not answer in time' },
  MAIL_TLS_FAILED: { status: 502, title: 'The TLS handshake with the mail server failed' },
  MAIL_STARTTLS_UNAVAILABLE: { status: 502, title: 'The mail server does not offer STARTTLS' },
  MAIL_PROTOCOL_ERROR: { status: 502, title: 'The mail server answered in an unexpected way' },
  MAIL_TLS_REQUIRED: { status: 422, title: 'The mail server accepts a login only over TLS' },
  MAIL_TEMPORARILY_UNAVAILABLE: { status: 503, title: 'The mail server asks to try again later' },
  MAIL_PERMANENTLY_UNAVAILABLE: { status: 502, title: 'The mail server refuses the mailbox until someone fixes it' },
  EWS_ACCESS_DENIED: { status: 422, title: 'Exchange refused access to the mailbox' },
  DOWNLOAD_TOO_LARGE: { status: 422, title: 'The message or attachment is larger than this session type downloads' },
  GRAPH_ACCESS_DENIED: { status: 422, title: 'Microsoft Graph refused access to the mailbox' },
  GRAPH_MAILBOX_NOT_FOUND: { status: 422, title: 'Microsoft Graph knows no such mailbox' },
  GRAPH_THROTTLED: { status: 503, title: 'Microsoft Graph is throttling requests' },
  GRAPH_UNAVAILABLE: { status: 503, title: 'Microsoft Graph is unavailable' },
  OPERATION_NOT_SUPPORTED: { status: 422, title: 'This session type cannot do this operation' },
  FOLDER_NOT_FOUND: { status: 404, title: 'No folder with this path' },
  MESSAGE_NOT_FOUND: { status: 404, title: 'No message with this id in this session' },
  ATTACHMENT_NOT_FOUND: { status: 404, title: 'The message has no attachment with this id' },
  CLAIM_NOT_FOUND: { status: 404, title: 'No live work claim with this id' },
  IDEMPOTENCY_KEY_REUSED: { status: 409, title: 'This Idempotency-Key was used for another request' },
  SEND_RATE_LIMITED: { status: 429, title: 'Too many messages sent' },
  MESSAGE_TOO_LARGE: { status: 413, title: 'The message to send is too large' },
  SMTP_NOT_CONFIGURED: { status: 409, title: 'The session has no SMTP settings to send with' },
  SMTP_AUTH_FAILED: { status: 422, title: 'The SMTP server rejected the credentials' },
  SMTP_REJECTED: { status: 422, title: 'The SMTP server refused the message or its recipients' },
  SMTP_UNAVAILABLE: { status: 502, title: 'The SMTP server could not be reached or failed' },
  SESSION_NOT_AWAITING_AUTHORIZATION: { status: 409, title: 'The session does not wait for an OAuth2 sign-in' },
  OAUTH_STATE_INVALID: { status: 400, title: 'The OAuth2 state is unknown, used or expired' },
  OAUTH_ACCESS_DENIED: { status: 403, title: 'The sign-in or consent was refused' },
  OAUTH_MFA_REQUIRED: { status: 422, title: 'Multi-factor authentication is required: use the authorization code flow' },
  OAUTH_CLIENT_REJECTED: { status: 422, title: 'The identity provider rejected the app registration' },
  OAUTH_CLIENT_SECRET_REQUIRED: { status: 422, title: 'A client secret is required for this app and endpoint' },
  OAUTH_ACCOUNT_MISMATCH: { status: 422, title: 'The signed-in account is not the session username' },
  OAUTH_PROVIDER_ERROR: { status: 502, title: 'The identity provider answered with an error' },
  OAUTH_PROVIDER_UNAVAILABLE: { status: 502, title: 'The identity provider could not be reached' },
  SHUTTING_DOWN: { status: 503, title: 'The service is shutting down' },
  STORE_UNAVAILABLE: { status: 503, title: 'The shared session store (Redis) cannot be reached' },
  INTERNAL_ERROR: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorCatalog;

/** An error with a stable code. Domain code throws these; the HTTP layer turns them into problem details. */
export class AppError extends Error {
  override name = 'AppError';
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra problem members (e.g. `errors` for validation, `retryAfterSeconds`). Never secrets. */
  readonly extra: Record<string, unknown>;

  constructor(code: ErrorCode, detail: string, extra: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(detail, options);
    this.code = code;
    this.status = errorCatalog[code].status;
    this.extra = extra;
  }
}

/**
 * A create body that matches its schema but whose fields do not fit together (or a URL that the
 * schema's pattern lets through but the URL parser refuses): 422 INVALID_SETTINGS, naming the field.
 */
export function invalidSettings(path: string, message: string): AppError {
  return new AppError('INVALID_SETTINGS', `${path} ${message}`, { errors: [{ path, message }] });
}

/** Parses a URL from a create body; a string the WHATWG parser refuses is INVALID_SETTINGS for that field. */
export function parseSettingsUrl(text: string, path: string): URL {
  try {
    return new URL(text);
  } catch {
    throw invalidSettings(path, 'is not a valid URL');
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

/** The RFC 9457 `type` URI of a code. */
export function problemType(code: ErrorCode): string {
  return `urn:mail-session-broker:problem:${code.toLowerCase().replaceAll('_', '-')}`;
}
