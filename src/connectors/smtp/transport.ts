import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import type { Logger } from 'pino';
import type { Secret } from '../../domain/secret.js';
import { AppError, isAppError } from '../../errors.js';
import type { AccessTokens } from '../../oauth/access-tokens.js';
import { passwordForms } from '../../security/redact.js';
import type { OutboundPolicy } from '../../security/outbound-policy.js';
import { tlsOptions } from '../tls.js';
import { toSmtpError } from './errors.js';
import type { SmtpSettings } from './settings.js';

export interface SmtpTransportContext {
  outbound: OutboundPolicy;
  logger: Logger;
}

type SmtpMailer = Mail<SMTPTransport.SentMessageInfo, SMTPTransport.Options>;

/** What the server said of the recipients of a message it took. */
export interface SmtpDelivery {
  accepted: string[];
  rejected: string[];
}

/** STARTTLS as the mailbox's settings say it (tls.starttls), in nodemailer's words. */
const STARTTLS = { required: { requireTLS: true }, opportunistic: {}, off: { ignoreTLS: true } } as const;

/**
 * SMTP submission through nodemailer, one connection per use (connect, EHLO, STARTTLS, AUTH, the message,
 * QUIT): a bot sends now and then, and an idle SMTP connection is dropped by most servers within minutes,
 * so a held one would mostly be a reconnect waiting to happen. Every connection goes to the address the
 * outbound policy checked (so a second DNS answer cannot redirect it), verifies the certificate against
 * the host name, with the session's trust, TLS 1.2 at least. nodemailer's own logging stays off: its
 * lines name recipients, and its debug lines carry the message.
 */
export class SmtpTransport {
  readonly #settings: SmtpSettings;
  readonly #ctx: SmtpTransportContext;
  readonly #tokens: AccessTokens | undefined;
  #token: Secret | undefined;

  constructor(settings: SmtpSettings, ctx: SmtpTransportContext, tokens?: AccessTokens) {
    this.#settings = settings;
    this.#ctx = ctx;
    this.#tokens = tokens;
  }

  /** Connects and logs in (nodemailer's verify), so a wrong SMTP password fails the create, not the first send. */
  async verify(): Promise<void> {
    await this.#use((transport) => transport.verify());
  }

  /** Hands `raw` to the server for the envelope's recipients; SMTP_REJECTED when it refused every one. */
  async send(envelope: { from: string; to: string[] }, raw: Buffer): Promise<SmtpDelivery> {
    const info = await this.#use((transport) => transport.sendMail({ envelope, raw }));
    const list = (value: unknown) => (Array.isArray(value) ? value.map((r) => (typeof r === 'string' ? r : String((r as { address?: unknown }).address ?? ''))) : []);
    return { accepted: list(info.accepted), rejected: list(info.rejected) };
  }

  /** Runs `op` on a fresh transport, once more with a fresh token when the server refused a cached one. */
  async #use<T>(op: (transport: SmtpMailer) => Promise<T>): Promise<T> {
    const s = this.#settings;
    let address: string;
    try {
      address = await this.#ctx.outbound.check(s.host, s.port);
    } catch (err) {
      throw isAppError(err) ? new AppError(err.code, `SMTP: ${err.message}`, err.extra) : err;
    }
    this.#token = await this.#tokens?.token();
    try {
      return await this.#once(address, op);
    } catch (err) {
      if (!this.#tokens || !isAppError(err) || err.code !== 'SMTP_AUTH_FAILED') throw err;
      this.#ctx.logger.info('the SMTP server refused the access token: trying once with a fresh one');
      this.#token = await this.#tokens.token({ fresh: true });
      return this.#once(address, op);
    }
  }

  async #once<T>(address: string, op: (transport: SmtpMailer) => Promise<T>): Promise<T> {
    const s = this.#settings;
    const tls = tlsOptions(s.host, s.tls);
    const transport = nodemailer.createTransport({
      host: address,
      port: s.port,
      secure: s.secure,
      ...(s.secure ? {} : STARTTLS[s.tls.starttls]),
      ...(tls.servername ? { servername: tls.servername } : {}),
      tls,
      auth: this.#token ? { type: 'OAuth2', user: s.username, accessToken: this.#token.reveal() } : { user: s.username, pass: s.password?.reveal() ?? '' },
      connectionTimeout: s.timeouts.connectMs,
      greetingTimeout: s.timeouts.connectMs,
      // inactivity, not the whole transfer: a large message keeps the socket busy
      socketTimeout: s.timeouts.commandMs,
      dnsTimeout: s.timeouts.connectMs,
      logger: false,
      debug: false,
    });
    try {
      return await op(transport);
    } catch (err) {
      throw toSmtpError(err, { host: s.host, port: s.port, secrets: this.#secrets() });
    } finally {
      transport.close();
    }
  }

  /** What must never appear in an error detail: the password (and its SASL forms), the token. */
  #secrets(): string[] {
    const s = this.#settings;
    const password = s.password?.reveal();
    const token = this.#token?.reveal();
    return [
      // SASL PLAIN's forms, and AUTH LOGIN's, which sends the password alone in base64
      ...(password ? [...passwordForms(s.username, password), Buffer.from(password).toString('base64')] : []),
      // XOAUTH2's initial response carries the token, in base64
      ...(token ? [token, Buffer.from(`user=${s.username}\u0001auth=Bearer ${token}\u0001\u0001`).toString('base64')] : []),
    ];
  }
}
