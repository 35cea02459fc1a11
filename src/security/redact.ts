/**
 * The one rule for keeping secrets out of text that a server or a library produced: every occurrence of
 * a secret (password, token, client secret, or a form of one such as an XOAUTH2 payload) becomes
 * "[redacted]". API error details (scrub() in the protocol error files) and the mail libraries' log
 * lines (scrubbingLogger() in logger.ts) both go through it, so the two can never disagree.
 */
export const REDACTED = '[redacted]';

/** Secrets shorter than this are not searched for: "a" would blank out half of any text. */
const MIN_SECRET_LENGTH = 3;

export function redactSecrets(text: string, secrets: readonly string[]): string {
  if (secrets.length === 0 || text.length === 0) return text;
  let out = text;
  // the longest first, so a secret that contains another is removed whole
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length >= MIN_SECRET_LENGTH && out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}

/**
 * A password and the forms it travels in that a server could echo: SASL PLAIN's base64 initial
 * response (with and without an authorization identity). A server that says "bad password <it>" quotes
 * one of these.
 */
export function passwordForms(user: string, password: string): string[] {
  return [
    password,
    Buffer.from(`\u0000${user}\u0000${password}`).toString('base64'),
    Buffer.from(`${user}\u0000${user}\u0000${password}`).toString('base64'),
  ];
}

const MAX_DEPTH = 8;

/**
 * A copy of a log value with redactSecrets() applied to every string in it (keys included). Errors
 * become plain objects with their type, message, stack and own fields (imapflow hangs the server's
 * responseText on the error it logs). Cycles and deep nesting end in "[...]".
 */
export function redactValue(value: unknown, secrets: readonly string[], seen = new WeakSet<object>(), depth = 0): unknown {
  if (typeof value === 'string') return redactSecrets(value, secrets);
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value) || depth >= MAX_DEPTH) return '[...]';
  seen.add(value);
  if (Buffer.isBuffer(value)) return redactSecrets(value.toString('latin1'), secrets);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, secrets, seen, depth + 1));
  // no prototype, so pino's err serializer takes `name` for the type instead of "Object"
  const out: Record<string, unknown> = value instanceof Error ? Object.create(null) : {};
  if (value instanceof Error) {
    out.name = value.name;
    out.message = redactSecrets(value.message, secrets);
    if (value.stack) out.stack = redactSecrets(value.stack, secrets);
  }
  for (const [key, item] of Object.entries(value)) out[redactSecrets(key, secrets)] = redactValue(item, secrets, seen, depth + 1);
  return out;
}
