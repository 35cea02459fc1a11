import { Type, type Static } from 'typebox';
import type { Config } from '../config.js';
import type { ConnectorContext } from '../domain/connector.js';
import { Secret } from '../domain/secret.js';
import { AppError, invalidSettings, parseSettingsUrl } from '../errors.js';
import type { AccessTokens } from '../oauth/access-tokens.js';
import { GenericTokenSource } from '../oauth/generic-provider.js';
import { TokenSource } from '../oauth/token-source.js';
import type { OAuthApp, OAuthFlow } from '../oauth/types.js';
import { SecretString, HOST_PORT_PATTERN, TENANT_ID_PATTERN, HTTPS_URL_PATTERN, StringEnum } from '../schemas/common.js';
import type { KindServices } from './kind.js';
import { resolveMicrosoftApp, secretSource } from './microsoft-app.js';

/** OAuth2 (SASL XOAUTH2) for IMAP and POP3 sessions: Microsoft 365 through msal-node, or any RFC 6749 provider. */


export const MailAuthBody = Type.Object(
  {
    type: StringEnum(['password', 'oauth2'], { description: '"password" (default: LOGIN with the password) or "oauth2" (SASL XOAUTH2 with an access token).' }),
    provider: Type.Optional(
      StringEnum(['microsoft', 'generic'], {
        description: 'oauth2: "microsoft" (default; Microsoft 365 through the server\'s app registration and msal-node) or "generic" (any OAuth2 token endpoint: tokenUrl, clientId, ...).',
      }),
    ),
    flow: Type.Optional(
      StringEnum(['authorizationCode', 'password', 'clientCredentials', 'refreshToken'], {
        description:
          'microsoft: "authorizationCode" (default; a person signs in once), "password" (ROPC, needs password), "clientCredentials" (app-only; username is the mailbox). generic: "refreshToken" (default when refreshToken is given) or "clientCredentials".',
      }),
    ),
    clientId: Type.Optional(Type.String({ minLength: 1, maxLength: 256, pattern: '^[\\x21-\\x7e]+$', description: 'Application (client) ID. microsoft: default MSB_GRAPH_CLIENT_ID; generic: required.' })),
    tenantId: Type.Optional(Type.String({ pattern: TENANT_ID_PATTERN, description: 'microsoft: directory (tenant) ID. Default MSB_GRAPH_TENANT_ID, else "organizations".' })),
    clientSecret: Type.Optional(SecretString("Client secret. microsoft: default the server's MSB_GRAPH_CLIENT_SECRET, only for mail hosts of MSB_MAIL_OAUTH_TRUSTED_HOSTS.")),
    authorityHost: Type.Optional(Type.String({ pattern: HOST_PORT_PATTERN, maxLength: 260, description: 'microsoft: identity provider host[:port]. Default MSB_OAUTH_AUTHORITY_HOST.' })),
    tokenUrl: Type.Optional(Type.String({ maxLength: 2048, pattern: HTTPS_URL_PATTERN, description: 'generic: the token endpoint (https).' })),
    scope: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, pattern: '^[\\x21-\\x7e]+( [\\x21-\\x7e]+)*$', description: 'generic: the scope to ask for (space-separated), if the provider wants one.' })),
    refreshToken: Type.Optional(SecretString('generic: the refresh token of the mailbox user (obtained once, outside this service). Never returned or logged.')),
    clientAuth: Type.Optional(StringEnum(['post', 'basic'], { description: 'generic: how the client secret is sent: "post" (client_secret_post, default) or "basic" (HTTP Basic).' })),
  },
  { additionalProperties: false, description: 'How to log in: { "type": "password" } (default) or { "type": "oauth2", "provider": "microsoft" | "generic", ... }.' },
);

/** The auth object after secret references were resolved. */
export type MailAuthInput = Omit<Static<typeof MailAuthBody>, 'clientSecret' | 'refreshToken'> & { clientSecret?: string; refreshToken?: string };

/** What a prepared IMAP/POP3 session knows of its OAuth2 settings. */
export interface MailOAuth {
  /** Makes the session's token source (one per connector). */
  tokens(ctx: ConnectorContext, sessionName: string): AccessTokens;
  /** For inspect: never a secret. */
  view: Record<string, unknown>;
  /** Every setting, secrets included, for the session fingerprint. */
  fingerprint: Record<string, unknown>;
}

export interface MailOAuthTarget {
  protocol: 'imap' | 'pop3';
  host: string;
  port: number;
  username: string;
  /** The secret's name when the username came by reference (never sent as a login hint). */
  usernameRef?: string | undefined;
  password: string | undefined;
}

/** MSB_MAIL_OAUTH_TRUSTED_HOSTS: "host" trusts every port of it, "host:port" that port only. */
export function trustedMailHost(config: Config, host: string, port: number): boolean {
  const entries = config.MSB_MAIL_OAUTH_TRUSTED_HOSTS.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  return entries.includes(host) || entries.includes(`${host}:${port}`);
}

/** Microsoft 365 scopes (docs/protocol-facts.md): delegated per protocol; app-only is one resource for both. */
function microsoftScopes(protocol: 'imap' | 'pop3', flow: OAuthFlow): string[] {
  if (flow === 'clientCredentials') return ['https://outlook.office365.com/.default'];
  return [`https://outlook.office.com/${protocol === 'imap' ? 'IMAP' : 'POP'}.AccessAsUser.All`];
}

function only(auth: MailAuthInput, fields: readonly (keyof MailAuthInput)[], why: string): void {
  for (const field of fields) if (auth[field] !== undefined) throw invalidSettings(`/body/auth/${field}`, why);
}

/** Checks and resolves `auth` for an IMAP/POP3 session; undefined for password logins. */
export function prepareMailOAuth(auth: MailAuthInput | undefined, target: MailOAuthTarget, config: Config, services: KindServices, owner: string): MailOAuth | undefined {
  if (!auth || auth.type === 'password') {
    if (auth) only(auth, ['provider', 'flow', 'clientId', 'tenantId', 'clientSecret', 'authorityHost', 'tokenUrl', 'scope', 'refreshToken', 'clientAuth'], 'is only used with auth.type "oauth2"');
    if (target.password === undefined) throw invalidSettings('/body/password', 'is required (or use auth.type "oauth2")');
    return undefined;
  }
  return (auth.provider ?? 'microsoft') === 'microsoft' ? microsoft(auth, target, config, services, owner) : generic(auth, target, config);
}

function microsoft(auth: MailAuthInput, target: MailOAuthTarget, config: Config, services: KindServices, owner: string): MailOAuth {
  only(auth, ['tokenUrl', 'scope', 'refreshToken', 'clientAuth'], 'is only used with auth.provider "generic"');
  const flow = auth.flow ?? (target.password !== undefined ? 'password' : 'authorizationCode');
  if (flow === 'refreshToken') throw invalidSettings('/body/auth/flow', 'refreshToken is a generic provider flow; Microsoft refreshes through authorizationCode');
  if (flow === 'password' && target.password === undefined) throw invalidSettings('/body/password', 'is required by the oauth2 password flow');
  if (flow !== 'password' && target.password !== undefined) throw invalidSettings('/body/password', `is not used by the oauth2 ${flow} flow: remove it`);
  const { protocol, host, port } = target;
  const app: OAuthApp = resolveMicrosoftApp(
    {
      auth,
      flow,
      untrustedResource: trustedMailHost(config, host, port) ? undefined : `the mail host ${host}:${port} is not in MSB_MAIL_OAUTH_TRUSTED_HOSTS`,
      // tokens obtained for one mail host are never sent to another one a caller names
      partition: `${owner}\u0000${protocol}://${host}:${port}`,
    },
    config,
  );
  const scopes = microsoftScopes(protocol, flow);
  const password = target.password !== undefined ? new Secret(target.password) : undefined;
  const source = secretSource(app, auth);
  return {
    tokens: (ctx, sessionName) =>
      new TokenSource(services.oauth, { sessionName, app, flow, scopes, username: target.username, usernameRef: target.usernameRef, password }, { resume: ctx.resume, logger: ctx.logger }),
    view: { type: 'oauth2', provider: 'microsoft', flow, clientId: app.clientId, tenantId: app.tenantId, authorityHost: app.authorityHost, clientSecretSource: source, scope: scopes.join(' ') },
    fingerprint: { ...app, clientSecret: app.clientSecret?.reveal(), flow, source, password: target.password },
  };
}

function generic(auth: MailAuthInput, target: MailOAuthTarget, config: Config): MailOAuth {
  only(auth, ['tenantId', 'authorityHost'], 'is only used with auth.provider "microsoft"');
  if (target.password !== undefined) throw invalidSettings('/body/password', 'is not used with auth.provider "generic": remove it');
  if (!auth.tokenUrl) throw invalidSettings('/body/auth/tokenUrl', 'is required by auth.provider "generic"');
  if (!auth.clientId) throw invalidSettings('/body/auth/clientId', 'is required by auth.provider "generic"');
  const flow = auth.flow ?? (auth.refreshToken !== undefined ? 'refreshToken' : 'clientCredentials');
  if (flow !== 'refreshToken' && flow !== 'clientCredentials') throw invalidSettings('/body/auth/flow', 'must be "refreshToken" or "clientCredentials" with auth.provider "generic"');
  if (flow === 'refreshToken' && auth.refreshToken === undefined) throw invalidSettings('/body/auth/refreshToken', 'is required by the refreshToken flow');
  if (flow === 'clientCredentials' && auth.refreshToken !== undefined) throw invalidSettings('/body/auth/refreshToken', 'is not used by the clientCredentials flow');
  if (flow === 'clientCredentials' && auth.clientSecret === undefined) throw invalidSettings('/body/auth/clientSecret', 'is required by the clientCredentials flow');
  const tokenUrl = parseSettingsUrl(auth.tokenUrl, '/body/auth/tokenUrl');
  const clientAuth = auth.clientAuth ?? 'post';
  const grant = flow === 'refreshToken' ? 'refresh_token' : 'client_credentials';
  return {
    tokens: (ctx) =>
      new GenericTokenSource(
        {
          tokenUrl,
          clientId: auth.clientId!,
          clientSecret: auth.clientSecret !== undefined ? new Secret(auth.clientSecret) : undefined,
          scope: auth.scope,
          grant,
          refreshToken: auth.refreshToken !== undefined ? new Secret(auth.refreshToken) : undefined,
          clientAuth,
          extraCaFile: config.MSB_EXTRA_CA_FILE,
          timeoutMs: config.MSB_CONNECT_TIMEOUT_MS,
        },
        (host, port) => ctx.outbound.check(host, port),
        ctx.logger,
      ),
    view: {
      type: 'oauth2',
      provider: 'generic',
      flow,
      clientId: auth.clientId,
      // origin and path only: a query string could carry something the caller did not mean to show
      tokenUrl: `${tokenUrl.origin}${tokenUrl.pathname}`,
      clientSecretSource: auth.clientSecret !== undefined ? 'request' : 'none',
      ...(auth.scope ? { scope: auth.scope } : {}),
    },
    fingerprint: { ...auth, tokenUrl: tokenUrl.toString(), flow, clientAuth },
  };
}
