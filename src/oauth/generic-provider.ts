import type { Logger } from 'pino';
import { outboundSecureContext } from '../net/trust.js';
import { Secret } from '../domain/secret.js';
import { toTokenEndpointError } from './errors.js';
import type { AccessTokens } from './access-tokens.js';
import { HttpsNetworkClient, type DestinationGuard } from './https-network.js';

/** A session's settings for a token endpoint that is not Microsoft's (RFC 6749). */
export interface GenericProviderSpec {
  tokenUrl: URL;
  clientId: string;
  clientSecret?: Secret | undefined;
  /** Space-separated scopes; omitted from the request when undefined. */
  scope?: string | undefined;
  grant: 'refresh_token' | 'client_credentials';
  /** The refresh_token grant's token; replaced when the provider rotates it. */
  refreshToken?: Secret | undefined;
  /** How the client authenticates: client_secret_post (default) or client_secret_basic. */
  clientAuth: 'post' | 'basic';
  extraCaFile: string;
  timeoutMs: number;
}

interface Cached {
  token: Secret;
  expiresAt: number;
  /** Renew once fewer than this many ms are left. */
  marginMs: number;
}

/** Lifetime assumed when the answer has no expires_in (RFC 6749 leaves it optional). */
const DEFAULT_LIFETIME_S = 300;

/**
 * Access tokens from any OAuth2 provider's token endpoint, for XOAUTH2 to IMAP/POP3 servers that are not
 * Microsoft's (msal-node speaks only to Microsoft's identity platform). Plain HTTPS through the same
 * trust (Node's roots, NODE_EXTRA_CA_CERTS, MSB_EXTRA_CA_FILE) and, since a caller names the endpoint,
 * through the outbound policy with the checked address pinned. A token is reused until it is within
 * 5 minutes (or half its lifetime) of expiry, then renewed; a rotated refresh token replaces the old one
 * in memory. Concurrent callers share one request.
 */
export class GenericTokenSource implements AccessTokens {
  readonly #spec: GenericProviderSpec;
  readonly #network: HttpsNetworkClient;
  readonly #logger: Logger;
  #refreshToken: Secret | undefined;
  #cached: Cached | undefined;
  #pending: Promise<Secret> | undefined;

  constructor(spec: GenericProviderSpec, guard: DestinationGuard, logger: Logger) {
    this.#spec = spec;
    this.#refreshToken = spec.refreshToken;
    this.#logger = logger;
    this.#network = new HttpsNetworkClient(outboundSecureContext(spec.extraCaFile), spec.timeoutMs, guard);
  }

  token(options: { fresh?: boolean } = {}): Promise<Secret> {
    const cached = this.#cached;
    if (!options.fresh && cached && cached.expiresAt - Date.now() > cached.marginMs) return Promise.resolve(cached.token);
    this.#pending ??= this.#fetch().finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  close(): void {
    this.#cached = undefined;
    this.#network.close();
  }

  async #fetch(): Promise<Secret> {
    const s = this.#spec;
    const form = new URLSearchParams({ grant_type: s.grant });
    if (s.grant === 'refresh_token') form.set('refresh_token', this.#refreshToken?.reveal() ?? '');
    if (s.scope) form.set('scope', s.scope);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (s.clientAuth === 'basic' && s.clientSecret) {
      // RFC 6749 2.3.1: both parts form-encoded before base64
      const pair = `${encodeURIComponent(s.clientId)}:${encodeURIComponent(s.clientSecret.reveal())}`;
      headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
    } else {
      form.set('client_id', s.clientId);
      if (s.clientSecret) form.set('client_secret', s.clientSecret.reveal());
    }
    const secrets = [s.clientSecret?.reveal(), this.#refreshToken?.reveal()].filter((v): v is string => v !== undefined);
    const context = { endpoint: s.tokenUrl.host, grant: s.grant, secrets };
    const started = Date.now();
    let answer: { status: number; body: Record<string, unknown> };
    try {
      answer = await this.#network.sendPostRequestAsync<Record<string, unknown>>(s.tokenUrl.toString(), { headers, body: form.toString() });
    } catch {
      const failure = this.#network.lastFailure;
      throw toTokenEndpointError({ ...context, ...(failure && failure.at >= started ? { transport: failure } : {}) });
    }
    const body = answer.body ?? {};
    const accessToken = body.access_token;
    if (answer.status !== 200 || typeof accessToken !== 'string' || accessToken === '') {
      throw toTokenEndpointError({
        ...context,
        status: answer.status,
        ...(typeof body.error === 'string' ? { error: body.error } : {}),
        ...(typeof body.error_description === 'string' ? { description: body.error_description } : {}),
      });
    }
    const lifetimeS = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : Number(body.expires_in) || DEFAULT_LIFETIME_S;
    const token = new Secret(accessToken);
    this.#cached = { token, expiresAt: started + lifetimeS * 1000, marginMs: Math.min(300_000, (lifetimeS * 1000) / 2) };
    if (typeof body.refresh_token === 'string' && body.refresh_token !== '') this.#refreshToken = new Secret(body.refresh_token);
    this.#logger.debug({ endpoint: s.tokenUrl.host, grant: s.grant, expiresIn: lifetimeS, rotated: typeof body.refresh_token === 'string' }, 'access token obtained');
    return token;
  }
}
