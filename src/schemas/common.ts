import { Type } from 'typebox';

/** Session names are what bots quote in later calls, so they are URL-safe and bounded. */
export const SessionName = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
  description: 'Session name: 1-64 characters, letters, digits, ".", "_" and "-", starting with a letter or digit. Case-sensitive.',
  examples: ['invoices'],
});

export const Timestamp = Type.String({ format: 'date-time' });

/** A field that carries a secret. Accepted in requests, never present in any response schema. */
export function SecretString(description: string) {
  return Type.String({ minLength: 1, maxLength: 4096, description, writeOnly: true });
}
