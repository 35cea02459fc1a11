// The mailboxes behind the fake EWS: a folder tree with the well-known folders, and messages made from real
// MIME (parsed with mailparser, as Exchange parses what it receives), so that raw MIME, bodies, headers and
// attachments all come from one source and tests can compare bytes.
import { createHash, randomBytes } from 'node:crypto';
import { simpleParser, type AddressObject } from 'mailparser';

export interface FakeFolder {
  id: string;
  parentId: string | null;
  name: string;
  folderClass: string;
  /** The DistinguishedFolderId that names it, if any. */
  distinguished?: string;
}

export interface FakeAttachment {
  id: string;
  name: string;
  contentType: string;
  content: Buffer;
  inline: boolean;
  contentId: string | null;
  /** An attached message (message/rfc822): Exchange keeps it as an item, an ItemAttachment. */
  isItem: boolean;
}

export interface FakeAddress {
  name: string;
  address: string;
}

export interface FakeMessage {
  id: string;
  changeKey: string;
  folderId: string;
  /** ms since 1970; the wire shows whole seconds, as Exchange does. */
  receivedMs: number;
  sentMs: number | null;
  isRead: boolean;
  /** PidTagFlagStatus (2 = flagged). */
  flagStatus: number | null;
  /** PidTagLastVerbExecuted (102 = replied). */
  lastVerb: number | null;
  mime: Buffer;
  subject: string;
  from: FakeAddress | null;
  to: FakeAddress[];
  cc: FakeAddress[];
  /** Kept on a sent message's copy (not in its MIME). */
  bcc: FakeAddress[];
  replyTo: FakeAddress[];
  messageId: string | null;
  inReplyTo: string | null;
  references: string | null;
  /** As the message carries them: names and raw (unfolded, still encoded) values. */
  headers: { name: string; value: string }[];
  text: string | null;
  html: string | null;
  attachments: FakeAttachment[];
  /** Outlook categories (item:Categories). */
  categories: string[];
  /** Named extended properties (PublicStrings), by name. */
  named: Record<string, string>;
  /** When it entered its folder (the mailbox's change counter): what SyncFolderItems reports from. */
  seq: number;
}

/** One entry of a folder's change log: a message entered it (create) or left it (delete). */
export interface FakeChange {
  seq: number;
  folderId: string;
  kind: 'create' | 'delete';
  itemId: string;
  /** For a delete: when the message had entered the folder. */
  enteredSeq?: number;
}

/** What the fake "sent": the MIME as it went out, and who it went to (Bcc included). */
export interface FakeSent {
  mime: Buffer;
  to: FakeAddress[];
  cc: FakeAddress[];
  bcc: FakeAddress[];
  /** The copy kept in Sent Items (null for SendOnly). */
  copy: FakeMessage | null;
}

/** Ids look like Exchange's: base64 with "+", "/" and "=", so the service's URL-safe encoding is exercised. */
export function fakeId(kind: 'item' | 'folder' | 'attachment'): string {
  const prefix = { item: 'AAMkAGI', folder: 'AQMkAGF', attachment: 'AAMkAGA' }[kind];
  // chosen bytes that always give "+" and "/" in base64, then random ones
  return prefix + Buffer.concat([Buffer.from([0xfb, 0xff, 0xbf]), randomBytes(43)]).toString('base64');
}

/** An id of the fake's form (whether or not it exists); anything else is ErrorInvalidIdMalformed. */
export function isWellFormedId(id: string): boolean {
  return /^AA[MQ]kAG[IFA][A-Za-z0-9+/]+=*$/.test(id) && id.length < 200;
}

function addresses(value: AddressObject | AddressObject[] | undefined): FakeAddress[] {
  const list = Array.isArray(value) ? value : value ? [value] : [];
  return list.flatMap((a) => a.value).map((v) => ({ name: v.name ?? '', address: v.address ?? '' }));
}

export interface AddMessageOptions {
  received?: Date | number;
  isRead?: boolean;
  flagged?: boolean;
  answered?: boolean;
  categories?: string[];
  bcc?: FakeAddress[];
  named?: Record<string, string>;
}

/** What a message's MIME says, parsed as Exchange parses what it receives. */
async function contentOf(raw: Buffer): Promise<Pick<FakeMessage, 'mime' | 'sentMs' | 'subject' | 'from' | 'to' | 'cc' | 'replyTo' | 'messageId' | 'inReplyTo' | 'references' | 'headers' | 'text' | 'html' | 'attachments'>> {
  const parsed = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true, ignoreEmbedded: true });
  return {
    mime: raw,
    sentMs: parsed.date ? parsed.date.getTime() : null,
    subject: parsed.subject ?? '',
    from: addresses(parsed.from)[0] ?? null,
    to: addresses(parsed.to),
    cc: addresses(parsed.cc),
    replyTo: addresses(parsed.replyTo),
    messageId: parsed.messageId ?? null,
    inReplyTo: parsed.inReplyTo ?? null,
    references: Array.isArray(parsed.references) ? parsed.references.join(' ') : (parsed.references ?? null),
    headers: parsed.headerLines.map((h) => {
      const colon = h.line.indexOf(':');
      return { name: h.line.slice(0, colon), value: h.line.slice(colon + 1).replace(/\r?\n[ \t]+/g, ' ').trim() };
    }),
    // Exchange keeps the HTML and derives text from it when a message has only HTML
    text: parsed.text ?? null,
    html: typeof parsed.html === 'string' ? parsed.html : null,
    attachments: parsed.attachments.map((a) => ({
      id: fakeId('attachment'),
      name: a.filename ?? (a.contentType === 'message/rfc822' ? 'attached message' : 'attachment'),
      contentType: a.contentType,
      content: a.content,
      inline: a.contentDisposition === 'inline' || (a.related === true && Boolean(a.contentId)),
      contentId: a.contentId ? a.contentId.replace(/^<|>$/g, '') : null,
      isItem: a.contentType === 'message/rfc822',
    })),
  };
}

/** One mailbox: its folders (the well-known ones under the root) and messages. */
export class FakeMailbox {
  readonly folders: FakeFolder[] = [];
  readonly messages: FakeMessage[] = [];
  /** Every message entering or leaving a folder, in order (what SyncFolderItems answers from). */
  readonly changes: FakeChange[] = [];
  /** What this mailbox sent (CreateItem SendAndSaveCopy / SendOnly, SendItem). */
  readonly sent: FakeSent[] = [];
  /** The change counter; SyncStates hold a value of it. */
  seq = 0;
  /** Bumped to make every SyncState handed out so far invalid (ErrorInvalidSyncStateData). */
  syncEpoch = 0;

  /** `names` renames well-known folders, as a mailbox in another language has them ("Posteingang"). */
  constructor(names: Record<string, string> = {}) {
    const root = this.#folder(null, 'Top of Information Store', 'IPF.Note', 'msgfolderroot');
    const wellKnown: [string, string, string][] = [
      ['inbox', 'Inbox', 'IPF.Note'],
      ['sentitems', 'Sent Items', 'IPF.Note'],
      ['drafts', 'Drafts', 'IPF.Note'],
      ['deleteditems', 'Deleted Items', 'IPF.Note'],
      ['junkemail', 'Junk Email', 'IPF.Note'],
      ['outbox', 'Outbox', 'IPF.Note'],
      ['archive', 'Archive', 'IPF.Note'],
      ['calendar', 'Calendar', 'IPF.Appointment'],
      ['contacts', 'Contacts', 'IPF.Contact'],
    ];
    for (const [key, name, cls] of wellKnown) this.#folder(root.id, names[key] ?? name, cls, key);
  }

  folder(key: string): FakeFolder {
    const f = this.folders.find((x) => x.distinguished === key || x.id === key);
    if (!f) throw new Error(`fake EWS: no folder ${key}`);
    return f;
  }

  /** Adds a folder below `parent` (a distinguished key, an id, or a folder). */
  addFolder(parent: string | FakeFolder, name: string, folderClass = 'IPF.Note'): FakeFolder {
    const p = typeof parent === 'string' ? this.folder(parent) : parent;
    return this.#folder(p.id, name, folderClass);
  }

  /** Stores a message made from raw MIME, as Exchange does with what it receives. */
  async addMessage(folder: string | FakeFolder, mime: Buffer | string, options: AddMessageOptions = {}): Promise<FakeMessage> {
    const f = typeof folder === 'string' ? this.folder(folder) : folder;
    const received = options.received ?? Date.now();
    const message: FakeMessage = {
      id: fakeId('item'),
      changeKey: randomBytes(12).toString('base64'),
      folderId: f.id,
      receivedMs: typeof received === 'number' ? received : received.getTime(),
      isRead: options.isRead ?? false,
      flagStatus: options.flagged ? 2 : null,
      lastVerb: options.answered ? 102 : null,
      bcc: options.bcc ?? [],
      categories: options.categories ?? [],
      named: options.named ?? {},
      seq: 0,
      ...(await contentOf(Buffer.isBuffer(mime) ? mime : Buffer.from(mime, 'utf8'))),
    };
    this.messages.push(message);
    this.#entered(message);
    return message;
  }

  /** Gives a message new MIME (a draft that got attachments), keeping its id, folder and flags. */
  async replaceMime(message: FakeMessage, mime: Buffer): Promise<void> {
    Object.assign(message, await contentOf(mime));
    this.changed(message);
  }

  /** Moves a message to another folder: Exchange gives it a new ItemId there (the old one no longer resolves). */
  move(message: FakeMessage, folder: FakeFolder): FakeMessage {
    this.#left(message);
    message.id = fakeId('item');
    message.changeKey = randomBytes(12).toString('base64');
    message.folderId = folder.id;
    this.#entered(message);
    return message;
  }

  /** Removes a message for good (HardDelete, SoftDelete). */
  remove(message: FakeMessage): void {
    const i = this.messages.indexOf(message);
    if (i < 0) return;
    this.messages.splice(i, 1);
    this.#left(message);
  }

  /** A new ChangeKey, as Exchange gives a message on every change. */
  changed(message: FakeMessage): void {
    message.changeKey = randomBytes(12).toString('base64');
  }
  message(id: string): FakeMessage | undefined {
    return this.messages.find((m) => m.id === id);
  }

  #entered(message: FakeMessage): void {
    this.seq += 1;
    message.seq = this.seq;
    this.changes.push({ seq: this.seq, folderId: message.folderId, kind: 'create', itemId: message.id });
  }

  #left(message: FakeMessage): void {
    this.seq += 1;
    this.changes.push({ seq: this.seq, folderId: message.folderId, kind: 'delete', itemId: message.id, enteredSeq: message.seq });
  }

  #folder(parentId: string | null, name: string, folderClass: string, distinguished?: string): FakeFolder {
    const f: FakeFolder = { id: fakeId('folder'), parentId, name, folderClass, ...(distinguished ? { distinguished } : {}) };
    this.folders.push(f);
    return f;
  }
}

/** A stable pseudo-random order for messages received in the same second, different on every request. */
export function tieBreak(id: string, salt: number): string {
  return createHash('sha256').update(`${salt}:${id}`).digest('hex');
}
