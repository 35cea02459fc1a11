import libmime from 'libmime';
import { encodeId, type AttachmentInfo, type MailAddress, type MessageSummary } from '../../domain/mail.js';

/**
 * Graph's message JSON in the service's words. Everything is read defensively: a field of the wrong type
 * is null, never a crash (the answer may come from a hostile or broken server).
 */

/** The message properties a summary needs ($select); `body` and `internetMessageHeaders` are added for a detail. */
export const SUMMARY_SELECT = [
  'id', 'parentFolderId', 'internetMessageId', 'subject', 'from', 'toRecipients', 'ccRecipients',
  'sentDateTime', 'receivedDateTime', 'isRead', 'flag', 'hasAttachments',
].join(',');

/**
 * Attachments without their bytes (contentId is a fileAttachment property: selecting it on the base type
 * is refused, the cast is not), and two MAPI properties Graph has no name for: PR_MESSAGE_SIZE (0x0E08,
 * the size) and PR_LAST_VERB_EXECUTED (0x1081: 102 reply, 103 reply all, 104 forward).
 */
export const SUMMARY_EXPAND =
  "attachments($select=id,name,contentType,size,isInline,microsoft.graph.fileAttachment/contentId)," +
  "singleValueExtendedProperties($filter=id eq 'Integer 0x0E08' or id eq 'Integer 0x1081')";

const SIZE_TAG = 0x0e08;
const LAST_VERB_TAG = 0x1081;
const REPLIED = new Set([102, 103]);

export interface GraphMessage {
  id: string;
  [key: string]: unknown;
}

function text(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function instant(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? null : at.toISOString();
}

function address(value: unknown): MailAddress | null {
  const email = (value as { emailAddress?: { name?: unknown; address?: unknown } } | null)?.emailAddress;
  if (typeof email !== 'object' || email === null) return null;
  return { name: text(email.name) || null, address: text(email.address) || null };
}

function addresses(value: unknown): MailAddress[] {
  return Array.isArray(value) ? value.map(address).filter((a): a is MailAddress => a !== null) : [];
}

/** A MIME type safe to send as a Content-Type header; anything else is application/octet-stream. */
export function safeContentType(value: unknown, fallback = 'application/octet-stream'): string {
  return typeof value === 'string' && value.length <= 255 && /^[\w.+-]+\/[\w.+-]+(\s*;[\x20-\x7e]*)?$/.test(value) ? value : fallback;
}

/** The integer values of the extended properties that were expanded, by property tag. */
function extended(message: GraphMessage): Map<number, number> {
  const out = new Map<number, number>();
  const list = message.singleValueExtendedProperties;
  if (!Array.isArray(list)) return out;
  for (const p of list as { id?: unknown; value?: unknown }[]) {
    const tag = typeof p?.id === 'string' ? /^Integer\s+0x([0-9a-f]{1,8})$/i.exec(p.id.trim()) : null;
    const value = typeof p?.value === 'string' && /^-?\d{1,15}$/.test(p.value) ? Number(p.value) : undefined;
    if (tag && value !== undefined) out.set(Number.parseInt(tag[1]!, 16), value);
  }
  return out;
}

export function attachmentsOf(message: GraphMessage): AttachmentInfo[] {
  const list = message.attachments;
  if (!Array.isArray(list)) return [];
  return (list as Record<string, unknown>[])
    .filter((a) => typeof a?.id === 'string' && a.id.length > 0)
    .map((a) => {
      const item = typeof a['@odata.type'] === 'string' && /itemAttachment$/i.test(a['@odata.type']);
      const contentId = text(a.contentId)?.replace(/^<|>$/g, '') || null;
      return {
        id: encodeId(a.id as string),
        filename: text(a.name),
        // an attached Outlook item has no content type of its own; its /$value is MIME
        contentType: safeContentType(a.contentType, item ? 'message/rfc822' : 'application/octet-stream'),
        // Exchange's attachment size, which counts a little more than the decoded bytes
        size: Number.isInteger(a.size) && (a.size as number) >= 0 ? (a.size as number) : null,
        inline: a.isInline === true,
        contentId,
      };
    });
}

export function toSummary(message: GraphMessage, folder: string): MessageSummary {
  const props = extended(message);
  const flag = (message.flag as { flagStatus?: unknown } | null)?.flagStatus;
  const verb = props.get(LAST_VERB_TAG);
  const size = props.get(SIZE_TAG);
  return {
    id: encodeId(message.id),
    folder,
    messageId: text(message.internetMessageId),
    subject: text(message.subject),
    from: address(message.from),
    to: addresses(message.toRecipients),
    cc: addresses(message.ccRecipients),
    // Exchange's client submit time, which is the Date header of received mail
    date: instant(message.sentDateTime),
    receivedAt: instant(message.receivedDateTime),
    size: size !== undefined && size >= 0 ? size : null,
    seen: typeof message.isRead === 'boolean' ? message.isRead : null,
    flagged: typeof flag === 'string' ? flag === 'flagged' : null,
    answered: verb === undefined ? false : REPLIED.has(verb),
    hasAttachments: message.hasAttachments === true,
    attachments: attachmentsOf(message),
  };
}

/** The body when Graph gave it in the asked form (`contentType` "text" or "html"). */
export function bodyOf(message: GraphMessage): { type: 'text' | 'html'; content: string } | undefined {
  const body = message.body as { contentType?: unknown; content?: unknown } | null | undefined;
  if (typeof body?.content !== 'string') return undefined;
  const type = typeof body.contentType === 'string' ? body.contentType.toLowerCase() : '';
  return type === 'html' || type === 'text' ? { type, content: body.content } : undefined;
}

/** internetMessageHeaders, in order, with RFC 2047 encoded words decoded. */
export function headersOf(message: GraphMessage): { name: string; value: string }[] {
  const list = message.internetMessageHeaders;
  if (!Array.isArray(list)) return [];
  return (list as { name?: unknown; value?: unknown }[])
    .filter((h) => typeof h?.name === 'string' && typeof h.value === 'string')
    .map((h) => ({ name: h.name as string, value: decodeWords(h.value as string) }));
}

function decodeWords(value: string): string {
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

/** Message-IDs of In-Reply-To / References, in order. */
export function messageIds(value: string | undefined): string[] {
  return value?.match(/<[^<>\s]+>/g) ?? [];
}
