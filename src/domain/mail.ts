import type { Readable } from 'node:stream';

/**
 * The mail a session works on, in the service's own words: what every protocol's connector reads and
 * answers, and what the HTTP schemas (schemas/message.ts) show. Nothing here knows a protocol or HTTP.
 */

export type SpecialUse = 'inbox' | 'sent' | 'drafts' | 'trash' | 'junk' | 'archive' | 'all' | 'flagged';

export interface Folder {
  /** What later calls name the folder by (IMAP: the full path, decoded from modified UTF-7). */
  path: string;
  /** The last part of the path, for display. */
  name: string;
  /** The hierarchy delimiter of the server (Dovecot ".", Cyrus "/"); null where there is no hierarchy. */
  delimiter: string | null;
  specialUse: SpecialUse | null;
}

export interface MailAddress {
  name: string | null;
  address: string | null;
}

export interface AttachmentInfo {
  /** Opaque, URL-safe; valid with the message id it came with. */
  id: string;
  filename: string | null;
  contentType: string;
  /** Decoded bytes; null when the protocol cannot tell without downloading (IMAP gives the encoded size: see connectors). */
  size: number | null;
  /** Shown in the body (Content-Disposition inline, or referenced by Content-ID) rather than attached. */
  inline: boolean;
  contentId: string | null;
}

export interface MessageSummary {
  /** Opaque, URL-safe, no "/": stable while the message stays in its folder (see each connector). */
  id: string;
  folder: string;
  messageId: string | null;
  subject: string | null;
  from: MailAddress | null;
  to: MailAddress[];
  cc: MailAddress[];
  /** The Date header, ISO 8601. */
  date: string | null;
  /** When the server received it, ISO 8601; null where the protocol does not tell (POP3). */
  receivedAt: string | null;
  /** Bytes of the whole message. */
  size: number | null;
  /** null where the protocol keeps no flags (POP3). */
  seen: boolean | null;
  flagged: boolean | null;
  answered: boolean | null;
  hasAttachments: boolean;
  attachments: AttachmentInfo[];
  /** With include=text: the plain text (derived from HTML when there is none). */
  text?: string | null;
}

export interface MessageDetail extends MessageSummary {
  text: string | null;
  html: string | null;
  headers: { name: string; value: string }[];
  inReplyTo: string | null;
  references: string[];
  /** true when the message was larger than the parse limit: text, html and attachments cover what was read. */
  truncated: boolean;
}

export type ReadStatus = 'all' | 'read' | 'unread';

/** The loop's filters ("where"): every given condition must hold; the alternatives of one condition are ORed. */
export interface MessageFilter {
  status: ReadStatus;
  /** Case-insensitive "contains", any of which matches (the API's `;`-separated list). */
  subject: string[];
  from: string[];
  /** On the date received: at or after `since`, before `before`. */
  since?: Date;
  before?: Date;
}

export interface ListQuery extends MessageFilter {
  folder: string;
  limit: number;
  /** From the previous page's nextCursor; opaque to everyone but the connector that made it. */
  cursor?: string;
  order: 'newest' | 'oldest';
  includeText: boolean;
}

export interface MessagePage {
  messages: MessageSummary[];
  nextCursor: string | null;
}

/** Bytes to stream to the caller: a raw message or one attachment. */
export interface Download {
  contentType: string;
  filename: string | null;
  /** Bytes, when known before streaming. */
  size: number | null;
  stream: Readable;
}

/** Reading: folders, pages of summaries, one message parsed, raw messages and attachments. */
export interface MessageReader {
  folders(): Promise<Folder[]>;
  list(query: ListQuery): Promise<MessagePage>;
  get(id: string, options: { markAsRead: boolean }): Promise<MessageDetail>;
  raw(id: string): Promise<Download>;
  attachment(id: string, attachmentId: string): Promise<Download>;
}

/** What a connector can do with mail; an operation a protocol cannot do is absent, not a method that throws. */
export interface MailCapabilities {
  reader?: MessageReader;
}

export type Capability = keyof MailCapabilities;

/** How a capability reads in an error message ("pop3 sessions cannot <verb>"). */
export const CAPABILITY_VERBS: Readonly<Record<Capability, string>> = {
  reader: 'read messages',
};

/** Base64url without padding: ids and cursors are made of it, so they are URL-safe and have no "/". */
export function encodeId(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

/** The inverse of encodeId; undefined when `id` is not base64url. */
export function decodeId(id: string): string | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(id)) return undefined;
  return Buffer.from(id, 'base64url').toString('utf8');
}
