import { Type, type Static, type TSchema } from 'typebox';
import type { Config } from '../config.js';
import type { SmtpSettings } from '../connectors/smtp/settings.js';
import type { StartTlsMode } from '../connectors/tls.js';
import { Secret } from '../domain/secret.js';
import { AppError, invalidSettings } from '../errors.js';
import { parseRecipients } from '../mime/addresses.js';
import { CredentialString, SecretString, WireString } from '../schemas/common.js';
import { trustedMicrosoftHost } from './microsoft-app.js';
import type { Connector, ConnectorContext } from '../domain/connector.js';
import type { AccessTokens } from '../oauth/access-tokens.js';
import { ImapConnector } from '../connectors/imap/connection.js';
import { toImapError } from '../connectors/imap/errors.js';
import { ImapSentMailbox } from '../connectors/imap/sent-mailbox.js';
import type { Pop3Connector } from '../connectors/pop3/connection.js';
import { SmtpSender } from '../connectors/smtp/sender.js';
import { notConfigured, SendingConnector } from '../connectors/smtp/sending-connector.js';
import { SmtpTransport } from '../connectors/smtp/transport.js';
import { mailTlsView } from './mail-tls-view.js';

/**
 * The `smtp` object of an IMAP/POP3 create body: where and how the session sends (connectors/smtp). The
 * same shapes as the mailbox's own fields (host, port, secure, tls); the credentials default to the
 * mailbox's, including its OAuth2 token (XOAUTH2).
 */
export function smtpBody(host: TSchema, tls: TSchema) {
  return Type.Object(
    {
      host,
      port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_535, description: 'Default 465 with secure, 587 without.' })),
      secure: Type.Optional(Type.Boolean({ description: 'Implicit TLS (port 465); false: STARTTLS as tls.starttls says (default "required"). Default true.' })),
      tls: Type.Optional(tls),
      username: Type.Optional(CredentialString('SMTP user name; default: the mailbox\'s.', { maxLength: 320 })),
      password: Type.Optional(SecretString('SMTP password; default: the mailbox\'s (with auth.type "oauth2": its access token, XOAUTH2). Never returned or logged.')),
      from: Type.Optional(
        WireString({ minLength: 3, maxLength: 998, description: 'The From of every message sent, "Name <a@example.com>" or "a@example.com"; default: the user name, when it is an address.', examples: ['Accounts Payable <ap@example.com>'] }),
      ),
      saveToSent: Type.Optional(Type.Boolean({ description: 'IMAP: append a copy of each message sent to the \\Sent folder (default true); false when the server files it itself (Gmail, Exchange Online).' })),
    },
    { additionalProperties: false, description: 'Sending over SMTP (send, reply, forward). Verified at create: connect and log in.' },
  );
}

type SmtpInput = Omit<Static<ReturnType<typeof smtpBody>>, 'username' | 'password' | 'tls'> & {
  username?: string;
  password?: string;
  tls?: { verifyCertificate?: boolean; ca?: string; servername?: string; starttls?: StartTlsMode };
};

/** What the mailbox side of the session contributes to its SMTP settings. */
export interface SmtpDefaults {
  protocol: 'imap' | 'pop3';
  host: string;
  port: number;
  username: string;
  /** The mailbox password, when it logs in with one. */
  password: string | undefined;
  /** Whether the mailbox logs in with OAuth2 (its token is then the SMTP login's default). */
  oauth: boolean;
  timeouts: { connectMs: number; commandMs: number };
  /** Shows a value given by reference as `secret:<name>`: request path ("smtp.username") -> secret name. */
  refs: ReadonlyMap<string, string> | undefined;
}

export interface PreparedSmtp {
  settings: SmtpSettings;
  /** Whether the login uses the mailbox's OAuth2 token. */
  useToken: boolean;
  view: Record<string, unknown>;
  warnings: string[];
  fingerprint: Record<string, unknown>;
}

const ADDRESS = /^[^\s@<>()",;:\\[\]]+@[^\s@<>()",;:\\[\]]+$/;

export function prepareSmtp(raw: unknown, normaliseHost: (host: string) => string, mailbox: SmtpDefaults, config: Config): PreparedSmtp {
  const body = raw as SmtpInput;
  const secure = body.secure ?? true;
  const starttls = body.tls?.starttls ?? 'required';
  const verifyCertificate = body.tls?.verifyCertificate ?? true;
  if (!verifyCertificate && !config.MSB_ALLOW_INSECURE_TLS) {
    throw new AppError('INSECURE_TLS_FORBIDDEN', 'smtp.tls.verifyCertificate=false is refused: this server sets MSB_ALLOW_INSECURE_TLS=false; give the CA in smtp.tls.ca instead');
  }
  if (mailbox.protocol === 'pop3' && body.saveToSent === true) {
    throw new AppError('UNSUPPORTED_OPTION', 'smtp.saveToSent: a POP3 mailbox has no Sent folder to keep a copy in');
  }
  const host = normaliseHost(body.host as string);
  const port = body.port ?? (secure ? 465 : 587);
  const username = body.username ?? mailbox.username;
  const passwordText = body.password ?? mailbox.password;
  const useToken = passwordText === undefined && mailbox.oauth;
  if (passwordText === undefined && !useToken) throw invalidSettings('/body/smtp/password', 'is required');
  // a token obtained for the mail host goes only where that host is, or where the operator vouches for it
  if (useToken && host !== mailbox.host && !trustedMicrosoftHost(config, host, port)) {
    throw invalidSettings('/body/smtp/password', `is required: the mailbox's OAuth2 token is sent only to the mail host itself or a host of MSB_MICROSOFT_TRUSTED_HOSTS, and ${host}:${port} is neither`);
  }
  const from = fromOf(body.from, username);
  const saveToSent = body.saveToSent ?? mailbox.protocol === 'imap';
  const tls = {
    verifyCertificate,
    starttls,
    extraCaFile: config.MSB_EXTRA_CA_FILE,
    ...(body.tls?.ca ? { ca: body.tls.ca } : {}),
    ...(body.tls?.servername ? { servername: body.tls.servername.toLowerCase() } : {}),
  };
  const settings: SmtpSettings = {
    host,
    port,
    secure,
    tls,
    username,
    ...(!useToken ? { password: new Secret(passwordText!) } : {}),
    from,
    saveToSent,
    timeouts: mailbox.timeouts,
    maxBytes: config.MSB_SEND_MAX_BYTES,
  };
  const tlsView = mailTlsView({ secure, starttls, verifyCertificate, customCa: tls.ca !== undefined, servername: tls.servername });
  const shownUser = refShown(mailbox.refs, body.username !== undefined ? 'smtp.username' : 'username') ?? username;
  return {
    settings,
    useToken,
    view: { host, port, secure, username: shownUser, from: from.address, saveToSent, tls: tlsView.tls, auth: useToken ? 'oauth2' : 'password' },
    warnings: tlsView.warnings.map((w) => `smtp: ${w.replaceAll('tls.', 'smtp.tls.').replace('secure: ', 'smtp.secure: ')}`),
    fingerprint: { ...settings, tls: { ...tls }, password: passwordText, useToken },
  };
}

function refShown(refs: ReadonlyMap<string, string> | undefined, path: string): string | undefined {
  const name = refs?.get(path);
  return name ? `secret:${name}` : undefined;
}

/** smtp.from, else the user name when it is an address: a message needs a From. */
function fromOf(given: string | undefined, username: string): { name: string; address: string } {
  if (given !== undefined) {
    const list = parseRecipients(given, '/body/smtp/from');
    if (list.length !== 1) throw invalidSettings('/body/smtp/from', 'must be one address');
    return list[0]!;
  }
  if (ADDRESS.test(username)) return { name: '', address: username };
  throw invalidSettings('/body/smtp/from', 'is required when the user name is not an e-mail address');
}

/**
 * The session's connector with `sender`: over SMTP when the session has `smtp` (verified at the first
 * connect; for IMAP with the copy in \Sent and \Answered), else one that answers SMTP_NOT_CONFIGURED.
 */
export function withSmtp(
  inner: ImapConnector | Pop3Connector,
  mail: { host: string; port: number },
  smtp: PreparedSmtp | undefined,
  ctx: ConnectorContext,
  tokens: AccessTokens | undefined,
): Connector {
  if (!smtp) return new SendingConnector(inner, notConfigured);
  const s = smtp.settings;
  const transport = new SmtpTransport(s, ctx, smtp.useToken ? tokens : undefined);
  const mailbox =
    inner instanceof ImapConnector
      ? new ImapSentMailbox({
          client: () => inner.connectedClient(),
          host: mail.host,
          port: mail.port,
          commandMs: s.timeouts.commandMs,
          toError: (err) => toImapError(err, mail),
        })
      : undefined;
  const sender = new SmtpSender({ settings: s, transport, reader: inner.reader, mailbox, logger: ctx.logger });
  return new SendingConnector(inner, sender, () => transport.verify());
}
