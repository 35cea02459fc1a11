import { ImapFlow } from 'imapflow';
import type { MailServerSettings } from '../kinds/mail-server.js';
import { toMailError } from '../mail-errors.js';
import type { Connector, ConnectorContext, MailboxSummary } from './connector.js';
import { withDeadline } from './deadline.js';
import { tlsOptions } from './tls.js';

const STARTTLS_POLICY = { required: true, opportunistic: undefined, off: false } as const;

/** IMAP through imapflow: one authenticated connection, nothing selected, INBOX read by STATUS. */
export class ImapConnector implements Connector {
  readonly #settings: MailServerSettings;
  readonly #ctx: ConnectorContext;
  readonly persistent = true;
  #client: ImapFlow | undefined;

  constructor(settings: MailServerSettings, ctx: ConnectorContext) {
    this.#settings = settings;
    this.#ctx = ctx;
  }

  async connect(): Promise<void> {
    const s = this.#settings;
    let address: string;
    try {
      address = await this.#ctx.outbound.check(s.host, s.port);
    } catch (err) {
      throw toMailError(err, this.#errorContext());
    }
    const tls = tlsOptions(s.host, s.tls);
    const client = new ImapFlow({
      // the checked address, so that a second DNS answer cannot redirect the connection
      host: address,
      port: s.port,
      ...(tls.servername ? { servername: tls.servername } : {}),
      secure: s.secure,
      doSTARTTLS: s.secure ? undefined : STARTTLS_POLICY[s.tls.starttls],
      tls,
      auth: { user: s.username, pass: s.password.reveal() },
      logger: this.#ctx.logger,
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
      this.#ctx.logger.warn({ err: toMailError(err, this.#errorContext()) }, 'imap connection error');
    });
    client.once('close', () => {
      // a client we replaced or closed ourselves is not a drop
      if (this.#client === client) {
        this.#client = undefined;
        this.#ctx.onDrop(toMailError(lastError ?? { code: 'EConnectionClosed', message: 'connection closed by the server' }, this.#errorContext()));
      }
    });
    try {
      await withDeadline(client.connect(), s.timeouts.connectMs, `IMAP ${s.host}:${s.port} connect`, () => client.close());
    } catch (err) {
      client.close();
      throw toMailError(err, this.#errorContext());
    }
    this.#client = client;
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
      throw toMailError(err, this.#errorContext());
    }
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (!client) return;
    try {
      await withDeadline(client.logout(), this.#settings.timeouts.commandMs, 'IMAP LOGOUT', () => client.close());
    } catch {
      client.close();
    }
  }

  #requireClient(): ImapFlow {
    if (!this.#client) throw toMailError({ code: 'NoConnection', message: 'not connected' }, this.#errorContext());
    return this.#client;
  }

  #errorContext() {
    const s = this.#settings;
    return { protocol: 'imap', host: s.host, port: s.port, secrets: [s.password.reveal()] };
  }
}
