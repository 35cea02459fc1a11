import { Type, type Static, type TSchema } from 'typebox';
import { SessionName, StringEnum, Timestamp } from './common.js';
import { ref, shared } from './shared.js';

/**
 * `T | null` as one schema with a type list ({ type: ['object', 'null'] }) instead of anyOf: the same JSON
 * Schema meaning, but fast-json-stringify then picks the branch by typeof instead of running a validator
 * (with a date-time regex) on every response.
 */
const Nullable = <T extends TSchema & { type?: unknown }>(schema: T, options: Record<string, unknown> = {}) =>
  Type.Unsafe<Static<T> | null>({ ...schema, ...options, type: [schema.type as string, 'null'] });

export const SessionStateSchema = shared(
  'SessionState',
  StringEnum(['connecting', 'connected', 'reconnecting', 'awaiting_authorization', 'failed', 'closed'], {
    description:
      'connecting: logging in; connected: ready; reconnecting: lost and retrying; awaiting_authorization: waiting for an OAuth2 sign-in; failed: gave up (see lastError); closed: logged out.',
  }),
);

/** Shared (one Mailbox type in clients) and nullable in itself, so that the serializer keeps its typeof check. */
export const MailboxSchema = shared(
  'Mailbox',
  Nullable(
    Type.Object({
      name: Type.String({ examples: ['INBOX'] }),
      messages: Type.Integer({ minimum: 0 }),
      unseen: Type.Optional(Type.Integer({ minimum: 0, description: 'IMAP and EWS (the Inbox UnreadCount).' })),
      size: Type.Optional(Type.Integer({ minimum: 0, description: 'POP3 only: total size in bytes.' })),
      checkedAt: Timestamp,
    }),
    { description: 'Mailbox summary as of checkedAt; null before the first one.' },
  ),
);

/**
 * The session as every response shows it. The serializer emits only these properties, which is what
 * guarantees that no secret field can ever be part of a response.
 */
export const SessionSchema = shared(
  'Session',
  Type.Object(
    {
      name: SessionName,
      owner: Type.String({ description: 'The principal (API key) that created the session; only it and admins can see it.', examples: ['bot-a'] }),
      type: Type.String({ examples: ['imap'] }),
      state: ref(SessionStateSchema),
      createdAt: Timestamp,
      connectedAt: Nullable(Timestamp),
      lastUsedAt: Timestamp,
      expiresAt: Nullable(Timestamp, { description: 'When the session closes if not used before (every API call naming it renews it); null = never.' }),
      idleTimeoutMs: Type.Integer({ description: 'Idle timeout of this session; 0 = never expires.' }),
      lastError: Nullable(
        Type.Object({ code: Type.String({ examples: ['MAIL_AUTH_FAILED'] }), message: Type.String(), at: Timestamp }),
      ),
      reconnect: Nullable(Type.Object({ attempt: Type.Integer(), nextAttemptAt: Nullable(Timestamp) }), {
        description: 'While reconnecting: attempts made so far and when the next one starts.',
      }),
      host: Type.Optional(Type.String()),
      port: Type.Optional(Type.Integer()),
      secure: Type.Optional(Type.Boolean()),
      username: Type.Optional(Type.String({ description: 'The user name, or `secret:<name>` when it was given as a secret reference.' })),
      tls: Type.Optional(
        Type.Object({
          mode: Type.String({ description: 'implicit, starttls-required, starttls-opportunistic or none; https for EWS.' }),
          verifyCertificate: Type.Boolean(),
          customCa: Type.Boolean(),
          servername: Type.Optional(Type.String()),
        }),
      ),
      timeouts: Type.Optional(Type.Object({ connectMs: Type.Integer(), commandMs: Type.Integer() })),
      url: Type.Optional(Type.String({ description: 'EWS: the endpoint the session talks to; outlook: the Graph Inbox resource it reads.' })),
      signedInAs: Type.Optional(
        Type.String({
          description: 'outlook without username: the account that signed in, i.e. whose mailbox the session reads. Give username at create to pin the account instead.',
        }),
      ),
      mailboxUser: Type.Optional(Type.String({ description: 'outlook: the mailbox opened through /users/{id} (app-only, or a shared mailbox); absent for the signed-in user\'s own (/me).' })),
      domain: Type.Optional(Type.String({ description: 'EWS: the domain the endpoint was derived from, when given.' })),
      exchangeVersion: Type.Optional(Type.String({ description: 'EWS: the RequestServerVersion sent.', examples: ['Exchange2013'] })),
      auth: Type.Optional(
        Type.Object(
          {
            type: Type.String({ description: 'basic or oauth2.' }),
            provider: Type.Optional(Type.String({ description: 'IMAP/POP3 oauth2: microsoft or generic.' })),
            flow: Type.Optional(Type.String({ description: 'oauth2: authorizationCode, password, clientCredentials, or refreshToken (generic provider).' })),
            clientId: Type.Optional(Type.String()),
            tenantId: Type.Optional(Type.String()),
            authorityHost: Type.Optional(Type.String()),
            impersonate: Type.Optional(Type.String({ description: 'clientCredentials: the mailbox acted as.' })),
            clientSecretSource: Type.Optional(Type.String({ description: 'Where the client secret comes from: request, server or none (never the secret itself).' })),
            tokenUrl: Type.Optional(Type.String({ description: 'IMAP/POP3 oauth2 with provider generic: the token endpoint.' })),
            scope: Type.Optional(Type.String({ description: 'The OAuth2 scope requested.' })),
          },
          { description: 'EWS, outlook, and IMAP/POP3 with OAuth2: how the session authenticates. Never a secret.' },
        ),
      ),
      smtp: Type.Optional(
        Type.Object(
          {
            host: Type.String(),
            port: Type.Integer(),
            secure: Type.Boolean(),
            username: Type.String({ description: 'The SMTP user name, or `secret:<name>` when it was given as a secret reference.' }),
            from: Type.String({ description: 'The From address of every message sent.' }),
            saveToSent: Type.Boolean({ description: 'Whether a copy of each message sent is appended to \\Sent.' }),
            tls: Type.Object({ mode: Type.String(), verifyCertificate: Type.Boolean(), customCa: Type.Boolean(), servername: Type.Optional(Type.String()) }),
            auth: Type.String({ description: 'password, or oauth2 (the mailbox\'s token, XOAUTH2).' }),
          },
          { description: 'IMAP/POP3: where the session sends mail (verified at create). Never a secret.' },
        ),
      ),
      mailbox: ref(MailboxSchema),
      warnings: Type.Array(Type.String(), { description: 'Things the caller should know, such as a dated deprecation.' }),
      webhooks: Type.Optional(
        Type.Array(
          Type.Object({
            url: Type.String({ description: 'The receiver (without its query).' }),
            scope: StringEnum(['session', 'principal'], { description: 'session: the create body\'s webhook; principal: MSB_WEBHOOK_URLS.' }),
            lastDelivery: Nullable(
              Type.Object({
                at: Timestamp,
                eventId: Type.String(),
                ok: Type.Boolean(),
                status: Nullable(Type.Integer(), { description: 'The receiver\'s HTTP status; null when no answer came.' }),
                attempts: Type.Integer(),
                error: Nullable(Type.String(), { description: 'Why the last attempt failed (e.g. HTTP 500, ETIMEDOUT).' }),
              }),
            ),
          }),
          { description: 'Webhooks that carry this session\'s events, with the last delivery of each.' },
        ),
      ),
      authorizationUrl: Type.Optional(Type.String({ description: 'While awaiting_authorization: the sign-in page to open.' })),
    },
    { description: 'A session as inspect and list show it: never a secret.' },
  ),
);

export type SessionResponse = Static<typeof SessionSchema>;

export const SessionListSchema = shared('SessionList', Type.Object({ sessions: Type.Array(ref(SessionSchema)) }));
