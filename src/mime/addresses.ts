import addressparser from 'nodemailer/lib/addressparser';
import type { Recipient } from '../domain/mail.js';
import { AppError } from '../errors.js';

const ADDRESS = /^[^\s@<>()",;:\\[\]]+@[^\s@<>()",;:\\[\]]+$/;

/**
 * Parses what a caller gave as addresses ("Name <a@b>", "a@b", several per string or a list) into
 * recipients; anything that is not an address is a VALIDATION_ERROR naming the field. Addresses are
 * parsed, never concatenated into a header.
 */
export function parseRecipients(input: string | string[] | undefined, path: string): Recipient[] {
  if (input === undefined) return [];
  const out: Recipient[] = [];
  for (const text of [input].flat()) {
    const parsed = addressparser(text, { flatten: true }) as { name?: string; address?: string }[];
    if (parsed.length === 0) throw invalid(path, `"${text.slice(0, 64)}" holds no address`);
    for (const { name, address } of parsed) {
      if (!address || !ADDRESS.test(address)) throw invalid(path, `"${(address || text).slice(0, 64)}" is not an e-mail address`);
      out.push({ name: name ?? '', address });
    }
  }
  return out;
}

function invalid(path: string, message: string): AppError {
  return new AppError('VALIDATION_ERROR', `${path} ${message}`, { errors: [{ path, message }] });
}
