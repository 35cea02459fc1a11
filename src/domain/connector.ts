import type { Logger } from 'pino';
import type { OutboundPolicy } from '../security/outbound-policy.js';
import type { MailCapabilities } from './mail.js';

/** What inspect shows of a mailbox; counts are as of `checkedAt`. */
export interface MailboxSummary {
  name: string;
  messages: number;
  unseen?: number;
  /** Total size in bytes, where the protocol tells it cheaply (POP3 STAT). */
  size?: number;
  checkedAt: string;
}

/** Handed to a connector by its session. */
export interface ConnectorContext {
  logger: Logger;
  /** Checks every destination before connecting and gives the address to connect to. */
  outbound: OutboundPolicy;
  /** Called at most once per connection, when an established connection is lost. */
  onDrop: (err: unknown) => void;
  /**
   * Asks the session to connect again now, e.g. once an OAuth2 sign-in completed at the redirect
   * endpoint (the connector threw AUTHORIZATION_REQUIRED from connect() before).
   */
  resume: () => Promise<void>;
}

/**
 * One live link to a mailbox. A session owns exactly one connector and calls it one operation at a
 * time (the session serializes), so implementations need no locking of their own.
 *
 * What it can do with mail it declares as capabilities (MailCapabilities: `reader`, ...), each of which
 * uses the same authenticated link; a capability the protocol lacks is simply absent.
 */
export interface Connector extends MailCapabilities {
  /**
   * true when the connector holds a connection between operations (IMAP): the session keeps it alive.
   * false when it connects per use (POP3): the session only checks it now and then.
   */
  readonly persistent: boolean;
  /**
   * Opens the connection and authenticates. Rejects with an AppError (each protocol's errors.ts). May resolve
   * with the mailbox summary when reading it was part of proving the connection; else the session asks.
   */
  connect(): Promise<MailboxSummary | void>;
  /** Reads the mailbox summary from the server. */
  summary(): Promise<MailboxSummary>;
  /** Logs out cleanly (LOGOUT / QUIT). Never rejects; bounded in time. */
  close(): Promise<void>;
  /**
   * Ends a connect in flight at once (its promise then rejects), for a session closed while connecting: without
   * it the close would wait for the connect timeout. Connectors whose connect is only bounded HTTP requests omit it.
   */
  abort?(): void;
}
