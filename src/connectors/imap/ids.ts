import { createHash } from 'node:crypto';
import { decodeId, encodeId } from '../../domain/mail.js';

/**
 * IMAP message ids and list cursors. Both are base64url text, so they are URL-safe, without "/".
 *
 * A message id is "1:<UIDVALIDITY>:<UID>:<check>:<folder path>" (RFC 9051 2.3.1.1: the pair UIDVALIDITY + UID
 * never names another message of the folder, and a folder whose UIDVALIDITY changed voids every old id: it
 * answers MESSAGE_NOT_FOUND, never another message). `check` is a short hash of what never changes in a message
 * (Message-ID, INTERNALDATE, RFC822.SIZE), compared on every read: GreenMail gives a folder deleted and created
 * again within a second the same UIDVALIDITY and starts its UIDs over, so UIDVALIDITY alone would let an old id
 * name a new message there. A path too long for a 1024-character id is replaced by its SHA-256
 * ("2:<UIDVALIDITY>:<UID>:<check>:<hash>"), which a read resolves against the folder list.
 */

export interface MessageRef {
  uidValidity: bigint;
  uid: number;
  check: string;
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

/** What identifies a message beyond its UID, as FETCH returns it: 8 characters of a hash. */
export interface MessageMarks {
  messageId: string | null | undefined;
  internalDate: Date | string | undefined;
  size: number | undefined;
}

export function messageCheck(m: MessageMarks): string {
  const date = m.internalDate instanceof Date ? String(m.internalDate.getTime()) : String(m.internalDate ?? '');
  return createHash('sha256').update(`${m.messageId ?? ''}\n${date}\n${m.size ?? ''}`, 'utf8').digest('base64url').slice(0, 8);
}

export function encodeMessageId(path: string, uidValidity: bigint, uid: number, check: string): string {
  const id = encodeId(`1:${uidValidity}:${uid}:${check}:${path}`);
  return id.length <= MAX_ID ? id : encodeId(`2:${uidValidity}:${uid}:${check}:${pathHash(path)}`);
}

/** undefined for anything this connector did not make (the answer is then MESSAGE_NOT_FOUND). */
export function decodeMessageId(id: string): MessageRef | undefined {
  const text = decodeId(id);
  const match = text === undefined ? null : /^([12]):([^:]+):([^:]+):([A-Za-z0-9_-]{8}):(.+)$/s.exec(text);
  if (!match || !DIGITS.test(match[2]!) || !DIGITS.test(match[3]!)) return undefined;
  const uid = Number(match[3]);
  if (!Number.isSafeInteger(uid) || uid < 1 || uid > 0xffffffff) return undefined;
  const ref = { uidValidity: BigInt(match[2]!), uid, check: match[4]! };
  return match[1] === '1' ? { ...ref, path: match[5]! } : { ...ref, pathHash: match[5]! };
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
