import { ImapFlow } from 'imapflow';
import type { Secret } from '../../domain/secret.js';
import { AppError, isAppError } from '../../errors.js';
import { scrubbingLogger } from '../../logger.js';
import { passwordForms } from '../../security/redact.js';
import type { MailServerSettings } from '../mail-server-settings.js';
import { toImapError } from './errors.js';
import { EXPECTED_MAIL_FAILURES } from '../../net/errors.js';
import type { AccessTokens } from '../../oauth/access-tokens.js';
import type { Connector, ConnectorContext, MailboxSummary } from '../../domain/connector.js';
import type { MessageReader } from '../../domain/mail.js';
import { ImapReader } from './messages.js';
import { withDeadline } from '../deadline.js';
import { tlsOptions } from '../tls.js';

const STARTTLS_POLICY = { required: true, opportunistic: undefined, off: false } as const;

/**
 * IMAP through imapflow: one authenticated connection, nothing selected, INBOX read by STATUS. With
 * OAuth2 it logs in with SASL XOAUTH2 / OAUTHBEARER (imapflow picks what the server offers), taking a
 * token from `tokens` before every connect, so a reconnect always uses a fresh one.
 */
export class ImapConnector implements Connector {
  readonly #settings: MailServerSettings;
  readonly #ctx: ConnectorContext;
  readonly #tokens: AccessTokens | undefined;
  readonly persistent = true;
  /** Reading mail over the same connection (messages.ts). */
  readonly reader: MessageReader;
  #client: ImapFlow | undefined;
  /** The client of a connect in flight, so that abort() can end it. */
  #connecting: ImapFlow | undefined;
  #token: Secret | undefined;

  constructor(settings: MailServerSettings, ctx: ConnectorContext, tokens?: AccessTokens) {
    this.#settings = settings;
    this.#ctx = ctx;
    this.#tokens = tokens;
    this.reader = new ImapReader({
      client: () => this.#requireClient(),
      host: settings.host,
      port: settings.port,
      commandMs: settings.timeouts.commandMs,
      parseMaxBytes: settings.parseMaxBytes,
      toError: (err) => toImapError(err, this.#errorContext()),
    });
  }

  async connect(): Promise<void> {
    const s = this.#settings;
    let address: string;
    try {
      address = await this.#ctx.outbound.check(s.host, s.port);
    } catch (err) {
      throw toImapError(err, this.#errorContext());
    }
    // the destination is checked first: a forbidden host never costs (or receives) a token
    this.#token = await this.#tokens?.token();
    try {
      await this.#open(address);
    } catch (err) {
      if (!this.#tokens || !isAppError(err) || err.code !== 'MAIL_AUTH_FAILED') throw err;
      // a token can be refused before its expiry (revoked, password changed): one fresh token decides;
      // a refused refresh of a sign-in throws AUTHORIZATION_REQUIRED from here
      this.#ctx.logger.info('the mail server refused the access token: trying once with a fresh one');
      this.#token = await this.#tokens.token({ fresh: true });
      await this.#open(address);
    }
  }

  async #open(address: string): Promise<void> {
    const s = this.#settings;
    const tls = tlsOptions(s.host, s.tls);
    const client = new ImapFlow({
      // the checked address, so that a second DNS answer cannot redirect the connection
      host: address,
      port: s.port,
      ...(tls.servername ? { servername: tls.servername } : {}),
      secure: s.secure,
      doSTARTTLS: s.secure ? undefined : STARTTLS_POLICY[s.tls.starttls],
      tls,
      auth: this.#token ? { user: s.username, accessToken: this.#token.reveal() } : { user: s.username, pass: s.password?.reveal() ?? '' },
      // imapflow logs what the server says (a refused LOGIN's text at error level), which may echo the password
      logger: scrubbingLogger(this.#ctx.logger, () => this.#secrets(), (err) => EXPECTED_MAIL_FAILURES.has(toImapError(err, this.#errorContext()).code)),
      connectionTimeout: s.timeouts.connectMs,
      greetingTimeout: s.timeouts.connectMs,
      // nothing stays selected, so imapflow never IDLEs; the session's keepalive does the talking
      disableAutoIdle: true,
      clientInfo: { name: 'mail-session-broker' },
    });
    let lastError: unknown;
    // imapflow emits 'error' after connect; an unhandled 'error' event would crash the process
    client.on('error', (err: unknown) => {
      lastError = err;
      this.#ctx.logger.warn({ err: toImapError(err, this.#errorContext()) }, 'imap connection error');
    });
    client.once('close', () => {
      // a client we replaced or closed ourselves is not a drop
      if (this.#client === client) {
        this.#client = undefined;
        this.#ctx.onDrop(toImapError(lastError ?? { code: 'EConnectionClosed', message: 'connection closed by the server' }, this.#errorContext()));
      }
    });
    this.#connecting = client;
    try {
      await withDeadline(client.connect(), s.timeouts.connectMs, `IMAP ${s.host}:${s.port} connect`, () => client.close());
    } catch (err) {
      client.close();
      if (this.#loginDisabled(client, err)) {
        throw new AppError(
          'MAIL_TLS_REQUIRED',
          `IMAP ${s.host}:${s.port}: the server accepts a login only over TLS (it advertises LOGINDISABLED), so the password was not sent; use secure: true (port 993) or tls.starttls "required"`,
        );
      }
      throw toImapError(err, this.#errorContext());
    } finally {
      if (this.#connecting === client) this.#connecting = undefined;
    }
    this.#client = client;
  }

  abort(): void {
    this.#connecting?.close();
  }

  async summary(): Promise<MailboxSummary> {
    const client = this.#requireClient();
    try {
      const status = await withDeadline(
        client.status('INBOX', { messages: true, unseen: true }),
        this.#settings.timeouts.commandMs,
        'IMAP STATUS INBOX',
        () => client.close(),
      );
      if (!status) throw { code: 'EPROTOCOL', message: 'STATUS INBOX returned nothing' };
      return { name: 'INBOX', messages: status.messages ?? 0, unseen: status.unseen ?? 0, checkedAt: new Date().toISOString() };
    } catch (err) {
      throw toImapError(err, this.#errorContext());
    }
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    this.#tokens?.close();
    if (!client) return;
    try {
      await withDeadline(client.logout(), this.#settings.timeouts.commandMs, 'IMAP LOGOUT', () => client.close());
    } catch {
      client.close();
    }
  }

  /** The connected client, for what works beside the reader (sent-mailbox.ts: the Sent copy of mail sent over SMTP). */
  connectedClient(): ImapFlow {
    return this.#requireClient();
  }

  #requireClient(): ImapFlow {
    if (!this.#client) throw toImapError({ code: 'NoConnection', message: 'not connected' }, this.#errorContext());
    return this.#client;
  }

  /**
   * imapflow refuses to send LOGIN itself when the server advertises LOGINDISABLED and offers no SASL
   * mechanism it could use instead: a refusal that happened here, with the credentials still in the process.
   */
  #loginDisabled(client: ImapFlow, err: unknown): boolean {
    const caps = client.capabilities;
    return (
      typeof err === 'object' && err !== null && (err as { authenticationFailed?: unknown }).authenticationFailed === true &&
      !this.#token && !client.authenticated && caps.has('LOGINDISABLED') && !caps.has('AUTH=PLAIN') && !caps.has('AUTH=LOGIN')
    );
  }

  /** What must never appear in an error detail or a log line: the password (and its SASL forms), the token. */
  #secrets(): string[] {
    const s = this.#settings;
    const password = s.password?.reveal();
    return [...(password ? passwordForms(s.username, password) : []), ...(this.#token ? [this.#token.reveal()] : [])];
  }

  #errorContext() {
    const s = this.#settings;
    return { host: s.host, port: s.port, secrets: this.#secrets() };
  }
}
