import type { Config } from '../config.js';
import { Secret } from '../domain/secret.js';
import { AppError, invalidSettings } from '../errors.js';
import { isPlainHost } from '../net/host-port.js';
import type { OAuthApp, OAuthFlow } from '../oauth/types.js';

/** The app-registration fields a session may give (auth.*), after secret references were resolved. */
export interface MicrosoftAuthInput {
  clientId?: string | undefined;
  tenantId?: string | undefined;
  clientSecret?: string | undefined;
  authorityHost?: string | undefined;
}

export interface MicrosoftAppRequest {
  auth: MicrosoftAuthInput;
  flow: OAuthFlow;
  /**
   * Why the resource the tokens go to is not one where the server's secret may be used (a Graph host or
   * mail host the caller named), or undefined when it is.
   */
  untrustedResource: string | undefined;
  /** Keeps cached tokens apart: the owner and the resource, so a token never travels to another one. */
  partition: string;
}

/** MSB_MICROSOFT_TRUSTED_HOSTS: "host" trusts every port of it, "host:port" that port only. */
export function trustedMicrosoftHost(config: Config, host: string, port: number): boolean {
  const entries = config.MSB_MICROSOFT_TRUSTED_HOSTS.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  const name = host.toLowerCase();
  return entries.includes(name) || entries.includes(`${name}:${port}`);
}

/**
 * The app registration of every Microsoft session (EWS, outlook, IMAP/POP3 OAuth2): the caller's auth.*
 * over the server's MSB_MICROSOFT_CLIENT_ID / _TENANT_ID / _CLIENT_SECRET. The rule of api.md: the
 * server's secret goes only with its own client ID, only to MSB_OAUTH_AUTHORITY_HOST, and only when the
 * tokens it brings go to a resource the configuration names (MSB_GRAPH_HOST, MSB_MICROSOFT_TRUSTED_HOSTS);
 * otherwise a bot could point the service at its own host and collect the secret or an app-only token.
 * Elsewhere the caller brings its own secret, or uses a public client.
 */
export function resolveMicrosoftApp(request: MicrosoftAppRequest, config: Config): OAuthApp {
  const { auth, flow } = request;
  const serverId = config.MSB_MICROSOFT_CLIENT_ID;
  const clientId = auth.clientId ?? serverId;
  if (!clientId) throw invalidSettings('/body/auth/clientId', 'is required: this server has no MSB_MICROSOFT_CLIENT_ID');
  const tenantId = auth.tenantId ?? (config.MSB_MICROSOFT_TENANT_ID || (flow === 'clientCredentials' ? '' : 'organizations'));
  if (!tenantId) throw invalidSettings('/body/auth/tenantId', 'is required by the clientCredentials flow: this server has no MSB_MICROSOFT_TENANT_ID');
  const configuredAuthority = config.MSB_OAUTH_AUTHORITY_HOST.toLowerCase();
  const authorityHost = (auth.authorityHost ?? configuredAuthority).toLowerCase();
  if (auth.authorityHost !== undefined && !isPlainHost(authorityHost)) throw invalidSettings('/body/auth/authorityHost', 'is not a host[:port] that MSAL can use');

  let clientSecret: Secret | undefined;
  if (auth.clientSecret !== undefined) {
    clientSecret = new Secret(auth.clientSecret);
  } else if (clientId === serverId && config.MSB_MICROSOFT_CLIENT_SECRET) {
    const reasons: string[] = [];
    if (authorityHost !== configuredAuthority) reasons.push(`the authority host ${authorityHost} is not MSB_OAUTH_AUTHORITY_HOST`);
    if (request.untrustedResource) reasons.push(request.untrustedResource);
    if (reasons.length > 0) {
      // the server's app is confidential: without its secret the provider would refuse it anyway
      throw new AppError(
        'OAUTH_CLIENT_SECRET_REQUIRED',
        `the server's client secret is not used for this session because ${reasons.join(' and ')}: give auth.clientSecret for client ${clientId}, or use your own app registration (auth.clientId)`,
      );
    }
    clientSecret = new Secret(config.MSB_MICROSOFT_CLIENT_SECRET);
  }
  if (flow === 'clientCredentials' && !clientSecret) {
    throw new AppError(
      'OAUTH_CLIENT_SECRET_REQUIRED',
      `the clientCredentials flow needs a client secret: give auth.clientSecret${clientId === serverId ? '' : ` for client ${clientId}`}`,
    );
  }
  return { authorityHost, tenantId, clientId, clientSecret, partition: request.partition, callerAuthority: authorityHost !== configuredAuthority };
}

/** Where the secret came from, for inspect: the request, the server's configuration, or none (public client). */
export function secretSource(app: OAuthApp, auth: MicrosoftAuthInput): 'request' | 'server' | 'none' {
  if (!app.clientSecret) return 'none';
  return auth.clientSecret !== undefined ? 'request' : 'server';
}
