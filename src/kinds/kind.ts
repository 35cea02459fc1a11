import type { TSchema } from 'typebox';
import type { Config } from '../config.js';
import type { Capability } from '../domain/mail.js';
import type { PreparedSession } from '../domain/prepared-session.js';
import type { MailboxLimiter } from '../connectors/graph/mailbox-limiter.js';
import type { OAuthBroker } from '../oauth/broker.js';

/**
 * Services shared by all sessions that a kind may need when it prepares a session (e.g. the OAuth2
 * broker). Built once in buildApp.
 */
export interface KindServices {
  /** OAuth2 tokens, sign-ins and the encrypted token cache (EWS today; Graph and XOAUTH2 next). */
  oauth: OAuthBroker;
  /** Microsoft Graph's 4 concurrent requests per app and mailbox, shared by the outlook sessions. */
  graphLimiter: MailboxLimiter;
}

/** Who creates the session. OAuth2 kinds keep cached tokens per owner, so one principal never reuses another's sign-in. */
export interface PrepareContext {
  owner: string;
  /** Fields given by reference ({"secret": name}) -> name, nested ones by dotted path ("smtp.username"): such a value is shown as `secret:<name>`, never sent as a hint. */
  refs?: ReadonlyMap<string, string>;
}

/**
 * One kind of session (a protocol family). Adding a protocol means adding one file that exports a
 * SessionKind and listing it in kinds/index.ts.
 */
export interface SessionKind {
  /** One create-body schema per `type` value this kind answers to. */
  bodies: readonly TSchema[];
  types: readonly string[];
  /** What the connectors of each type can do with mail; a test holds this against the connectors. */
  capabilities: Readonly<Record<string, readonly Capability[]>>;
  /** Applies defaults and semantic checks; throws AppError for a client mistake. */
  prepare(body: { type: string } & Record<string, unknown>, config: Config, services: KindServices, context: PrepareContext): PreparedSession;
}
