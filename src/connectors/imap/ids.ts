import { createHash } from 'node:crypto';
import { decodeId, encodeId } from '../../domain/mail.js';

/**
 * IMAP message ids and list cursors. Both are base64url text, so they are URL-safe, without "/".
 *
 * A message id is "1:<UIDVALIDITY>:<UID>:<folder path>" (RFC 9051 2.3.1.1: the pair UIDVALIDITY + UID never
 * names another message of the folder, and a folder whose UIDVALIDITY changed voids every old id: it answers
 * MESSAGE_NOT_FOUND, never another message). A path too long for a 1024-character id is replaced by its SHA-256
 * ("2:<UIDVALIDITY>:<UID>:<hash>"), which a read resolves against the folder list.
 */

export interface MessageRef {
  uidValidity: bigint;
  uid: number;
  /** The folder's path; absent when the id carries its hash (`pathHash`) instead. */
  path?: string;
  pathHash?: string;
}

const MAX_ID = 1024;
const DIGITS = /^[0-9]{1,20}$/;

/** The SHA-256 of a folder path, base64url: what a long path's ids carry. */
export function pathHash(path: string): string {
  return createHash('sha256').update(path, 'utf8').digest('base64url');
}

export function encodeMessageId(path: string, uidValidity: bigint, uid: number): string {
  const id = encodeId(`1:${uidValidity}:${uid}:${path}`);
  return id.length <= MAX_ID ? id : encodeId(`2:${uidValidity}:${uid}:${pathHash(path)}`);
}

/** undefined for anything this connector did not make (the answer is then MESSAGE_NOT_FOUND). */
export function decodeMessageId(id: string): MessageRef | undefined {
  const text = decodeId(id);
  const match = text === undefined ? null : /^([12]):([^:]+):([^:]+):(.+)$/s.exec(text);
  if (!match || !DIGITS.test(match[2]!) || !DIGITS.test(match[3]!)) return undefined;
  const uid = Number(match[3]);
  if (!Number.isSafeInteger(uid) || uid < 1 || uid > 0xffffffff) return undefined;
  const ref = { uidValidity: BigInt(match[2]!), uid };
  return match[1] === '1' ? { ...ref, path: match[4]! } : { ...ref, pathHash: match[4]! };
}

/** Where the next page starts: after UID `uid` (exclusive) in `order`, in the folder as it was at UIDVALIDITY. */
export interface ListCursor {
  path: string;
  uidValidity: bigint;
  uid: number;
  order: 'newest' | 'oldest';
}

export function encodeCursor(c: ListCursor): string {
  return encodeId(`1:${c.order === 'newest' ? 'n' : 'o'}:${c.uidValidity}:${c.uid}:${c.path}`);
}

export function decodeCursor(cursor: string): ListCursor | undefined {
  const text = decodeId(cursor);
  const match = text === undefined ? null : /^1:([no]):([^:]+):([^:]+):(.+)$/s.exec(text);
  if (!match || !DIGITS.test(match[2]!) || !DIGITS.test(match[3]!)) return undefined;
  const uid = Number(match[3]);
  if (!Number.isSafeInteger(uid) || uid < 1 || uid > 0xffffffff) return undefined;
  return { order: match[1] === 'n' ? 'newest' : 'oldest', uidValidity: BigInt(match[2]!), uid, path: match[4]! };
}
