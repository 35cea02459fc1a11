import type { TSchema } from 'typebox';
import type { Config } from '../config.js';
import type { Connector, ConnectorContext } from '../connectors/connector.js';
import type { OAuthBroker } from '../oauth/broker.js';

/**
 * Services shared by all sessions that a kind may need when it prepares a session (e.g. the OAuth2
 * broker). Built once in buildApp.
 */
export interface KindServices {
  /** OAuth2 tokens, sign-ins and the encrypted token cache (EWS today; Graph and XOAUTH2 next). */
  oauth: OAuthBroker;
}

/** Who creates the session. OAuth2 kinds keep cached tokens per owner, so one principal never reuses another's sign-in. */
export interface PrepareContext {
  owner: string;
  /** Top-level fields given by reference ({"secret": name}) -> name: such a value is shown as `secret:<name>`, never sent as a hint. */
  refs?: ReadonlyMap<string, string>;
}

/** Public, secret-free settings of a session, merged into its inspect output. */
export type SessionSettingsView = Record<string, unknown>;

/** A create request after validation and normalisation, ready to become a session. */
export interface PreparedSession {
  type: string;
  /** Keyed hash of every setting including secrets: equal fingerprints mean "the same settings". */
  fingerprint: string;
  view: SessionSettingsView;
  /** Public facts learnt while the session runs (e.g. the account that signed in), merged into every view. */
  liveView?: () => SessionSettingsView;
  /** Mail host, for the per-host session limit. */
  host?: string;
  /** Per-session idle timeout, overriding MSB_IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: number;
  /** Extra bindings for the session's child logger (never secrets). */
  logBindings: Record<string, unknown>;
  createConnector(ctx: ConnectorContext): Connector;
}

/**
 * One kind of session (a protocol family). Adding a protocol means adding one file that exports a
 * SessionKind and listing it in kinds/index.ts.
 */
export interface SessionKind {
  /** One create-body schema per `type` value this kind answers to. */
  bodies: readonly TSchema[];
  types: readonly string[];
  /** Applies defaults and semantic checks; throws AppError for a client mistake. */
  prepare(body: { type: string } & Record<string, unknown>, config: Config, services: KindServices, context: PrepareContext): PreparedSession;
}
