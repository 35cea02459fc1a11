import { AppError } from '../errors.js';
import { networkCode, scrub } from '../net/errors.js';

/** Errors of OAuth2 identity providers: @azure/msal-node, the redirect's ?error=, and RFC 6749 token endpoints. */

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
  let text = typeof e.errorMessage === 'string' && e.errorMessage ? e.errorMessage : typeof e.message === 'string' ? e.message : '';
  // msal-node wraps the provider's error_description in "Error(s): ... - Timestamp: ... - Description: <it> - Correlation ID: ..."
  const described = /(?:^|\s)Description:\s*([\s\S]*?)(?:\s+-\s+Correlation ID:|$)/.exec(text);
  if (described) text = described[1]!;
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
    const cause = t?.code ? networkCode({ code: t.code }) : undefined;
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

// token endpoints of other providers (generic-provider.ts)

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
    const cause = t?.code ? networkCode({ code: t.code }) : undefined;
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
