import type { Readable } from 'node:stream';
import { AppError } from '../errors.js';

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
  /** Only messages without this keyword (IMAP keyword, EWS/Graph category): what work claims have not done yet. */
  withoutKeyword?: string;
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

/** A change of the flags a bot can set ("Change status"); absent fields stay as they are. */
export interface FlagChange {
  seen?: boolean;
  flagged?: boolean;
}

/** One message of a bulk move: its id before, and after (null where the server did not tell). */
export interface MovedMessage {
  id: string;
  newId: string | null;
}

/**
 * Flags: read/unread and flagged, one message or every message matching a filter in a folder.
 * A bulk operation that stops midway throws with what it did in `partial` (see partialFailure).
 */
export interface MessageFlagger {
  update(id: string, change: FlagChange): Promise<MessageSummary>;
  updateMany(folder: string, where: MessageFilter, change: FlagChange): Promise<{ updated: number }>;
}

/** Moves ("Move", "Move all"); a move answers the new id (the old one is MESSAGE_NOT_FOUND afterwards). */
export interface MessageMover {
  move(id: string, to: string): Promise<{ id: string; folder: string }>;
  moveMany(folder: string, where: MessageFilter, to: string): Promise<{ moved: number; messages: MovedMessage[] }>;
}

/** Deletes: to the mailbox's trash where it has one, or for good with `permanent` (or when already there). */
export interface MessageDeleter {
  delete(id: string, options: { permanent: boolean }): Promise<void>;
  deleteMany(folder: string, where: MessageFilter, options: { permanent: boolean }): Promise<{ deleted: number }>;
}

/** An address the caller gave, parsed (never concatenated into a header). */
export interface Recipient {
  name: string;
  address: string;
}

export interface OutgoingAttachment {
  filename: string;
  contentType: string | null;
  content: Buffer;
}

/** A new message ("Send"). */
export interface OutgoingMessage {
  to: Recipient[];
  cc: Recipient[];
  bcc: Recipient[];
  subject: string;
  text: string | null;
  html: string | null;
  attachments: OutgoingAttachment[];
}

/** "Reply": to the sender, or with replyAll to every recipient but the mailbox itself; the original quoted below. */
export interface ReplyRequest {
  text: string | null;
  html: string | null;
  replyAll: boolean;
  attachments: OutgoingAttachment[];
}

/** "Forward": the original (and its attachments) below the new text. */
export interface ForwardRequest {
  to: Recipient[];
  cc: Recipient[];
  bcc: Recipient[];
  text: string | null;
  html: string | null;
  attachments: OutgoingAttachment[];
}

/** What the server said of a sent message: a message is only reported sent when the server took it. */
export interface SendResult {
  messageId: string | null;
  accepted: string[];
  rejected: string[];
  /** What went wrong after the server took the message (the copy in Sent, \Answered): it was sent all the same. */
  warnings?: string[];
}

/** Sending: new mail, replies and forwards (SMTP for IMAP/POP3 sessions, EWS and Graph natively). */
export interface MessageSender {
  send(message: OutgoingMessage): Promise<SendResult>;
  reply(id: string, request: ReplyRequest): Promise<SendResult>;
  forward(id: string, request: ForwardRequest): Promise<SendResult>;
}

/** Keywords (IMAP) or categories (EWS, Graph) on messages: how work claims mark a message done on the server. */
export interface MessageTagger {
  tag(id: string, keyword: string): Promise<void>;
}

/** What a watcher reports; the session turns each into an event (message.new, message.deleted, mailbox.reset). */
export interface WatchListener {
  newMessage(summary: MessageSummary): void;
  deleted(id: string, folder: string): void;
  /** The folder's identity changed (IMAP UIDVALIDITY): every id from it is void. */
  reset(folder: string): void;
}

/**
 * New mail as it arrives, in the folders a session watches. A connector that is told of changes (IMAP
 * IDLE) reports them by itself between start() and stop(); one that must ask (POP3 UIDL, EWS
 * SyncFolderItems, Graph delta) has poll(), which the session calls at its watch period, in its queue.
 * start() runs after every (re)connect, in the session's queue, and sets the baseline: what is there
 * already is not new. A watcher told the folders beforehand (expect) may take the baseline on the connect's
 * own round trips instead (POP3: UIDL on the connect's login, so that a watching session's create is one
 * login, not two).
 */
export interface MailWatcher {
  /** Before the first connect: the folders start() will get. */
  expect?(folders: readonly string[]): void;
  start(folders: readonly string[], listener: WatchListener): Promise<void>;
  /** One check for what changed since the last; may answer the mailbox summary it read on the way. */
  poll?(): Promise<import('./connector.js').MailboxSummary | void>;
  stop(): void;
}

/** What a connector can do with mail; an operation a protocol cannot do is absent, not a method that throws. */
export interface MailCapabilities {
  reader?: MessageReader;
  flagger?: MessageFlagger;
  mover?: MessageMover;
  deleter?: MessageDeleter;
  sender?: MessageSender;
  tagger?: MessageTagger;
  watcher?: MailWatcher;
}

export type Capability = keyof MailCapabilities;

/** How a capability reads in an error message ("pop3 sessions cannot <verb>"). */
export const CAPABILITY_VERBS: Readonly<Record<Capability, string>> = {
  reader: 'read messages',
  flagger: 'change the read or flagged status of messages',
  mover: 'move messages',
  deleter: 'delete messages',
  sender: 'send mail',
  tagger: 'mark messages with keywords',
  watcher: 'watch folders for new mail',
};

/**
 * The error of a bulk operation that stopped midway, carrying what was done before it stopped, so the
 * answer says how many and which (the problem's `partial` member). Retrying the call is safe: the filter
 * selects what is left.
 */
export function partialFailure(err: AppError, partial: Record<string, unknown>): AppError {
  return new AppError(err.code, `${err.message} (stopped midway: see partial)`, { ...err.extra, partial }, { cause: err });
}

/** Base64url without padding: ids and cursors are made of it, so they are URL-safe and have no "/". */
export function encodeId(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

/** The inverse of encodeId; undefined when `id` is not base64url. */
export function decodeId(id: string): string | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(id)) return undefined;
  return Buffer.from(id, 'base64url').toString('utf8');
}
