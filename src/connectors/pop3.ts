import Pop3Command from 'node-pop3';
import type { MailServerSettings } from '../kinds/mail-server.js';
import { AppError } from '../errors.js';
import { toMailError } from '../mail-errors.js';
import type { Connector, ConnectorContext, MailboxSummary } from './connector.js';
import { withDeadline } from './deadline.js';
import { tlsOptions } from './tls.js';

/**
 * POP3 through node-pop3, one short connection per use (login, command, QUIT).
 *
 * Why not hold the connection: a POP3 maildrop is a snapshot taken at login and the server locks it
 * while the connection is open (RFC 1939), so a held connection would never see new mail and would lock
 * out the user's other clients for hours. The session holds the validated settings instead; each use
 * logs in afresh, so it always sees the current maildrop.
 */
export class Pop3Connector implements Connector {
  readonly persistent = false;
  readonly #settings: MailServerSettings;
  readonly #ctx: ConnectorContext;

  constructor(settings: MailServerSettings, ctx: ConnectorContext) {
    this.#settings = settings;
    this.#ctx = ctx;
  }

  /** Proves the settings by a login, STAT and QUIT, whose answer is the summary. */
  connect(): Promise<MailboxSummary> {
    return this.summary();
  }

  async summary(): Promise<MailboxSummary> {
    const info = await this.#withConnection((pop) => pop.STAT());
    const [messages, size] = info.trim().split(/\s+/).map(Number);
    if (!Number.isInteger(messages) || !Number.isInteger(size)) {
      throw new AppError('MAIL_PROTOCOL_ERROR', `POP3 ${this.#settings.host}:${this.#settings.port}: unexpected STAT answer`);
    }
    return { name: 'INBOX', messages: messages!, size: size!, checkedAt: new Date().toISOString() };
  }

  async close(): Promise<void> {
    // nothing is held between uses: every use already ended with QUIT
  }

  /** Logs in, runs `fn`, then QUITs; every step is bounded because node-pop3 can wait forever. */
  async #withConnection<T>(fn: (pop: Pop3Command) => Promise<T>): Promise<T> {
    const s = this.#settings;
    if (!s.secure && s.tls.starttls === 'required') {
      // validated at create time too; kept here so no path can send a password in the clear by accident
      throw new AppError('UNSUPPORTED_OPTION', 'POP3 STARTTLS is not supported; use secure: true (port 995)');
    }
    const errorContext = { protocol: 'pop3', host: s.host, port: s.port, secrets: [s.password.reveal()] };
    let address: string;
    try {
      address = await this.#ctx.outbound.check(s.host, s.port);
    } catch (err) {
      throw toMailError(err, errorContext);
    }
    const pop = new Pop3Command({
      // the checked address, so that a second DNS answer cannot redirect the connection
      host: address,
      port: s.port,
      tls: s.secure,
      user: s.username,
      password: s.password.reveal(),
      timeout: s.timeouts.commandMs,
      // servername is set explicitly (undefined for an IP), else node-pop3 sends the IP as SNI, which Node deprecates
      tlsOptions: { servername: undefined, ...tlsOptions(s.host, s.tls) } as import('node:tls').TlsOptions,
    });
    // -ERR replies and socket errors are emitted as 'error'; without a listener they would crash the process
    pop.on('error', () => {});
    pop.on('warn', () => {});
    const destroy = () => (pop as unknown as { _socket?: { destroy(): void } | null })._socket?.destroy();
    try {
      // node-pop3 logs in lazily on the first command; doing it explicitly gives login its own deadline
      await withDeadline(pop._connect(), s.timeouts.connectMs, `POP3 ${s.host}:${s.port} connect`, destroy);
      const result = await withDeadline(fn(pop), s.timeouts.commandMs, `POP3 ${s.host}:${s.port}`, destroy);
      await withDeadline(pop.QUIT(), s.timeouts.commandMs, 'POP3 QUIT', destroy).catch(destroy);
      return result;
    } catch (err) {
      destroy();
      throw toMailError(err, errorContext);
    }
  }
}
