import Pop3Command from 'node-pop3';
import type { MailServerSettings } from '../mail-server-settings.js';
import type { Secret } from '../../domain/secret.js';
import { AppError, isAppError } from '../../errors.js';
import { toPop3Error } from './errors.js';
import { loginDelaySeconds } from './capa.js';
import { scrubbingLogger } from '../../logger.js';
import { passwordForms } from '../../security/redact.js';
import type { AccessTokens } from '../../oauth/access-tokens.js';
import type { Connector, ConnectorContext, MailboxSummary } from '../../domain/connector.js';
import { withDeadline } from '../deadline.js';
import { loginXoauth2, xoauth2Payload } from './sasl.js';
import { tlsOptions } from '../tls.js';
import type { MessageReader } from '../../domain/mail.js';
import { Pop3Link } from './link.js';
import { Pop3Reader } from './messages.js';
import { Pop3Changes } from './changes.js';
import { Pop3Watcher } from './watch.js';

/**
 * POP3 through node-pop3, one short connection per use (login, command, QUIT).
 *
 * Why not hold the connection: a POP3 maildrop is a snapshot taken at login and the server locks it
 * while the connection is open (RFC 1939), so a held connection would never see new mail and would lock
 * out the user's other clients for hours. The session holds the validated settings instead; each use
 * logs in afresh, so it always sees the current maildrop. With OAuth2 each login is AUTH XOAUTH2 with a
 * token from `tokens` (cached until close to expiry, so that costs no extra request).
 *
 * A server may ask for a minimum time between logins (CAPA `LOGIN-DELAY n`, RFC 2449; Cyrus enforces
 * it, refusing the next login with [LOGIN-DELAY]). It is read after the first login and respected: until
 * it has passed, the summary is the last one read (with its checkedAt), and an operation that needs a
 * login answers MAIL_TEMPORARILY_UNAVAILABLE with the time left, instead of earning a refusal.
 *
 * The first login also reads CAPA and, when the session watches INBOX, the watcher's baseline (UIDL), so
 * that a watching session's create is one login.
 */
export class Pop3Connector implements Connector {
  readonly persistent = false;
  /** Reading mail, each use a login of its own (messages.ts). */
  readonly reader: MessageReader;
  /** Deleting: DELE and QUIT in one login (changes.ts). POP3 keeps no flags and no folders: no flagger, mover, tagger. */
  readonly deleter: Pop3Changes;
  /** New mail by comparing UIDL lists at each watch poll (watch.ts). */
  readonly watcher: Pop3Watcher;
  readonly #settings: MailServerSettings;
  readonly #ctx: ConnectorContext;
  readonly #tokens: AccessTokens | undefined;
  /** The server's LOGIN-DELAY in ms; undefined until a CAPA was read. */
  #loginDelayMs: number | undefined;
  /** When the last login succeeded (Date.now()). */
  #lastLoginAt = 0;
  /** The last summary read, which stands while the LOGIN-DELAY runs. */
  #last: MailboxSummary | undefined;

  constructor(settings: MailServerSettings, ctx: ConnectorContext, tokens?: AccessTokens) {
    this.#settings = settings;
    this.#ctx = ctx;
    this.#tokens = tokens;
    this.reader = new Pop3Reader({ use: (fn) => this.#use(fn), open: () => this.#open(), parseMaxBytes: settings.parseMaxBytes });
    this.deleter = new Pop3Changes({ open: () => this.#open() });
    this.watcher = new Pop3Watcher({ use: (fn) => this.#use(fn), loginWaitMs: () => this.#loginWaitMs(), summaryFrom: (link) => this.#stat(link) });
  }

  /** Proves the settings by a login, STAT and QUIT, whose answer is the summary. */
  connect(): Promise<MailboxSummary> {
    return this.summary();
  }

  async summary(): Promise<MailboxSummary> {
    // within the server's LOGIN-DELAY the last answer stands: another login now would only be refused
    if (this.#last && this.#loginWaitMs() > 0) return this.#last;
    return this.#use((link) => this.#stat(link));
  }

  /** STAT as the mailbox summary, kept as the last one (it stands while the LOGIN-DELAY runs). */
  async #stat(link: Pop3Link): Promise<MailboxSummary> {
    const info = await link.stat();
    const [messages, size] = info.trim().split(/\s+/).map(Number);
    if (!Number.isInteger(messages) || !Number.isInteger(size) || messages! < 0 || size! < 0) {
      throw new AppError('MAIL_PROTOCOL_ERROR', `POP3 ${this.#settings.host}:${this.#settings.port}: unexpected STAT answer`);
    }
    this.#last = { name: 'INBOX', messages: messages!, size: size!, checkedAt: new Date().toISOString() };
    return this.#last;
  }

  /** How long until the server's LOGIN-DELAY allows the next login; 0 when it does now. */
  #loginWaitMs(): number {
    const delay = this.#loginDelayMs ?? 0;
    return delay > 0 ? Math.max(0, this.#lastLoginAt + delay - Date.now()) : 0;
  }

  async close(): Promise<void> {
    // nothing is held between uses: every use already ended with QUIT
    this.#tokens?.close();
  }

  /** Logins in flight, so that abort() can end them. */
  readonly #logins = new Set<() => void>();

  abort(): void {
    for (const destroy of this.#logins) destroy();
  }

  /**
   * One use: login, `fn`, and the end of the login (#finish). When `fn` fails (it may have left the connection
   * mid-answer) the connection is closed.
   */
  async #use<T>(fn: (link: Pop3Link) => Promise<T>): Promise<T> {
    const link = await this.#open();
    let result: T;
    try {
      result = await fn(link);
    } catch (err) {
      link.destroy();
      await link.quit();
      throw err;
    }
    await this.#finish(link);
    return result;
  }

  /**
   * The end of a use's login: the server's CAPA on the first login, the watcher's baseline when it wants one
   * (UIDL), then QUIT. Failures are only logged: a missing CAPA is read at the next login, a missing baseline
   * at the next poll.
   */
  async #finish(link: Pop3Link): Promise<void> {
    const failed = (what: string) => (err: unknown) => {
      this.#ctx.logger.debug({ code: isAppError(err) ? err.code : 'MAIL_PROTOCOL_ERROR' }, `POP3: reading ${what} after a use failed`);
    };
    if (this.#loginDelayMs === undefined) {
      await link.capabilities().then((capabilities) => {
        this.#loginDelayMs = loginDelaySeconds(capabilities) * 1000;
        if (this.#loginDelayMs > 0) this.#ctx.logger.info({ loginDelaySeconds: this.#loginDelayMs / 1000 }, 'the POP3 server asks for a minimum time between logins');
      }, failed('CAPA'));
    }
    await this.watcher.takeBaseline(link).catch(failed('the watch baseline (UIDL)'));
    await link.quit();
  }

  /** A logged-in connection; with OAuth2, a token refused before its expiry (revoked...) gets one fresh token. */
  async #open(): Promise<Pop3Link> {
    try {
      return await this.#login(false);
    } catch (err) {
      if (!this.#tokens || !isAppError(err) || err.code !== 'MAIL_AUTH_FAILED') throw err;
      this.#ctx.logger.info('the mail server refused the access token: trying once with a fresh one');
      return this.#login(true);
    }
  }

  /** Connects and logs in, bounded in time because node-pop3 can wait forever. */
  async #login(freshToken: boolean): Promise<Pop3Link> {
    const s = this.#settings;
    if (!s.secure && s.tls.starttls === 'required') {
      // validated at create time too; kept here so no path can send a password in the clear by accident
      throw new AppError('UNSUPPORTED_OPTION', 'POP3 STARTTLS is not supported; use secure: true (port 995)');
    }
    const wait = this.#loginWaitMs();
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw new AppError(
        'MAIL_TEMPORARILY_UNAVAILABLE',
        `POP3 ${s.host}:${s.port}: the server allows one login every ${Math.round(this.#loginDelayMs! / 1000)} s (LOGIN-DELAY); the next is possible in ${seconds} s`,
        { retryAfterSeconds: seconds },
      );
    }
    const password = s.password?.reveal();
    const secrets = password ? passwordForms(s.username, password) : [];
    const errorContext = { host: s.host, port: s.port, secrets, loginDelaySeconds: this.#loginDelayMs !== undefined ? this.#loginDelayMs / 1000 : undefined };
    let address: string;
    try {
      address = await this.#ctx.outbound.check(s.host, s.port);
    } catch (err) {
      throw toPop3Error(err, errorContext);
    }
    // only once the destination is allowed: a forbidden host never costs (or receives) a token
    const token: Secret | undefined = await this.#tokens?.token({ fresh: freshToken });
    if (token) secrets.push(token.reveal(), xoauth2Payload(s.username, token.reveal()));
    const pop = new Pop3Command({
      // the checked address, so that a second DNS answer cannot redirect the connection
      host: address,
      port: s.port,
      tls: s.secure,
      user: s.username,
      password: s.password?.reveal() ?? '',
      timeout: s.timeouts.commandMs,
      // servername is set explicitly (undefined for an IP), else node-pop3 sends the IP as SNI, which Node deprecates
      tlsOptions: { servername: undefined, ...tlsOptions(s.host, s.tls) } as import('node:tls').TlsOptions,
    });
    // -ERR replies and socket errors are emitted as 'error'; without a listener they would crash the process.
    // node-pop3 logs nothing itself; a 'warn' (a dropped connection, a reply it could not read) is logged
    // like every library line, without the secrets
    const log = scrubbingLogger(this.#ctx.logger, () => secrets);
    pop.on('error', () => {});
    pop.on('warn', (err: unknown) => log.debug({ err }, 'pop3 warning'));
    const destroy = () => (pop as unknown as { _socket?: { destroy(): void } | null })._socket?.destroy();
    this.#logins.add(destroy);
    try {
      // node-pop3 logs in lazily on the first command; doing it explicitly gives login its own deadline
      const login: Promise<unknown> = token ? loginXoauth2(pop, s.username, token.reveal(), `POP3 ${s.host}:${s.port}`) : pop._connect();
      await withDeadline(login, s.timeouts.connectMs, `POP3 ${s.host}:${s.port} connect`, destroy);
      this.#lastLoginAt = Date.now();
    } catch (err) {
      destroy();
      throw toPop3Error(err, errorContext);
    } finally {
      this.#logins.delete(destroy);
    }
    return new Pop3Link(pop, `POP3 ${s.host}:${s.port}`, s.timeouts.commandMs, (err) => toPop3Error(err, errorContext));
  }
}
