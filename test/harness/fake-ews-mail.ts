// The mail operations of the fake EWS, in Exchange's SOAP: GetFolder (several ids, distinguished or not),
// FindFolder (shallow/deep, a DisplayName restriction, indexed paging), FindItem (restrictions, sort order,
// indexed paging, at most `maxFindCount` entries a page as EWSFindCountLimit does), GetItem (the requested
// properties only, BodyType, MaximumBodySize, MimeContent) and GetAttachment; the changes (UpdateItem,
// MoveItem, DeleteItem, SyncFolderItems) are in fake-ews-changes.ts, sending (CreateItem, CreateAttachment,
// SendItem) in fake-ews-send.ts. Item errors answer as Exchange does: HTTP 200 with ResponseClass="Error"
// in the response message.
import { XMLParser } from 'fast-xml-parser';
import { FakeMailbox, isWellFormedId, tieBreak, type FakeAddress, type FakeAttachment, type FakeFolder, type FakeMessage } from './fake-ews-store.js';
import { answerChange } from './fake-ews-changes.js';
import { answerSend } from './fake-ews-send.js';

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  isArray: (_name, _jpath, _leaf, isAttribute) => !isAttribute,
});

/** The SOAP Body's operation element, parsed (every element an array, attributes as "@Name"). */
export function parseSoap(xml: string): { operation: string; node: Node } | undefined {
  try {
    const doc = parser.parse(xml) as Node;
    const body = first(first(doc, 'Envelope'), 'Body');
    const operation = body ? Object.keys(body).find((k) => !k.startsWith('@') && k !== '#text') : undefined;
    return operation ? { operation, node: first(body, operation) ?? {} } : undefined;
  } catch {
    return undefined;
  }
}

export function all(node: unknown, name: string): Node[] {
  const v = (node as Node | undefined)?.[name];
  return Array.isArray(v) ? (v as Node[]) : [];
}

export function first(node: unknown, name: string): Node | undefined {
  return all(node, name)[0];
}

export function attr(node: unknown, name: string): string | undefined {
  const v = (node as Node | undefined)?.[`@${name}`];
  return typeof v === 'string' ? v : undefined;
}

/** The text of an element whose schema type is a string: an element inside it is a schema violation, as on Exchange. */
export function stringOf(node: unknown, what: string): string {
  if (node && typeof node === 'object' && Object.keys(node).some((k) => !k.startsWith('@') && k !== '#text')) {
    throw new SoapFault('ErrorSchemaValidation', `The element ${what} has invalid child elements (was its text escaped?).`);
  }
  return textOf(node);
}

export function textOf(node: unknown): string {
  if (typeof node === 'string') return node;
  const t = (node as Node | undefined)?.['#text'];
  return typeof t === 'string' ? t : '';
}

export function esc(text: string): string {
  // XML 1.0 has no place for most control characters: Exchange drops them too
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export const M = 'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"';

/** A SOAP fault the dispatcher turns into HTTP 500 (a request Exchange refuses whole). */
export class SoapFault extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** An item's error: answered inside HTTP 200 as ResponseClass="Error" for that item only. */
export class ItemError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export function responseMessage(op: string, inner: () => string): string {
  try {
    return `<m:${op}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>${inner()}</m:${op}ResponseMessage>`;
  } catch (err) {
    if (!(err instanceof ItemError)) throw err;
    return `<m:${op}ResponseMessage ResponseClass="Error"><m:MessageText>${esc(err.message)}</m:MessageText><m:ResponseCode>${err.code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:${op}ResponseMessage>`;
  }
}

export function wrap(op: string, messages: string[]): string {
  return `<m:${op}Response ${M}><m:ResponseMessages>${messages.join('')}</m:ResponseMessages></m:${op}Response>`;
}

const seconds = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

/** What a request asked for: FieldURIs and extended property tags. */
export interface Shape {
  fields: Set<string>;
  tags: Set<number>;
  /** Named properties (PublicStrings) by name. */
  names: Set<string>;
  bodyType: string;
  maxBodyKb: number | undefined;
}

export function shapeOf(shape: Node | undefined): Shape {
  const extra = first(shape, 'AdditionalProperties');
  const maxBody = textOf(first(shape, 'MaximumBodySize'));
  return {
    fields: new Set(all(extra, 'FieldURI').map((f) => attr(f, 'FieldURI') ?? '')),
    tags: new Set(all(extra, 'ExtendedFieldURI').filter((f) => attr(f, 'PropertyTag') !== undefined).map((f) => Number(attr(f, 'PropertyTag')))),
    names: new Set(all(extra, 'ExtendedFieldURI').map((f) => attr(f, 'PropertyName')).filter((n): n is string => n !== undefined)),
    bodyType: textOf(first(shape, 'BodyType')) || 'Best',
    maxBodyKb: maxBody ? Number(maxBody) : undefined,
  };
}

/** The value of a property a restriction or sort names. */
function valueOf(target: Node, path: Node): string | string[] | number | boolean | null {
  const field = first(path, 'FieldURI');
  const ext = first(path, 'ExtendedFieldURI');
  const m = target as unknown as FakeMessage & FakeFolder;
  if (field) {
    const uri = attr(field, 'FieldURI');
    if (uri === 'item:Subject') return m.subject;
    if (uri === 'message:IsRead') return m.isRead;
    if (uri === 'item:DateTimeReceived') return m.receivedMs;
    if (uri === 'folder:DisplayName') return m.name;
    if (uri === 'item:Categories') return m.categories;
    throw new SoapFault('ErrorUnsupportedPathForQuery', `The property ${uri} cannot be used in a restriction here.`);
  }
  if (ext) {
    const name = attr(ext, 'PropertyName');
    if (name !== undefined) return m.named?.[name] ?? null;
    const tag = Number(attr(ext, 'PropertyTag'));
    if (tag === 0x42) return m.from?.name ?? null;
    if (tag === 0x65 || tag === 0x5d02) return m.from?.address ?? null;
    if (tag === 0x1090) return m.flagStatus;
    throw new SoapFault('ErrorUnsupportedPathForQuery', `The extended property ${tag} cannot be used in a restriction here.`);
  }
  throw new SoapFault('ErrorSchemaValidation', 'The restriction names no property.');
}

function constant(node: Node): string {
  const c = first(first(node, 'FieldURIOrConstant'), 'Constant') ?? first(node, 'Constant');
  const v = attr(c, 'Value');
  if (v === undefined) throw new SoapFault('ErrorSchemaValidation', 'The restriction has no constant.');
  return v;
}

function compare(actual: string | string[] | number | boolean | null, expected: string): number | undefined {
  if (actual === null) return undefined;
  // the service restricts the multi-valued Categories with Contains only; the fake evaluates nothing else on it
  if (Array.isArray(actual)) throw new SoapFault('ErrorUnsupportedPathForQuery', 'The fake evaluates item:Categories in Contains only.');
  if (typeof actual === 'boolean') return actual === (expected === 'true') ? 0 : 1;
  if (typeof actual === 'number') {
    const e = /^\d{4}-/.test(expected) ? Date.parse(expected) : Number(expected);
    if (Number.isNaN(e)) throw new SoapFault('ErrorSchemaValidation', `Not a value: ${expected}`);
    return actual - e;
  }
  return actual.toLowerCase().localeCompare(expected.toLowerCase());
}

/** Evaluates one restriction element (And, Or, Not, Contains, IsEqualTo, ...) on a message or folder. */
export function matches(target: Node, kind: string, node: Node): boolean {
  const children = () => Object.entries(node).filter(([k]) => !k.startsWith('@') && k !== '#text').flatMap(([k, v]) => (v as Node[]).map((n) => [k, n] as const));
  switch (kind) {
    case 'And':
      return children().every(([k, n]) => matches(target, k, n));
    case 'Or':
      return children().some(([k, n]) => matches(target, k, n));
    case 'Not':
      return !children().every(([k, n]) => matches(target, k, n));
    case 'Contains': {
      const v = valueOf(target, node);
      const want = attr(first(node, 'Constant'), 'Value') ?? '';
      const ignore = /IgnoreCase/.test(attr(node, 'ContainmentComparison') ?? '');
      const mode = attr(node, 'ContainmentMode') ?? 'FullString';
      const one = (value: string) => {
        const [hay, needle] = ignore ? [value.toLowerCase(), want.toLowerCase()] : [value, want];
        return mode === 'Substring' ? hay.includes(needle) : mode === 'Prefixed' ? hay.startsWith(needle) : hay === needle;
      };
      // a multi-valued property (Categories) matches when any of its values does, as Exchange evaluates it
      if (Array.isArray(v)) return v.some(one);
      return typeof v === 'string' && one(v);
    }
    case 'IsEqualTo':
    case 'IsNotEqualTo':
    case 'IsGreaterThan':
    case 'IsGreaterThanOrEqualTo':
    case 'IsLessThan':
    case 'IsLessThanOrEqualTo': {
      const c = compare(valueOf(target, node), constant(node));
      if (c === undefined) return kind === 'IsNotEqualTo';
      return { IsEqualTo: c === 0, IsNotEqualTo: c !== 0, IsGreaterThan: c > 0, IsGreaterThanOrEqualTo: c >= 0, IsLessThan: c < 0, IsLessThanOrEqualTo: c <= 0 }[kind];
    }
    default:
      throw new SoapFault('ErrorSchemaValidation', `The fake does not know the restriction ${kind}.`);
  }
}

function restrictionOf(op: Node): ((target: Node) => boolean) | undefined {
  const r = first(op, 'Restriction');
  if (!r) return undefined;
  const [kind, nodes] = Object.entries(r).find(([k]) => !k.startsWith('@') && k !== '#text') ?? [];
  if (!kind || !nodes) throw new SoapFault('ErrorSchemaValidation', 'An empty restriction.');
  return (target) => matches(target, kind, (nodes as Node[])[0]!);
}

function paging(op: Node, viewName: string, max: number): { offset: number; size: number; fromEnd: boolean } {
  const view = first(op, viewName);
  if (!view) return { offset: 0, size: max, fromEnd: false };
  return { offset: Number(attr(view, 'Offset') ?? 0), size: Math.min(Number(attr(view, 'MaxEntriesReturned') ?? max), max), fromEnd: attr(view, 'BasePoint') === 'End' };
}

function pageOf<T>(list: T[], p: { offset: number; size: number; fromEnd: boolean }): { page: T[]; attrs: string } {
  const start = p.fromEnd ? Math.max(0, list.length - p.offset - p.size) : p.offset;
  const page = list.slice(start, start + p.size);
  const last = start + page.length >= list.length;
  return { page, attrs: `IndexedPagingOffset="${start + page.length}" TotalItemsInView="${list.length}" IncludesLastItemInRange="${last}"` };
}

export function mailbox(m: FakeAddress): string {
  return `<t:Mailbox><t:Name>${esc(m.name)}</t:Name><t:EmailAddress>${esc(m.address)}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>OneOff</t:MailboxType></t:Mailbox>`;
}

export function attachmentXml(a: FakeAttachment, withContent: boolean, mimeContent: boolean): string {
  const head = `<t:AttachmentId Id="${esc(a.id)}"/><t:Name>${esc(a.name)}</t:Name><t:ContentType>${esc(a.contentType)}</t:ContentType>${a.contentId ? `<t:ContentId>${esc(a.contentId)}</t:ContentId>` : ''}<t:Size>${a.content.length}</t:Size><t:IsInline>${a.inline}</t:IsInline>`;
  if (a.isItem) {
    const item = withContent ? `<t:Message>${mimeContent ? `<t:MimeContent CharacterSet="UTF-8">${a.content.toString('base64')}</t:MimeContent>` : ''}<t:ItemId Id="${esc(a.id)}x" ChangeKey="CQAAAA=="/><t:Subject>${esc(a.name)}</t:Subject></t:Message>` : '';
    return `<t:ItemAttachment>${head}${item}</t:ItemAttachment>`;
  }
  return `<t:FileAttachment>${head}${withContent ? `<t:Content>${a.content.toString('base64')}</t:Content>` : ''}</t:FileAttachment>`;
}

function bodyXml(element: string, type: 'HTML' | 'Text', text: string, maxKb: number | undefined): string {
  const max = maxKb === undefined ? Infinity : maxKb * 1024;
  const cut = Buffer.byteLength(text) > max;
  const value = cut ? Buffer.from(text).subarray(0, max).toString('utf8') : text;
  return `<t:${element} BodyType="${type}" IsTruncated="${cut}">${esc(value)}</t:${element}>`;
}

export function messageXml(m: FakeMessage, shape: Shape): string {
  const f = shape.fields;
  const parts: string[] = [];
  if (f.has('item:MimeContent')) parts.push(`<t:MimeContent CharacterSet="UTF-8">${m.mime.toString('base64')}</t:MimeContent>`);
  parts.push(`<t:ItemId Id="${esc(m.id)}" ChangeKey="${esc(m.changeKey)}"/>`);
  if (f.has('item:ParentFolderId')) parts.push(`<t:ParentFolderId Id="${esc(m.folderId)}" ChangeKey="AQAAAA=="/>`);
  if (f.has('item:Subject')) parts.push(`<t:Subject>${esc(m.subject)}</t:Subject>`);
  if (f.has('item:Body')) {
    const html = m.html !== null && shape.bodyType !== 'Text';
    if (shape.bodyType === 'HTML' && m.html === null) parts.push(bodyXml('Body', 'HTML', `<html><body><pre>${esc(m.text ?? '')}</pre></body></html>`, shape.maxBodyKb));
    else parts.push(bodyXml('Body', html ? 'HTML' : 'Text', html ? m.html! : (m.text ?? ''), shape.maxBodyKb));
  }
  if (f.has('item:Categories') && m.categories.length) parts.push(`<t:Categories>${m.categories.map((c) => `<t:String>${esc(c)}</t:String>`).join('')}</t:Categories>`);
  if (f.has('item:Attachments') && m.attachments.length) parts.push(`<t:Attachments>${m.attachments.map((a) => attachmentXml(a, false, false)).join('')}</t:Attachments>`);
  if (f.has('item:DateTimeReceived')) parts.push(`<t:DateTimeReceived>${seconds(m.receivedMs)}</t:DateTimeReceived>`);
  if (f.has('item:Size')) parts.push(`<t:Size>${m.mime.length}</t:Size>`);
  if (f.has('item:HasAttachments')) parts.push(`<t:HasAttachments>${m.attachments.some((a) => !a.inline)}</t:HasAttachments>`);
  if (f.has('item:InternetMessageHeaders')) {
    parts.push(`<t:InternetMessageHeaders>${m.headers.map((h) => `<t:InternetMessageHeader HeaderName="${esc(h.name)}">${esc(h.value)}</t:InternetMessageHeader>`).join('')}</t:InternetMessageHeaders>`);
  }
  if (f.has('item:DateTimeSent') && m.sentMs !== null) parts.push(`<t:DateTimeSent>${seconds(m.sentMs)}</t:DateTimeSent>`);
  if (f.has('item:TextBody')) parts.push(bodyXml('TextBody', 'Text', m.text ?? '', shape.maxBodyKb));
  for (const tag of shape.tags) {
    const value = tag === 0x1090 ? m.flagStatus : tag === 0x1081 ? m.lastVerb : null;
    if (value !== null) parts.push(`<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x${tag.toString(16)}" PropertyType="Integer"/><t:Value>${value}</t:Value></t:ExtendedProperty>`);
  }
  for (const name of shape.names) {
    const value = m.named[name];
    if (value !== undefined) parts.push(`<t:ExtendedProperty><t:ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" PropertyName="${esc(name)}" PropertyType="String"/><t:Value>${esc(value)}</t:Value></t:ExtendedProperty>`);
  }
  if (f.has('message:ToRecipients') && m.to.length) parts.push(`<t:ToRecipients>${m.to.map(mailbox).join('')}</t:ToRecipients>`);
  if (f.has('message:CcRecipients') && m.cc.length) parts.push(`<t:CcRecipients>${m.cc.map(mailbox).join('')}</t:CcRecipients>`);
  if (f.has('message:BccRecipients') && m.bcc.length) parts.push(`<t:BccRecipients>${m.bcc.map(mailbox).join('')}</t:BccRecipients>`);
  if (f.has('message:IsRead')) parts.push(`<t:IsRead>${m.isRead}</t:IsRead>`);
  if (f.has('message:From') && m.from) parts.push(`<t:From>${mailbox(m.from)}</t:From>`);
  if (f.has('message:ReplyTo') && m.replyTo.length) parts.push(`<t:ReplyTo>${m.replyTo.map(mailbox).join('')}</t:ReplyTo>`);
  if (f.has('message:InternetMessageId') && m.messageId) parts.push(`<t:InternetMessageId>${esc(m.messageId)}</t:InternetMessageId>`);
  if (f.has('item:InReplyTo') && m.inReplyTo) parts.push(`<t:InReplyTo>${esc(m.inReplyTo)}</t:InReplyTo>`);
  if (f.has('message:References') && m.references) parts.push(`<t:References>${esc(m.references)}</t:References>`);
  return `<t:Message>${parts.join('')}</t:Message>`;
}

const FOLDER_ELEMENT: Record<string, string> = { 'IPF.Appointment': 'CalendarFolder', 'IPF.Contact': 'ContactsFolder' };

function folderXml(box: FakeMailbox, f: FakeFolder, shape: Shape): string {
  const el = FOLDER_ELEMENT[f.folderClass] ?? 'Folder';
  const inFolder = box.messages.filter((m) => m.folderId === f.id);
  const parts = [`<t:FolderId Id="${esc(f.id)}" ChangeKey="AQAAAA=="/>`];
  if (shape.fields.has('folder:ParentFolderId') && f.parentId) parts.push(`<t:ParentFolderId Id="${esc(f.parentId)}" ChangeKey="AQAAAA=="/>`);
  if (shape.fields.has('folder:FolderClass')) parts.push(`<t:FolderClass>${esc(f.folderClass)}</t:FolderClass>`);
  if (shape.fields.has('folder:DistinguishedFolderId') && f.distinguished) parts.push(`<t:DistinguishedFolderId>${f.distinguished}</t:DistinguishedFolderId>`);
  if (shape.fields.has('folder:DisplayName')) parts.push(`<t:DisplayName>${esc(f.name)}</t:DisplayName>`);
  if (shape.fields.has('folder:TotalCount')) parts.push(`<t:TotalCount>${inFolder.length}</t:TotalCount>`);
  if (shape.fields.has('folder:UnreadCount')) parts.push(`<t:UnreadCount>${inFolder.filter((m) => !m.isRead).length}</t:UnreadCount>`);
  return `<t:${el}>${parts.join('')}</t:${el}>`;
}

export function folderFrom(box: FakeMailbox, node: Node, kind: string): FakeFolder {
  const id = attr(node, 'Id') ?? '';
  const f = kind === 'DistinguishedFolderId' ? box.folders.find((x) => x.distinguished === id) : box.folders.find((x) => x.id === id);
  if (f) return f;
  if (kind === 'FolderId' && !isWellFormedId(id)) throw new ItemError('ErrorInvalidIdMalformed', 'Id is malformed.');
  throw new ItemError('ErrorFolderNotFound', 'The specified folder could not be found in the store.');
}

export function folderIds(box: FakeMailbox, parent: Node | undefined): (() => FakeFolder)[] {
  const out: (() => FakeFolder)[] = [];
  for (const kind of ['FolderId', 'DistinguishedFolderId']) for (const n of all(parent, kind)) out.push(() => folderFrom(box, n, kind));
  return out;
}

export function itemFrom(box: FakeMailbox, node: Node | undefined): FakeMessage {
  const id = attr(node, 'Id') ?? '';
  if (!isWellFormedId(id)) throw new ItemError('ErrorInvalidIdMalformed', 'Id is malformed.');
  const m = box.message(id);
  if (!m) throw new ItemError('ErrorItemNotFound', 'The specified object was not found in the store.');
  return m;
}

function descendants(box: FakeMailbox, parent: FakeFolder, deep: boolean): FakeFolder[] {
  const kids = box.folders.filter((f) => f.parentId === parent.id);
  return deep ? kids.flatMap((k) => [k, ...descendants(box, k, true)]) : kids;
}

export interface MailOptions {
  /** Most entries one FindItem/FindFolder page answers (Exchange's EWSFindCountLimit). */
  maxFindCount: number;
  /** Counts requests, so that the order of same-second messages changes from one request to the next. */
  serial: number;
  /** RequestServerVersion of the request (what the schema allows depends on it). */
  version: string;
  /** The mailbox's own address (the From of what it sends). */
  owner: string;
  /** Hands a sent message to the fake's other mailboxes (those it knows); answers whether one took it. */
  deliver: (address: string, mime: Buffer) => Promise<boolean>;
  /** Item ids that answer this error code (ResponseClass="Error") in UpdateItem, MoveItem and DeleteItem. */
  itemErrors: Map<string, string>;
}

/** Answers one mail operation on `box`; returns the SOAP Body content. Throws SoapFault for a refused request. */
export async function answerMail(box: FakeMailbox, operation: string, op: Node, options: MailOptions): Promise<string> {
  switch (operation) {
    case 'GetFolder': {
      const shape = shapeOf(first(op, 'FolderShape'));
      return wrap('GetFolder', folderIds(box, first(op, 'FolderIds')).map((get) => responseMessage('GetFolder', () => `<m:Folders>${folderXml(box, get(), shape)}</m:Folders>`)));
    }
    case 'FindFolder': {
      const shape = shapeOf(first(op, 'FolderShape'));
      const where = restrictionOf(op);
      const deep = attr(op, 'Traversal') === 'Deep';
      return wrap('FindFolder', folderIds(box, first(op, 'ParentFolderIds')).map((get) => responseMessage('FindFolder', () => {
        const list = descendants(box, get(), deep).filter((f) => !where || where(f as unknown as Node));
        const { page, attrs } = pageOf(list, paging(op, 'IndexedPageFolderView', options.maxFindCount));
        return `<m:RootFolder ${attrs}><t:Folders>${page.map((f) => folderXml(box, f, shape)).join('')}</t:Folders></m:RootFolder>`;
      })));
    }
    case 'FindItem': {
      const shape = shapeOf(first(op, 'ItemShape'));
      const where = restrictionOf(op);
      const order = first(first(op, 'SortOrder'), 'FieldOrder');
      if (order && attr(first(order, 'FieldURI'), 'FieldURI') !== 'item:DateTimeReceived') throw new SoapFault('ErrorInvalidPropertyForSortBy', 'The fake sorts by DateTimeReceived only.');
      const descending = attr(order, 'Order') === 'Descending';
      return wrap('FindItem', folderIds(box, first(op, 'ParentFolderIds')).map((get) => responseMessage('FindItem', () => {
        const folder = get();
        // Exchange shows DateTimeReceived to the second and promises no order within one: neither does the fake
        const list = box.messages
          .filter((m) => m.folderId === folder.id && (!where || where(m as unknown as Node)))
          .sort((a, b) => {
            const bySecond = Math.floor(a.receivedMs / 1000) - Math.floor(b.receivedMs / 1000);
            if (bySecond !== 0) return descending ? -bySecond : bySecond;
            return tieBreak(a.id, options.serial).localeCompare(tieBreak(b.id, options.serial));
          });
        const { page, attrs } = pageOf(list, paging(op, 'IndexedPageItemView', options.maxFindCount));
        return `<m:RootFolder ${attrs}><t:Items>${page.map((m) => messageXml(m, shape)).join('')}</t:Items></m:RootFolder>`;
      })));
    }
    case 'GetItem': {
      const shape = shapeOf(first(op, 'ItemShape'));
      return wrap('GetItem', all(first(op, 'ItemIds'), 'ItemId').map((node) => responseMessage('GetItem', () => `<m:Items>${messageXml(itemFrom(box, node), shape)}</m:Items>`)));
    }
    case 'GetAttachment': {
      const shape = shapeOf(first(op, 'AttachmentShape'));
      return wrap('GetAttachment', all(first(op, 'AttachmentIds'), 'AttachmentId').map((node) => responseMessage('GetAttachment', () => {
        const id = attr(node, 'Id') ?? '';
        if (!isWellFormedId(id)) throw new ItemError('ErrorInvalidIdMalformed', 'Id is malformed.');
        const a = box.messages.flatMap((m) => m.attachments).find((x) => x.id === id);
        if (!a) throw new ItemError('ErrorItemNotFound', 'The specified object was not found in the store.');
        return `<m:Attachments>${attachmentXml(a, true, shape.fields.has('item:MimeContent'))}</m:Attachments>`;
      })));
    }
    default:
      return answerChange(box, operation, op, options) ?? (await answerSend(box, operation, op, options)) ?? unknown(operation);
  }
}

function unknown(operation: string): never {
  throw new SoapFault('ErrorInvalidOperation', `The fake does not answer ${operation}.`);
}
