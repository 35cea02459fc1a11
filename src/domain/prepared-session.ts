import type { Connector, ConnectorContext } from './connector.js';
import type { WebhookTarget } from './webhooks.js';

/** Public, secret-free settings of a session, merged into its inspect output. */
export type SessionSettingsView = Record<string, unknown>;

/** A create request after validation and normalisation, ready to become a session. */
export interface PreparedSession {
  type: string;
  /** Keyed hash of every setting including secrets: equal fingerprints mean "the same settings". */
  fingerprint: string;
  view: SessionSettingsView;
  /** Mail host, for the per-host session limit. */
  host?: string;
  /** Per-session idle timeout, overriding MSB_IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: number;
  /** Extra bindings for the session's child logger (never secrets). */
  logBindings: Record<string, unknown>;
  /** The create body as the caller gave it, kept in the session store (when one is configured) for restores. */
  definition?: Record<string, unknown>;
  /** Folders watched for new mail (message.new events), where the type can watch; default INBOX. */
  watch?: readonly string[];
  /** Where this session's events are POSTed, besides the principal's webhook. */
  webhook?: WebhookTarget;
  createConnector(ctx: ConnectorContext): Connector;
}
