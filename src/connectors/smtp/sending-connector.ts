import type { Connector, MailboxSummary } from '../../domain/connector.js';
import type { MessageSender } from '../../domain/mail.js';
import { AppError } from '../../errors.js';

/**
 * An IMAP or POP3 connector with the `sender` capability added: every other member is its own. The first
 * connect also verifies the SMTP server (connect and log in), so that a wrong SMTP password or host fails
 * the create rather than the first send; reconnects of the mailbox do not repeat it (the SMTP connection
 * is made afresh for every send anyway).
 */
export class SendingConnector implements Connector {
  readonly #inner: Connector;
  readonly persistent: boolean;
  readonly sender: MessageSender;
  // copied, not getters: the session guard's Proxy reads members with itself as the receiver
  readonly reader: Connector['reader'];
  readonly flagger: Connector['flagger'];
  readonly mover: Connector['mover'];
  readonly deleter: Connector['deleter'];
  readonly tagger: Connector['tagger'];
  readonly watcher: Connector['watcher'];
  #verify: (() => Promise<void>) | undefined;

  constructor(inner: Connector, sender: MessageSender, verify?: () => Promise<void>) {
    this.#inner = inner;
    this.persistent = inner.persistent;
    this.sender = sender;
    this.reader = inner.reader;
    this.flagger = inner.flagger;
    this.mover = inner.mover;
    this.deleter = inner.deleter;
    this.tagger = inner.tagger;
    this.watcher = inner.watcher;
    this.#verify = verify;
  }

  async connect(): Promise<MailboxSummary | void> {
    const summary = await this.#inner.connect();
    if (this.#verify) {
      await this.#verify();
      this.#verify = undefined;
    }
    return summary;
  }

  summary(): Promise<MailboxSummary> {
    return this.#inner.summary();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  abort(): void {
    this.#inner.abort?.();
  }
}

/** The sender of a session created without `smtp`: the contract's 409 SMTP_NOT_CONFIGURED. */
export const notConfigured: MessageSender = {
  send: () => Promise.reject(notConfiguredError()),
  reply: () => Promise.reject(notConfiguredError()),
  forward: () => Promise.reject(notConfiguredError()),
};

function notConfiguredError(): AppError {
  return new AppError('SMTP_NOT_CONFIGURED', 'this session was created without smtp settings: create it again with "smtp": {"host": ...} to send');
}
