import { Type, type Static } from 'typebox';
import type { Config } from '../config.js';
import { GraphConnector, type GraphSettings } from '../connectors/graph/connection.js';
import { fingerprint } from '../domain/fingerprint.js';
import { Secret } from '../domain/secret.js';
import { AppError, invalidSettings, parseSettingsUrl } from '../errors.js';
import { TokenSource } from '../oauth/token-source.js';
import type { OAuthFlow } from '../oauth/types.js';
import { CommonSessionFields, CredentialString, SecretString, SessionName, HttpsTlsBody, TimeoutsBody, HOST_PORT_PATTERN, CLIENT_ID_PATTERN, TENANT_ID_PATTERN, CONTROL_CHARACTERS, StringEnum } from '../schemas/common.js';
import type { PreparedSession } from '../domain/prepared-session.js';
import type { KindServices, PrepareContext, SessionKind } from './kind.js';
import { resolveMicrosoftApp, secretSource } from './microsoft-app.js';

/**
 * The seed's "Outlook" connection: the mailbox behind Outlook, reached through Microsoft Graph (the
 * seed drives the desktop client, which a container cannot). With the app registration configured on
 * the server (MSB_GRAPH_*), a bot gives only a name, and where needed a mailbox or a username.
 */


const AuthBody = Type.Object(
  {
    flow: Type.Optional(
      StringEnum(['authorizationCode', 'password', 'clientCredentials'], {
        description:
          'Default: "password" when a password is given, "clientCredentials" when only a mailbox is given, else "authorizationCode" (a person signs in once in a browser, MFA works; later sessions refresh silently).',
      }),
    ),
    clientId: Type.Optional(Type.String({ pattern: CLIENT_ID_PATTERN, description: 'Application (client) ID. Default MSB_GRAPH_CLIENT_ID.' })),
    tenantId: Type.Optional(
      Type.String({ pattern: TENANT_ID_PATTERN, description: 'Directory (tenant) ID or domain. Default MSB_GRAPH_TENANT_ID, else "organizations" (delegated flows only).' }),
    ),
    clientSecret: Type.Optional(
      SecretString("Client secret of clientId. Default: the server's MSB_GRAPH_CLIENT_SECRET, but only for its own client ID, authority host and Graph host."),
    ),
    authorityHost: Type.Optional(
      Type.String({ pattern: HOST_PORT_PATTERN, maxLength: 260, description: "Identity provider host[:port]. Default MSB_OAUTH_AUTHORITY_HOST. Another host needs the session's own clientSecret." }),
    ),
  },
  { additionalProperties: false, description: 'OAuth2 settings; all optional when the server has an app registration (MSB_GRAPH_CLIENT_ID).' },
);

export const OutlookBody = Type.Object(
  {
    name: SessionName,
    type: Type.Literal('outlook', { description: '"outlook": an Outlook / Microsoft 365 mailbox through Microsoft Graph.' }),
    mailbox: Type.Optional(
      Type.String({
        minLength: 3,
        maxLength: 320,
        pattern: `^[^\\s/?#\\\\${CONTROL_CHARACTERS}]+$`,
        description:
          'The mailbox to open (address or object ID): with clientCredentials any user or shared mailbox the app may read; with a delegated flow another (e.g. shared) mailbox the signed-in user may read. Default: the signed-in user\'s own.',
      }),
    ),
    username: Type.Optional(
      CredentialString('The account that signs in: the password flow\'s user, and for authorizationCode the only account accepted at sign-in (lets later sessions reuse the sign-in).', { maxLength: 320 }),
    ),
    password: Type.Optional(SecretString('The "password" flow (ROPC) only. Never returned or logged.')),
    auth: Type.Optional(AuthBody),
    graphHost: Type.Optional(
      Type.String({ pattern: HOST_PORT_PATTERN, maxLength: 260, description: "Microsoft Graph host[:port]. Default MSB_GRAPH_HOST. Another host needs the session's own app registration and secret." }),
    ),
    tls: HttpsTlsBody('the Graph host'),
    timeouts: Type.Optional(TimeoutsBody('First request, retries included', 'One Graph request, retries included')),
    ...CommonSessionFields,
  },
  { additionalProperties: false, title: 'Outlook session (Microsoft Graph)' },
);

/** The body as prepare() sees it: secret references were resolved by the route. */
type OutlookInput = Omit<Static<typeof OutlookBody>, 'username' | 'password' | 'auth'> & {
  username?: string;
  password?: string;
  auth?: Omit<Static<typeof AuthBody>, 'clientSecret'> & { clientSecret?: string };
};

/** With no auth.flow: a password means ROPC, a mailbox alone means app-only, anything else a sign-in. */
function defaultFlow(body: OutlookInput): OAuthFlow {
  if (body.password !== undefined) return 'password';
  if (body.mailbox !== undefined && body.username === undefined) return 'clientCredentials';
  return 'authorizationCode';
}

function prepare(raw: { type: string } & Record<string, unknown>, config: Config, services: KindServices, context: PrepareContext): PreparedSession {
  const body = raw as OutlookInput;
  const auth = body.auth ?? {};
  const flow = auth.flow ?? defaultFlow(body);
  if (flow === 'password' && body.password === undefined) throw invalidSettings('/body/password', 'is required by the password flow');
  if (flow === 'password' && body.username === undefined) throw invalidSettings('/body/username', 'is required by the password flow');
  if (flow !== 'password' && body.password !== undefined) throw invalidSettings('/body/password', `is not used by the ${flow} flow: remove it (only the "password" flow sends a password)`);
  if (flow === 'clientCredentials' && body.mailbox === undefined) throw invalidSettings('/body/mailbox', 'is required by the clientCredentials flow (an app has no mailbox of its own)');
  if (flow === 'clientCredentials' && body.username !== undefined) throw invalidSettings('/body/username', 'is not used by the clientCredentials flow: name the mailbox in mailbox');

  const graphHost = (body.graphHost ?? config.MSB_GRAPH_HOST).toLowerCase();
  const origin = parseSettingsUrl(`https://${graphHost}`, '/body/graphHost');
  const port = origin.port ? Number(origin.port) : 443;
  const configured = graphHost === config.MSB_GRAPH_HOST.toLowerCase();
  const mailbox = body.mailbox?.toLowerCase();
  // the signed-in user's own mailbox is /me; any other one is /users/{id} (a shared mailbox, or app-only)
  const other = mailbox !== undefined && (flow === 'clientCredentials' || mailbox !== body.username?.toLowerCase());
  const mailboxUrl = `${origin.origin}/v1.0/${other ? `users/${encodeURIComponent(mailbox!)}` : 'me'}`;
  const inboxUrl = `${mailboxUrl}/mailFolders/inbox`;
  // Mail.ReadWrite: markAsRead and the changes (README, "Outlook"); Mail.Send: send, reply, forward (a
  // tenant that consented before sending existed consents again). msal-node adds offline_access (the
  // refresh token), openid and profile to the delegated requests by itself.
  const scopes =
    flow === 'clientCredentials'
      ? [`${origin.origin}/.default`]
      : other
        ? [`${origin.origin}/Mail.ReadWrite.Shared`, `${origin.origin}/Mail.Send.Shared`]
        : [`${origin.origin}/Mail.ReadWrite`, `${origin.origin}/Mail.Send`];
  const app = resolveMicrosoftApp(
    {
      auth,
      flow,
      untrustedResource: configured ? undefined : `the Graph host ${graphHost} is not MSB_GRAPH_HOST`,
      partition: `${context.owner}\u0000${origin.origin}`,
    },
    config,
  );
  const password = body.password !== undefined ? new Secret(body.password) : undefined;
  // Graph's 4 concurrent requests are per app and mailbox: sessions that name the same pair share them
  const mailboxKey = other ? mailbox : body.username?.toLowerCase();
  const settings: GraphSettings = {
    host: origin.hostname,
    port,
    inboxUrl,
    mailboxUrl,
    mailbox: other ? mailbox! : 'me',
    ...(mailboxKey ? { limiterKey: `${origin.origin}\u0000${app.clientId}\u0000${mailboxKey}` } : {}),
    ...(body.tls?.ca ? { ca: body.tls.ca } : {}),
    extraCaFile: config.MSB_EXTRA_CA_FILE,
    timeouts: {
      connectMs: body.timeouts?.connectMs ?? config.MSB_CONNECT_TIMEOUT_MS,
      commandMs: body.timeouts?.commandMs ?? config.MSB_COMMAND_TIMEOUT_MS,
    },
    maxAttempts: config.MSB_GRAPH_MAX_ATTEMPTS,
    parseMaxBytes: config.MSB_PARSE_MAX_BYTES,
  };
  const source = secretSource(app, auth);
  let signedIn: TokenSource | undefined;

  return {
    type: 'outlook',
    fingerprint: fingerprint({
      ...settings,
      username: body.username,
      password: password?.reveal(),
      auth: { ...app, clientSecret: app.clientSecret?.reveal(), flow, source },
      idleTimeoutMs: body.idleTimeoutMs,
    }),
    host: origin.hostname,
    ...(body.idleTimeoutMs !== undefined ? { idleTimeoutMs: body.idleTimeoutMs } : {}),
    view: {
      host: origin.hostname,
      port,
      url: inboxUrl,
      ...(body.username !== undefined ? { username: body.username } : {}),
      ...(other ? { mailboxUser: mailbox } : {}),
      auth: { type: 'oauth2', flow, clientId: app.clientId, tenantId: app.tenantId, authorityHost: app.authorityHost, clientSecretSource: source },
      tls: { mode: 'https', verifyCertificate: true, customCa: settings.ca !== undefined },
      timeouts: settings.timeouts,
      warnings: [],
    },
    logBindings: { host: origin.hostname, port, authFlow: flow },
    // without a username anyone who opens the sign-in link chooses the mailbox: inspect shows whose it became
    ...(flow === 'authorizationCode' && body.username === undefined ? { liveView: () => (signedIn?.account ? { signedInAs: signedIn.account } : {}) } : {}),
    createConnector: (ctx) => {
      const tokens = new TokenSource(
        services.oauth,
        {
          sessionName: body.name,
          app,
          flow,
          scopes,
          username: flow === 'clientCredentials' ? mailbox! : (body.username ?? ''),
          usernameRef: context.refs?.get('username'),
          password,
        },
        { resume: ctx.resume, logger: ctx.logger },
      );
      signedIn = tokens;
      return new GraphConnector(settings, ctx, tokens, services.graphLimiter);
    },
  };
}

export const outlookKind: SessionKind = {
  types: ['outlook'],
  capabilities: { outlook: ['reader', 'flagger', 'mover', 'deleter', 'sender', 'tagger', 'watcher'] },
  bodies: [OutlookBody],
  prepare,
};
