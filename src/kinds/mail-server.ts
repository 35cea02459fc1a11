import { isIP } from 'node:net';
import { Type, type Static } from 'typebox';
import type { Config } from '../config.js';
import { ImapConnector } from '../connectors/imap/connection.js';
import { Pop3Connector } from '../connectors/pop3/connection.js';
import type { MailServerSettings } from '../connectors/mail-server-settings.js';
import type { StartTlsMode } from '../connectors/tls.js';
import { Secret } from '../domain/secret.js';
import { fingerprint } from '../domain/fingerprint.js';
import { AppError } from '../errors.js';
import { CommonSessionFields, CredentialString, SecretString, SessionName, TimeoutsBody, WireString } from '../schemas/common.js';
import { ref, shared } from '../schemas/shared.js';
import type { PreparedSession } from '../domain/prepared-session.js';
import type { KindServices, PrepareContext, SessionKind } from './kind.js';
import { MailAuthBody, prepareMailOAuth, type MailAuthInput } from './mail-oauth.js';
import { mailTlsView } from './mail-tls-view.js';
import { prepareSmtp, smtpBody, withSmtp } from './mail-smtp.js';

/** Automation Anywhere's Connect action, "Email server" connection: IMAP (imapflow) or POP3 (node-pop3). */

const Host = Type.String({
  minLength: 1,
  maxLength: 253,
  pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*|[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\\.?)$',
  description: 'Mail server host name or IP address (case-insensitive).',
  examples: ['mail.example.com'],
});

const TlsBody = Type.Object(
  {
    verifyCertificate: Type.Optional(
      Type.Boolean({
        description:
          'Verify the server certificate (default true). false accepts any certificate: only for self-signed test servers, and only where the server allows it (MSB_ALLOW_INSECURE_TLS).',
      }),
    ),
    ca: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 65_536,
        pattern: '-----BEGIN CERTIFICATE-----',
        description: 'Extra trusted CA certificate(s), PEM, for this session only (added to the default trust).',
      }),
    ),
    servername: Type.Optional(WireString({ minLength: 1, maxLength: 253, description: 'Name to verify the certificate against (default: host).' })),
    starttls: Type.Optional(
      Type.Union([Type.Literal('required'), Type.Literal('opportunistic'), Type.Literal('off')], {
        description:
          'For secure=false: "required" (default) upgrades with STARTTLS or fails; "opportunistic" upgrades when offered; "off" stays in cleartext. POP3 supports only "off".',
      }),
    ),
  },
  { additionalProperties: false, description: 'TLS options.' },
);

const MailTimeoutsBody = TimeoutsBody('Connect + greeting + TLS + login', 'One mail command');

// one named type each in the document, shared by the IMAP and POP3 bodies
const MailServerTls = shared('MailServerTls', TlsBody);
const MailServerAuth = shared('MailServerAuth', MailAuthBody);
const MailServerSmtp = shared('MailServerSmtp', smtpBody(Host, ref(MailServerTls)));

function mailServerBody<T extends 'imap' | 'pop3'>(type: T, ports: string) {
  return Type.Object(
    {
      name: SessionName,
      type: Type.Literal(type, { description: `"${type}": the "Email server" connection of Automation Anywhere's Connect action, over ${type.toUpperCase()}.` }),
      host: Host,
      port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_535, description: `Default ${ports}.` })),
      secure: Type.Optional(Type.Boolean({ description: 'Implicit TLS: "use secure connection (SSL/TLS)" of Automation Anywhere\'s Connect action (default true).' })),
      username: CredentialString('Mailbox user name.', { maxLength: 320 }),
      password: Type.Optional(SecretString('Mailbox password: required unless auth.type is "oauth2" (then only for its "password" flow). Never returned or logged.')),
      auth: Type.Optional(ref(MailServerAuth)),
      tls: Type.Optional(ref(MailServerTls)),
      timeouts: Type.Optional(MailTimeoutsBody),
      smtp: Type.Optional(ref(MailServerSmtp)),
      ...CommonSessionFields,
    },
    { additionalProperties: false, title: `${type.toUpperCase()} session` },
  );
}

export const ImapBody = mailServerBody('imap', '993 with secure, 143 without');
export const Pop3Body = mailServerBody('pop3', '995 with secure, 110 without');
type MailServerBody = Static<typeof ImapBody> | Static<typeof Pop3Body>;

const DEFAULT_PORTS = { imap: { tls: 993, plain: 143 }, pop3: { tls: 995, plain: 110 } } as const;

function normaliseHost(host: string): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const lower = bare.toLowerCase();
  return isIP(lower) ? lower : lower.replace(/\.$/, '');
}

function prepare(raw: { type: string } & Record<string, unknown>, config: Config, services: KindServices, context: PrepareContext): PreparedSession {
  // secret references were resolved by the route: every credential is a string here
  const body = raw as Omit<MailServerBody, 'auth'> & { username: string; password?: string; auth?: MailAuthInput };
  const protocol = body.type;
  const secure = body.secure ?? true;
  const starttls = body.tls?.starttls ?? 'required';
  const verifyCertificate = body.tls?.verifyCertificate ?? true;
  if (!verifyCertificate && !config.MSB_ALLOW_INSECURE_TLS) {
    throw new AppError('INSECURE_TLS_FORBIDDEN', 'tls.verifyCertificate=false is refused: this server sets MSB_ALLOW_INSECURE_TLS=false; give the CA in tls.ca instead');
  }
  if (protocol === 'pop3' && !secure && starttls !== 'off') {
    throw new AppError(
      'UNSUPPORTED_OPTION',
      'POP3 STARTTLS is not supported (node-pop3 has no STLS): use secure: true (port 995), or set tls.starttls to "off" to send the password in cleartext',
    );
  }
  const host = normaliseHost(body.host);
  const port = body.port ?? DEFAULT_PORTS[protocol][secure ? 'tls' : 'plain'];
  const oauth = prepareMailOAuth(body.auth, { protocol, host, port, username: body.username, usernameRef: context.refs?.get('username'), password: body.password }, config, services, context.owner);
  const settings: MailServerSettings = {
    protocol,
    host,
    port,
    secure,
    username: body.username,
    // with OAuth2 a password (ROPC) goes to the identity provider only, never to the mail server
    ...(!oauth && body.password !== undefined ? { password: new Secret(body.password) } : {}),
    tls: {
      verifyCertificate,
      starttls,
      extraCaFile: config.MSB_EXTRA_CA_FILE,
      ...(body.tls?.ca ? { ca: body.tls.ca } : {}),
      ...(body.tls?.servername ? { servername: body.tls.servername.toLowerCase() } : {}),
    },
    timeouts: {
      connectMs: body.timeouts?.connectMs ?? config.MSB_CONNECT_TIMEOUT_MS,
      commandMs: body.timeouts?.commandMs ?? config.MSB_COMMAND_TIMEOUT_MS,
    },
    parseMaxBytes: config.MSB_PARSE_MAX_BYTES,
  };
  const smtp = body.smtp
    ? prepareSmtp(body.smtp, normaliseHost, { protocol, host, port, username: body.username, password: oauth ? undefined : body.password, oauth: oauth !== undefined, timeouts: settings.timeouts, refs: context.refs }, config)
    : undefined;
  const tlsView = mailTlsView({ secure, starttls, verifyCertificate, customCa: settings.tls.ca !== undefined, servername: settings.tls.servername });
  return {
    type: protocol,
    fingerprint: fingerprint({ ...settings, password: settings.password?.reveal(), oauth: oauth?.fingerprint, smtp: smtp?.fingerprint, idleTimeoutMs: body.idleTimeoutMs }),
    host: settings.host,
    ...(body.idleTimeoutMs !== undefined ? { idleTimeoutMs: body.idleTimeoutMs } : {}),
    view: {
      host: settings.host,
      port: settings.port,
      secure,
      username: settings.username,
      ...tlsView,
      timeouts: settings.timeouts,
      ...(oauth ? { auth: oauth.view } : {}),
      ...(smtp ? { smtp: smtp.view, warnings: [...tlsView.warnings, ...smtp.warnings] } : {}),
    },
    logBindings: { protocol, host: settings.host, port: settings.port, ...(oauth ? { authType: 'oauth2' } : {}) },
    createConnector: (ctx) => {
      const tokens = oauth?.tokens(ctx, body.name);
      const mailbox = protocol === 'imap' ? new ImapConnector(settings, ctx, tokens) : new Pop3Connector(settings, ctx, tokens);
      return withSmtp(mailbox, settings, smtp, ctx, tokens);
    },
  };
}

export const mailServerKind: SessionKind = {
  types: ['imap', 'pop3'],
  capabilities: { imap: ['reader', 'flagger', 'mover', 'deleter', 'tagger', 'watcher', 'sender'], pop3: ['reader', 'deleter', 'watcher', 'sender'] },
  bodies: [ImapBody, Pop3Body],
  prepare,
};
