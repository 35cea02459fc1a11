import { createHmac, randomBytes } from 'node:crypto';

// Per-process key: fingerprints compare settings (secrets included) without storing a plain hash of a password.
const key = randomBytes(32);

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Keyed hash of normalised settings; key order does not matter. */
export function fingerprint(settings: unknown): string {
  return createHmac('sha256', key).update(canonical(settings)).digest('base64url');
}
