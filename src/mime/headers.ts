import libmime from 'libmime';
import type { AddressObject, EmailAddress, HeaderLines, HeaderValue, Headers } from 'mailparser';
import type { MailAddress } from '../domain/mail.js';

/** One header as the API shows it: the name as the message spells it, the value unfolded and decoded. */
export interface HeaderField {
  name: string;
  value: string;
}

/** Decodes encoded words (RFC 2047); a broken charset or encoding leaves the text as it was. */
export function decodeWords(text: string): string {
  try {
    return libmime.decodeWords(text);
  } catch {
    return text;
  }
}

/** mailparser's raw header lines as `{ name, value }`, in order, unfolded and decoded. */
export function headerFields(lines: HeaderLines): HeaderField[] {
  return lines.map(({ line }) => {
    const colon = line.indexOf(':');
    const name = (colon < 0 ? line : line.slice(0, colon)).trim();
    const raw = colon < 0 ? '' : line.slice(colon + 1);
    // unfolding (RFC 5322 2.2.3): a line break followed by white space is not part of the value
    return { name, value: decodeWords(raw.replace(/\r?\n(?=[ \t])/g, '').trim()) };
  });
}

/** An ISO 8601 instant, or null when `value` is no date or one JSON's date-time cannot carry (year 0 or past 9999). */
export function isoDate(value: unknown): string | null {
  if (value === null || value === undefined || value === '') return null;
  const date = value instanceof Date ? value : new Date(String(value));
  const time = date.getTime();
  if (Number.isNaN(time)) return null;
  const year = date.getUTCFullYear();
  return year >= 1 && year <= 9999 ? date.toISOString() : null;
}

/** The first value of header `name` among `fields` (case-insensitive). */
export function firstField(fields: readonly HeaderField[], name: string): string | undefined {
  const lower = name.toLowerCase();
  return fields.find((f) => f.name.toLowerCase() === lower)?.value;
}

/**
 * When the last server received the message: the date of the topmost Received header (RFC 5321 4.4: each hop
 * adds one on top, its date after the last ";"). null without one.
 */
export function receivedDate(fields: readonly HeaderField[]): string | null {
  const received = firstField(fields, 'received');
  if (!received) return null;
  const semicolon = received.lastIndexOf(';');
  return semicolon < 0 ? null : isoDate(received.slice(semicolon + 1).trim());
}

/** Every address of a mailparser address header (groups flattened), as `{ name, address }`. */
export function addressList(value: HeaderValue | undefined): MailAddress[] {
  const out: MailAddress[] = [];
  const visit = (entries: EmailAddress[]) => {
    for (const entry of entries) {
      if (entry.group) visit(entry.group);
      else out.push({ name: entry.name || null, address: entry.address || null });
    }
  };
  for (const object of ([] as unknown[]).concat(value ?? [])) {
    if (object && typeof object === 'object' && Array.isArray((object as AddressObject).value)) visit((object as AddressObject).value);
  }
  return out;
}

/** A header mailparser parsed to a string (Message-ID, In-Reply-To...), or null. */
export function stringHeader(headers: Headers, name: string): string | null {
  const value = headers.get(name);
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' && first.length ? first : null;
}

/** The References header as a list of Message-IDs. */
export function references(headers: Headers): string[] {
  const value = headers.get('references');
  return ([] as unknown[]).concat(value ?? []).filter((v): v is string => typeof v === 'string' && v.length > 0);
}
