import type { Config } from '../config.js';
import { Secret } from '../domain/secret.js';
import { AppError, invalidSettings } from '../errors.js';
import type { OAuthApp, OAuthFlow } from '../oauth/types.js';

interface AuthInput {
  clientId?: string | undefined;
  tenantId?: string | undefined;
  clientSecret?: string | undefined;
  authorityHost?: string | undefined;
}

/** A host[:port] that parses back to itself as a URL authority (MSAL rejects anything else later, as a 502). */
function isPlainHost(hostPort: string): boolean {
  try {
    const u = new URL(`https://${hostPort}`);
    return u.host === hostPort && u.pathname === '/' && !u.username && !u.password;
  } catch {
    return false;
  }
}

/** The hosts (host[:port], lower case) where the server's EWS secret may be used. */
export function trustedEwsHosts(config: Config): Set<string> {
  return new Set(
    config.MSB_EWS_TRUSTED_HOSTS.split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
}

/**
 * The app registration of an oauth2 EWS session, with the rule of api.md: a secret held by the server
 * (MSB_EWS_CLIENT_SECRET) is only sent for the server's own client ID, to the configured authority host,
 * and only when the tokens it brings go to an EWS host the server trusts (MSB_EWS_TRUSTED_HOSTS);
 * otherwise any caller could point the service at its own host and collect the secret or an app-only
 * token. Outside those endpoints a caller brings its own secret, or uses a public client without one.
 *
 * Tokens are cached per principal (`owner`) and EWS origin: "authorize only the first time" holds for
 * the bot that had the sign-in done, never for another principal naming the same account.
 */
export function resolveOAuthApp(auth: AuthInput, flow: OAuthFlow, endpoint: URL, config: Config, owner: string): OAuthApp {
  const clientId = auth.clientId ?? config.MSB_EWS_CLIENT_ID;
  if (!clientId) throw invalidSettings('/body/auth/clientId', 'is required: this server has no MSB_EWS_CLIENT_ID');
  const tenantId = auth.tenantId ?? (config.MSB_EWS_TENANT_ID || (flow === 'clientCredentials' ? '' : 'organizations'));
  if (!tenantId) throw invalidSettings('/body/auth/tenantId', 'is required by the clientCredentials flow: this server has no MSB_EWS_TENANT_ID');
  const authorityHost = (auth.authorityHost ?? config.MSB_OAUTH_AUTHORITY_HOST).toLowerCase();
  if (auth.authorityHost !== undefined && !isPlainHost(authorityHost)) throw invalidSettings('/body/auth/authorityHost', 'is not a host[:port] that MSAL can use');

  let clientSecret: Secret | undefined;
  if (auth.clientSecret !== undefined) {
    clientSecret = new Secret(auth.clientSecret);
  } else if (clientId === config.MSB_EWS_CLIENT_ID && config.MSB_EWS_CLIENT_SECRET) {
    const reasons: string[] = [];
    if (authorityHost !== config.MSB_OAUTH_AUTHORITY_HOST.toLowerCase()) reasons.push(`the authority host ${authorityHost} is not MSB_OAUTH_AUTHORITY_HOST`);
    if (!trustedEwsHosts(config).has(endpoint.host.toLowerCase())) reasons.push(`the EWS host ${endpoint.host} is not in MSB_EWS_TRUSTED_HOSTS`);
    if (reasons.length > 0) {
      // the server's app is confidential: without its secret the provider would refuse it anyway
      throw new AppError(
        'OAUTH_CLIENT_SECRET_REQUIRED',
        `the server's client secret is not used for this session because ${reasons.join(' and ')}: give auth.clientSecret for client ${clientId}, or use your own app registration (auth.clientId)`,
      );
    }
    clientSecret = new Secret(config.MSB_EWS_CLIENT_SECRET);
  }
  if (flow === 'clientCredentials' && !clientSecret) {
    throw new AppError(
      'OAUTH_CLIENT_SECRET_REQUIRED',
      `the clientCredentials flow needs a client secret: give auth.clientSecret${clientId === config.MSB_EWS_CLIENT_ID ? '' : ` for client ${clientId}`}`,
    );
  }
  const callerAuthority = authorityHost !== config.MSB_OAUTH_AUTHORITY_HOST.toLowerCase();
  return { authorityHost, tenantId, clientId, clientSecret, partition: `${owner}\u0000${endpoint.origin}`, callerAuthority };
}
