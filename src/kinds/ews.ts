import { Type, type Static } from 'typebox';
import type { Config } from '../config.js';
import { EwsConnector, type EwsSettings } from '../connectors/ews/connection.js';
import { fingerprint } from '../domain/fingerprint.js';
import { Secret } from '../domain/secret.js';
import { AppError, invalidSettings } from '../errors.js';
import { TokenSource } from '../oauth/token-source.js';
import type { OAuthApp, OAuthFlow } from '../oauth/types.js';
import { CommonSessionFields, CredentialString, SecretString, SessionName, HttpsTlsBody, TimeoutsBody, HOST_PORT_PATTERN, CLIENT_ID_PATTERN, TENANT_ID_PATTERN, HTTPS_URL_PATTERN, CONTROL_CHARACTERS, StringEnum } from '../schemas/common.js';
import {
  EXCHANGE_ONLINE_BASIC_WARNING,
  EXCHANGE_ONLINE_RETIREMENT_WARNING,
  EXCHANGE_VERSIONS,
  ewsEndpoint,
  isExchangeOnline,
} from './ews-endpoint.js';
import type { PreparedSession } from '../domain/prepared-session.js';
import type { KindServices, PrepareContext, SessionKind } from './kind.js';
import { resolveOAuthApp } from './ews-oauth.js';

/** The seed's "EWS (Exchange Web Services)" connection, through ews-javascript-api. */


const HOST = '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\\.?$';

const AuthBody = Type.Object(
  {
    type: StringEnum(['basic', 'oauth2'], { description: '"basic" (on-premises Exchange) or "oauth2" (Microsoft identity platform).' }),
    flow: Type.Optional(
      StringEnum(['authorizationCode', 'password', 'clientCredentials'], {
        description:
          'oauth2 only. "authorizationCode" (default): a person signs in once in a browser (MFA works), later sessions refresh silently. "password": username + password (ROPC; fails when MFA is required). "clientCredentials": app-only with impersonation, for unattended bots.',
      }),
    ),
    clientId: Type.Optional(Type.String({ pattern: CLIENT_ID_PATTERN, description: 'Application (client) ID. Default MSB_EWS_CLIENT_ID.' })),
    tenantId: Type.Optional(
      Type.String({ pattern: TENANT_ID_PATTERN, description: 'Directory (tenant) ID or domain. Default MSB_EWS_TENANT_ID, else "organizations" (delegated flows only).' }),
    ),
    clientSecret: Type.Optional(
      SecretString('Client secret of clientId. Default: the server\'s MSB_EWS_CLIENT_SECRET, but only for its own client ID, authority host and trusted EWS hosts.'),
    ),
    impersonate: Type.Optional(
      Type.String({ minLength: 3, maxLength: 320, pattern: `^[^\\s@${CONTROL_CHARACTERS}]+@[^\\s@${CONTROL_CHARACTERS}]+$`, description: 'clientCredentials only: the mailbox to act as (ExchangeImpersonation and X-AnchorMailbox). Default: username.' }),
    ),
    authorityHost: Type.Optional(
      Type.String({ pattern: HOST_PORT_PATTERN, maxLength: 260, description: 'Identity provider host[:port]. Default MSB_OAUTH_AUTHORITY_HOST. Another host needs the session\'s own clientSecret.' }),
    ),
  },
  { additionalProperties: false, description: 'Authentication: { "type": "basic" } or { "type": "oauth2", "flow": ..., "clientId": ..., "tenantId": ... }.' },
);

export const EwsBody = Type.Object(
  {
    name: SessionName,
    type: Type.Literal('ews', { description: '"ews": Exchange Web Services (on-premises Exchange, or Exchange Online until its retirement).' }),
    username: CredentialString('The mailbox user (e.g. john.smith@company.com); with oauth2, the account that signs in.', { maxLength: 320 }),
    password: Type.Optional(SecretString('Password: Basic, and the oauth2 "password" flow only. Never returned or logged.')),
    domain: Type.Optional(
      Type.String({ minLength: 1, maxLength: 253, pattern: HOST, description: 'Exchange host: the endpoint becomes https://<domain>/EWS/Exchange.asmx. Empty: the Office 365 host.' }),
    ),
    url: Type.Optional(
      Type.String({ maxLength: 2048, pattern: HTTPS_URL_PATTERN, description: 'Explicit EWS endpoint (https), instead of the one derived from domain.' }),
    ),
    exchangeVersion: Type.Optional(StringEnum([...EXCHANGE_VERSIONS], { description: 'RequestServerVersion sent to Exchange. Default Exchange2013.' })),
    auth: AuthBody,
    tls: HttpsTlsBody('this EWS endpoint'),
    timeouts: Type.Optional(TimeoutsBody('First request', 'One EWS request')),
    ...CommonSessionFields,
  },
  { additionalProperties: false, title: 'EWS session' },
);

/** The body as prepare() sees it: secret references were resolved by the route, every credential is a string. */
type EwsBodyInput = Omit<Static<typeof EwsBody>, 'username' | 'password' | 'auth'> & {
  username: string;
  password?: string;
  auth: Omit<Static<typeof AuthBody>, 'clientSecret'> & { clientSecret?: string };
};

function prepare(raw: { type: string } & Record<string, unknown>, config: Config, services: KindServices, context: PrepareContext): PreparedSession {
  const body = raw as EwsBodyInput;
  const endpoint = ewsEndpoint(body.url, body.domain);
  const port = endpoint.port ? Number(endpoint.port) : 443;
  const exchangeVersion = body.exchangeVersion ?? 'Exchange2013';
  const auth = body.auth;
  const oauth2 = auth.type === 'oauth2';
  const flow: OAuthFlow | undefined = oauth2 ? (auth.flow ?? 'authorizationCode') : undefined;

  if (!oauth2) {
    for (const field of ['flow', 'clientId', 'tenantId', 'clientSecret', 'impersonate', 'authorityHost'] as const) {
      if (auth[field] !== undefined) throw invalidSettings(`/body/auth/${field}`, 'is only used with auth.type "oauth2"');
    }
  }
  const needsPassword = !oauth2 || flow === 'password';
  if (needsPassword && body.password === undefined) throw invalidSettings('/body/password', `is required for ${oauth2 ? 'the oauth2 password flow' : 'Basic authentication'}`);
  if (!needsPassword && body.password !== undefined) {
    throw invalidSettings('/body/password', `is not used by the oauth2 ${flow} flow: remove it (only Basic and the "password" flow send a password)`);
  }
  if (auth.impersonate !== undefined && flow !== 'clientCredentials') throw invalidSettings('/body/auth/impersonate', 'is only used by the clientCredentials flow');

  const password = body.password !== undefined ? new Secret(body.password) : undefined;
  const usernameRef = context.refs?.get('username');
  const shownUsername = usernameRef !== undefined ? `secret:${usernameRef}` : body.username;
  const app: OAuthApp | undefined = oauth2 ? resolveOAuthApp(auth, flow!, endpoint, config, context.owner) : undefined;
  const mailbox = flow === 'clientCredentials' ? (auth.impersonate ?? body.username) : body.username;
  const settings: EwsSettings = {
    url: endpoint.toString(),
    host: endpoint.hostname,
    port,
    username: body.username,
    ...(password && !oauth2 ? { password } : {}),
    exchangeVersion,
    ...(oauth2 ? { anchorMailbox: mailbox } : {}),
    ...(flow === 'clientCredentials' ? { impersonate: mailbox } : {}),
    ...(body.tls?.ca ? { ca: body.tls.ca } : {}),
    extraCaFile: config.MSB_EXTRA_CA_FILE,
    timeouts: {
      connectMs: body.timeouts?.connectMs ?? config.MSB_CONNECT_TIMEOUT_MS,
      commandMs: body.timeouts?.commandMs ?? config.MSB_COMMAND_TIMEOUT_MS,
    },
    limits: { parseMaxBytes: config.MSB_PARSE_MAX_BYTES, maxDownloadBytes: config.MSB_EWS_MAX_DOWNLOAD_BYTES },
  };

  const warnings: string[] = [];
  if (isExchangeOnline(endpoint.hostname)) {
    warnings.push(EXCHANGE_ONLINE_RETIREMENT_WARNING);
    if (!oauth2) warnings.push(EXCHANGE_ONLINE_BASIC_WARNING);
  }
  // the resource is the endpoint's origin: Office 365 and on-premises hybrid (modern auth) alike
  const scopes = flow === 'clientCredentials' ? [`${endpoint.origin}/.default`] : [`${endpoint.origin}/EWS.AccessAsUser.All`];
  const secretSource = app?.clientSecret ? (auth.clientSecret !== undefined ? 'request' : 'server') : 'none';

  return {
    type: 'ews',
    fingerprint: fingerprint({
      ...settings,
      password: password?.reveal(),
      auth: app ? { ...app, clientSecret: app.clientSecret?.reveal(), flow, secretSource } : { type: 'basic' },
      idleTimeoutMs: body.idleTimeoutMs,
    }),
    host: endpoint.hostname,
    ...(body.idleTimeoutMs !== undefined ? { idleTimeoutMs: body.idleTimeoutMs } : {}),
    view: {
      host: endpoint.hostname,
      port,
      url: settings.url,
      ...(body.domain ? { domain: body.domain.toLowerCase() } : {}),
      username: body.username,
      exchangeVersion,
      auth: app
        ? {
            type: 'oauth2',
            flow,
            clientId: app.clientId,
            tenantId: app.tenantId,
            authorityHost: app.authorityHost,
            clientSecretSource: secretSource,
            // the default is the username: shown as its reference when it came by one
            ...(settings.impersonate ? { impersonate: auth.impersonate ?? shownUsername } : {}),
          }
        : { type: 'basic' },
      tls: { mode: 'https', verifyCertificate: true, customCa: settings.ca !== undefined },
      timeouts: settings.timeouts,
      warnings,
    },
    logBindings: { host: endpoint.hostname, port, authFlow: flow ?? 'basic' },
    createConnector: (ctx) => {
      const tokens = app
        ? new TokenSource(
            services.oauth,
            { sessionName: body.name, app, flow: flow!, scopes, username: body.username, usernameRef, password },
            { resume: ctx.resume, logger: ctx.logger },
          )
        : undefined;
      return new EwsConnector(settings, ctx, tokens);
    },
  };
}

export const ewsKind: SessionKind = {
  types: ['ews'],
  capabilities: { ews: ['reader', 'flagger', 'mover', 'deleter', 'sender', 'tagger', 'watcher'] },
  bodies: [EwsBody],
  prepare,
};
