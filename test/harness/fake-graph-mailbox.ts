// One mailbox of the fake Graph: folders (with Graph's well-known names) and messages seeded from real
// MIME, which mailparser reads the way Exchange would show it (subject, addresses, body as HTML or text,
// transport headers, file and item attachments with isInline and contentId), or made from Graph's own
// message JSON (drafts, sent mail: see fake-graph-compose.ts). Messages carry two ids like Exchange's: an
// immutable one (Prefer: IdType="ImmutableId") that survives moves, and a "REST" id that names the
// message in its current folder only. Every change is numbered, and a message that leaves a folder leaves
// a tombstone there, which is what the delta query (fake-graph-delta.ts) reports. JSON shapes follow
// Graph v1.0.
import { createHash, randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';

export interface FakeFolder {
  id: string;
  displayName: string;
  parentId: string | undefined;
  wellKnown?: string;
}

export interface FakeAttachment {
  id: string;
  kind: 'file' | 'item' | 'reference';
  name: string;
  contentType: string | null;
  isInline: boolean;
  contentId: string | null;
  bytes: Buffer;
}

export interface FakeAddress {
  name: string;
  address: string;
}

export interface FakeMessage {
  immutableId: string;
  seq: number;
  /** The number of the last change to it (created, moved in, updated): what delta reports by. */
  changed: number;
  folderId: string;
  mime: Buffer;
  subject: string | null;
  from: FakeAddress | null;
  to: FakeAddress[];
  cc: FakeAddress[];
  bcc: FakeAddress[];
  replyTo: FakeAddress[];
  isDraft: boolean;
  categories: string[];
  internetMessageId: string | null;
  sentDateTime: string;
  receivedDateTime: string;
  isRead: boolean;
  flagged: boolean;
  /** PR_LAST_VERB_EXECUTED: 102 reply, 103 reply all, 104 forward. */
  lastVerb?: number;
  headers: { name: string; value: string }[];
  body: { contentType: 'html' | 'text'; content: string };
  /** What Graph answers for Prefer: outlook.body-content-type="text". */
  textRendering: string;
  attachments: FakeAttachment[];
}

export interface SeedOptions {
  /** Default: now, whole seconds (Graph's precision). */
  receivedDateTime?: string;
  isRead?: boolean;
  flagged?: boolean;
  lastVerb?: number;
  categories?: string[];
}

/** Where a message was, once it left a folder (moved away, deleted): what delta reports as @removed. */
export interface Tombstone {
  folderId: string;
  immutableId: string;
  restId: string;
  changed: number;
}

const WELL_KNOWN: [string, string][] = [
  ['inbox', 'Inbox'],
  ['drafts', 'Drafts'],
  ['sentitems', 'Sent Items'],
  ['deleteditems', 'Deleted Items'],
  ['junkemail', 'Junk Email'],
  ['outbox', 'Outbox'],
  ['archive', 'Archive'],
];

/** Exchange-looking ids: base64url with "-" and "_", padded with "=". */
function exchangeId(prefix: string): string {
  return `${prefix}${randomBytes(48).toString('base64url')}AAA=`;
}

function nowSeconds(): string {
  return new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

export class FakeMailbox {
  readonly address: string;
  readonly folders = new Map<string, FakeFolder>();
  readonly messages = new Map<string, FakeMessage>();
  readonly rootId: string;
  /** Items the fake does not model (meeting requests...), added to the Inbox counts. */
  base: { total: number; unread: number };
  readonly tombstones: Tombstone[] = [];
  #seq = 0;
  #changes = 0;

  constructor(address: string, base: { total: number; unread: number }) {
    this.address = address;
    this.base = base;
    this.rootId = exchangeId('AAMkAGRoot');
    this.folders.set(this.rootId, { id: this.rootId, displayName: 'Top of Information Store', parentId: undefined, wellKnown: 'msgfolderroot' });
    for (const [wellKnown, displayName] of WELL_KNOWN) this.addFolder(this.rootId, displayName, wellKnown);
  }

  addFolder(parent: string, displayName: string, wellKnown?: string): FakeFolder {
    const folder: FakeFolder = { id: exchangeId('AAMkAGFold'), displayName, parentId: this.folder(parent)!.id, ...(wellKnown ? { wellKnown } : {}) };
    this.folders.set(folder.id, folder);
    return folder;
  }

  /** A folder by id, well-known name, or path of display names ("Inbox/Invoices"). */
  folder(ref: string): FakeFolder | undefined {
    const direct = this.folders.get(ref);
    if (direct) return direct;
    const known = [...this.folders.values()].find((f) => f.wellKnown === ref.toLowerCase());
    if (known) return known;
    let parent: string = this.rootId;
    let found: FakeFolder | undefined;
    for (const name of ref.split('/')) {
      found = [...this.folders.values()].find((f) => f.parentId === parent && f.displayName === name);
      if (!found) return undefined;
      parent = found.id;
    }
    return found;
  }

  children(id: string): FakeFolder[] {
    return [...this.folders.values()].filter((f) => f.parentId === id);
  }

  /** Seeds a message from its MIME source into a folder (id, well-known name or path). */
  async addMessage(folder: string, mime: Buffer | string, options: SeedOptions = {}): Promise<FakeMessage> {
    const source = Buffer.isBuffer(mime) ? mime : Buffer.from(mime);
    const parsed = await simpleParser(source, { skipTextToHtml: true });
    const one = (a: { value: { name: string; address?: string }[] } | undefined) => a?.value[0] ? { name: a.value[0].name, address: a.value[0].address ?? '' } : null;
    const many = (a: unknown) => (Array.isArray(a) ? a : a ? [a] : []).flatMap((x: { value: { name: string; address?: string }[] }) => x.value.map((v) => ({ name: v.name, address: v.address ?? '' })));
    const immutableId = exchangeId('AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A');
    const message: FakeMessage = {
      immutableId,
      seq: ++this.#seq,
      changed: ++this.#changes,
      folderId: this.folder(folder)!.id,
      mime: source,
      subject: parsed.subject ?? null,
      from: one(parsed.from as never),
      to: many(parsed.to),
      cc: many(parsed.cc),
      bcc: [],
      replyTo: many(parsed.replyTo),
      isDraft: false,
      categories: options.categories ?? [],
      internetMessageId: parsed.messageId ?? null,
      sentDateTime: (parsed.date ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      receivedDateTime: options.receivedDateTime ?? nowSeconds(),
      isRead: options.isRead ?? false,
      flagged: options.flagged ?? false,
      ...(options.lastVerb !== undefined ? { lastVerb: options.lastVerb } : {}),
      // Exchange keeps the transport headers as they came: encoded words stay encoded
      headers: parsed.headerLines.map(({ line }) => {
        const colon = line.indexOf(':');
        return { name: line.slice(0, colon), value: line.slice(colon + 1).replace(/\r?\n[ \t]+/g, ' ').trim() };
      }),
      body: typeof parsed.html === 'string' ? { contentType: 'html', content: parsed.html } : { contentType: 'text', content: parsed.text ?? '' },
      textRendering: parsed.text ?? '',
      attachments: parsed.attachments.map((a) => {
        const item = a.contentType === 'message/rfc822';
        return {
          id: `${immutableId.slice(0, -1)}BEgAQA${randomBytes(12).toString('base64url')}=`,
          kind: item ? ('item' as const) : ('file' as const),
          name: item ? (a.filename?.replace(/\.eml$/i, '') ?? 'Attached message') : (a.filename ?? 'attachment'),
          contentType: item ? null : a.contentType,
          isInline: a.contentDisposition === 'inline',
          contentId: a.cid ? `${a.cid}` : null,
          bytes: a.content,
        };
      }),
    };
    this.messages.set(immutableId, message);
    return message;
  }

  /** The message an id names: its immutable id, or the REST id of its current folder. */
  find(id: string): FakeMessage | undefined {
    const byImmutable = this.messages.get(id);
    if (byImmutable) return byImmutable;
    return [...this.messages.values()].find((m) => this.restId(m) === id);
  }

  /** Exchange's default id: it names the message in its folder, so a move changes it. */
  restId(m: FakeMessage): string {
    return `AAMkAGMsg${createHash('sha256').update(`${m.folderId}:${m.seq}`).digest('base64url')}AAA=`;
  }

  /** Moves a message (by id) to a folder (id, well-known name or path), as a client or a rule would. */
  move(id: string, folder: string): void {
    const m = this.find(id)!;
    const target = this.folder(folder)!.id;
    if (target === m.folderId) return this.touch(m);
    this.#bury(m);
    m.folderId = target;
    this.touch(m);
  }

  /** Removes a message from the mailbox (permanently deleted, or soft-deleted out of Deleted Items). */
  remove(m: FakeMessage): void {
    this.#bury(m);
    this.messages.delete(m.immutableId);
  }

  /** Records a change to a message (what the delta query reports). */
  touch(m: FakeMessage): void {
    m.changed = ++this.#changes;
  }

  /** The number of the last change in the mailbox. */
  get changeNumber(): number {
    return this.#changes;
  }

  /** A new message (a draft, a sent copy, a delivered one) made by the fake itself; see fake-graph-compose.ts. */
  insert(fields: Omit<FakeMessage, 'immutableId' | 'seq' | 'changed'>): FakeMessage {
    const m: FakeMessage = { ...fields, immutableId: exchangeId('AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A'), seq: ++this.#seq, changed: ++this.#changes };
    this.messages.set(m.immutableId, m);
    return m;
  }

  #bury(m: FakeMessage): void {
    this.tombstones.push({ folderId: m.folderId, immutableId: m.immutableId, restId: this.restId(m), changed: ++this.#changes });
  }

  /** The Inbox's counts as Graph gives them. */
  counts(folderId: string): { total: number; unread: number } {
    const inFolder = [...this.messages.values()].filter((m) => m.folderId === folderId);
    const base = this.folders.get(folderId)?.wellKnown === 'inbox' ? this.base : { total: 0, unread: 0 };
    return { total: base.total + inFolder.length, unread: base.unread + inFolder.filter((m) => !m.isRead).length };
  }
}

export function isKnownId(id: string): boolean {
  return /^[A-Za-z0-9_=-]+$/.test(id);
}
