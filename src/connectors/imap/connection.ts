import { ImapFlow, type ImapFlowOptions } from 'imapflow';
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
import { ImapAccess } from './access.js';
import { ImapChanges } from './changes.js';
import { ImapWatcher } from './watch.js';
import { withDeadline } from '../deadline.js';
import { tlsOptions } from '../tls.js';

const STARTTLS_POLICY = { required: true, opportunistic: undefined, off: false } as const;

/**
 * The watch connection breaks and restarts IDLE this often (imapflow's maxIdleTime): RFC 9051 asks clients to
 * renew IDLE within 29 minutes, and it keeps the socket active within imapflow's inactivity timeout (5 min) on
 * a server that sends nothing while idling. One DONE + IDLE round trip per period is all a quiet session costs.
 */
const WATCH_IDLE_RESTART_MS = 4 * 60_000;

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
  /** Flags, moves, deletes and the claim keyword over the same connection (changes.ts). */
  readonly flagger: ImapChanges;
  readonly mover: ImapChanges;
  readonly deleter: ImapChanges;
  readonly tagger: ImapChanges;
  /** New mail in the watched folders, told by IDLE on a connection of its own (watch.ts). */
  readonly watcher: ImapWatcher;
  readonly #changes: ImapChanges;
  #client: ImapFlow | undefined;
  /** The client of a connect in flight, so that abort() can end it. */
  #connecting: ImapFlow | undefined;
  /** The address the outbound policy approved at the last connect; the watch connection goes there too. */
  #address: string | undefined;
  #token: Secret | undefined;

  constructor(settings: MailServerSettings, ctx: ConnectorContext, tokens?: AccessTokens) {
    this.#settings = settings;
    this.#ctx = ctx;
    this.#tokens = tokens;
    const access = new ImapAccess({
      client: () => this.#requireClient(),
      host: settings.host,
      port: settings.port,
      commandMs: settings.timeouts.commandMs,
      parseMaxBytes: settings.parseMaxBytes,
      toError: (err) => toImapError(err, this.#errorContext()),
    });
    this.reader = new ImapReader(access);
    this.#changes = new ImapChanges(access);
    this.flagger = this.mover = this.deleter = this.tagger = this.#changes;
    this.watcher = new ImapWatcher({
      connect: (onClose) => this.#watchClient(onClose),
      logger: ctx.logger,
      commandMs: settings.timeouts.commandMs,
      host: settings.host,
      port: settings.port,
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
    const client = await this.#dial(address, {}, (client, err) => {
      // a client we replaced or closed ourselves (a LOGOUT at close) is not a drop: no error is made for it
      if (this.#client === client) {
        this.#client = undefined;
        this.#ctx.onDrop(err());
      }
    });
    this.#address = address;
    this.#changes.reset();
    this.#client = client;
  }

  /**
   * A second connection for the watcher (watch.ts), to the address the session's connection was checked for,
   * with the same credentials: it IDLEs at once (autoIdleDelay 0) whenever a folder is selected. The watcher
   * opens it again when it is lost.
   */
  async #watchClient(onClose: (err: AppError) => void): Promise<ImapFlow> {
    const address = this.#address;
    if (!address) throw toImapError({ code: 'NoConnection', message: 'not connected' }, this.#errorContext());
    return this.#dial(address, { disableAutoIdle: false, autoIdleDelay: 0, maxIdleTime: WATCH_IDLE_RESTART_MS }, (_client, err) => onClose(err()));
  }

  /**
   * Connects and logs in one imapflow client; `onClose` hears of its end once it was up, with a function that
   * makes the error of the end (from the last error), which an expected end never needs.
   */
  async #dial(address: string, extra: Partial<ImapFlowOptions>, onClose: (client: ImapFlow, err: () => AppError) => void): Promise<ImapFlow> {
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
      ...extra,
    });
    let lastError: unknown;
    let up = false;
    // imapflow emits 'error' after connect; an unhandled 'error' event would crash the process
    client.on('error', (err: unknown) => {
      lastError = err;
      this.#ctx.logger.warn({ err: toImapError(err, this.#errorContext()) }, 'imap connection error');
    });
    client.once('close', () => {
      if (up) onClose(client, () => toImapError(lastError ?? { code: 'EConnectionClosed', message: 'connection closed by the server' }, this.#errorContext()));
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
    up = true;
    return client;
  }

  abort(): void {
    this.#connecting?.close();
  }

  async summary(): Promise<MailboxSummary> {
    const client = this.#requireClient();
    const status = (path: string, query: { messages?: boolean; unseen?: boolean; uidValidity?: boolean }) =>
      withDeadline(client.status(path, query), this.#settings.timeouts.commandMs, `IMAP STATUS ${path === 'INBOX' ? 'INBOX' : '(watched folder)'}`, () => client.close());
    try {
      // UIDVALIDITY too: INBOX, the watched folder by default, is then checked (below) without a STATUS of its own
      const inbox = await status('INBOX', { messages: true, unseen: true, uidValidity: true });
      if (!inbox) throw { code: 'EPROTOCOL', message: 'STATUS INBOX returned nothing' };
      // the keepalive's turn to check that the watched folders are still the ones watched (watch.ts)
      await this.watcher.verify(async (path) => {
        if (/^inbox$/i.test(path)) return inbox.uidValidity;
        try {
          const folder = await status(path, { uidValidity: true });
          return folder ? folder.uidValidity : undefined;
        } catch (err) {
          if ((err as { code?: unknown }).code === 'NotFound' || (err as { responseStatus?: unknown }).responseStatus === 'NO') return undefined;
          throw err;
        }
      });
      return { name: 'INBOX', messages: inbox.messages ?? 0, unseen: inbox.unseen ?? 0, checkedAt: new Date().toISOString() };
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
