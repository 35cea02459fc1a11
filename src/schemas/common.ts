import { Type, type TSchemaOptions, type TStringOptions } from 'typebox';
import { ref, shared } from './shared.js';

/** Session names are what bots quote in later calls, so they are URL-safe and bounded. */
export const SessionName = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
  description: 'Session name: 1-64 characters, letters, digits, ".", "_" and "-", starting with a letter or digit. Case-sensitive.',
  examples: ['invoices'],
});

/** Patterns shared by the Microsoft kinds (EWS, Outlook, IMAP/POP3 OAuth2): one definition each. */
export { HOST_PORT_PATTERN } from '../net/host-port.js';
export const CLIENT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$';
export const TENANT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$';

export const Timestamp = Type.String({ format: 'date-time' });

/** A closed set of strings, typed as such in the document (a bare `enum` leaves generated types unknown). */
export function StringEnum<const T extends readonly string[]>(values: T, options: TSchemaOptions = {}) {
  return Type.Unsafe<T[number]>({ ...options, type: 'string', enum: [...values] });
}

/**
 * What no request field that can reach a wire may carry: the C0 controls (NUL, TAB, LF, CR...) and DEL. A CR LF
 * in a user name ends an IMAP or POP3 command and starts another one; in a header value it splits the header.
 */
export const CONTROL_CHARACTERS = '\\u0000-\\u001F\\u007F';
export const NO_CONTROLS_PATTERN = `^[^${CONTROL_CHARACTERS}]*$`;
/** An https URL without credentials, spaces or control characters (EWS endpoint, OAuth2 token endpoint). */
export const HTTPS_URL_PATTERN = `^https://[^\\s/?#@${CONTROL_CHARACTERS}]+(/[^\\s#${CONTROL_CHARACTERS}]*)?$`;

/**
 * A request string that may go onto a wire (credentials, user names, folder names, header values, anything a
 * mail server or an identity provider may see): control characters are a 400 VALIDATION_ERROR. A field with
 * a stricter structure (a host name, a URL) has its own pattern instead, one that refuses them too.
 */
export function WireString(options: Omit<TStringOptions, 'pattern'> = {}) {
  return Type.String({ ...options, pattern: NO_CONTROLS_PATTERN });
}

export const SecretRefSchema = shared(
  'SecretRef',
  Type.Object(
    { secret: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$', description: 'Name of a secret held by the server (MSB_SECRETS_DIR file or MSB_SECRET_<NAME> variable).' }) },
    { additionalProperties: false, description: 'A reference to a secret held by the server, instead of the value.' },
  ),
);

/** A credential field: a string, or a reference to a secret held by the server (Automation Anywhere's "Credential Vault or String"). */
export function CredentialString(description: string, options: { writeOnly?: boolean; maxLength?: number } = {}) {
  return Type.Union([WireString({ minLength: 1, maxLength: options.maxLength ?? 4096 }), ref(SecretRefSchema)], {
    description: `${description} A string, or {"secret": "name"}.`,
    ...(options.writeOnly ? { writeOnly: true } : {}),
  });
}

/** A field that carries a secret. Accepted in requests, never present in any response schema. */
export function SecretString(description: string) {
  return CredentialString(description, { writeOnly: true });
}

/** Fields every kind of session accepts besides its own. */
/** Where this session's events are POSTed, signed with `secret` (see the README's "Events"). */
export const WebhookBody = shared(
  'Webhook',
  Type.Object(
    {
      url: Type.String({ maxLength: 2048, pattern: `^https?://[^\\s/?#@${CONTROL_CHARACTERS}]+(/[^\\s#${CONTROL_CHARACTERS}]*)?$`, description: 'http(s) URL of the receiver; it passes the outbound policy like every destination.' }),
      secret: SecretString('Key of the HMAC-SHA256 signature in X-MSB-Signature, at least 16 characters.'),
    },
    { additionalProperties: false },
  ),
);

export const CommonSessionFields = {
  webhook: Type.Optional(ref(WebhookBody)),
  watch: Type.Optional(
    Type.Array(WireString({ minLength: 1, maxLength: 1000 }), {
      maxItems: 20,
      description: 'Folders watched for new mail (message.new events on /v1/events and webhooks); default ["INBOX"], [] for none.',
    }),
  ),
  idleTimeoutMs: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 2_147_483_647, description: 'Close the session after this long without an API call naming it; 0 = never. Default MSB_IDLE_TIMEOUT_MS.' }),
  ),
};

/** `tls` of the HTTPS kinds: an extra CA for that endpoint only (verification is never turned off there). */
export function HttpsTlsBody(endpoint: string) {
  return Type.Optional(
    Type.Object(
      { ca: Type.Optional(Type.String({ minLength: 1, maxLength: 65_536, pattern: '-----BEGIN CERTIFICATE-----', description: `Extra trusted CA certificate(s), PEM, for ${endpoint} only.` })) },
      { additionalProperties: false },
    ),
  );
}

/** `timeouts` of a kind: per-session overrides of MSB_CONNECT_TIMEOUT_MS and MSB_COMMAND_TIMEOUT_MS. */
export function TimeoutsBody(connect: string, command: string) {
  return Type.Object(
    {
      connectMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 300_000, description: `${connect} (default MSB_CONNECT_TIMEOUT_MS).` })),
      commandMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000, description: `${command} (default MSB_COMMAND_TIMEOUT_MS).` })),
    },
    { additionalProperties: false },
  );
}
