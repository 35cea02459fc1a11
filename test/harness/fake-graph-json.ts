// The JSON of the fake Graph's resources, as Graph v1.0 shapes them: $select and $expand projections
// (with the errors Graph gives for properties it does not know), Prefer: IdType and
// outlook.body-content-type, and singleValueExtendedProperties of the MAPI tags it models.
import { randomUUID } from 'node:crypto';
import type { FakeAttachment, FakeFolder, FakeMailbox, FakeMessage } from './fake-graph-mailbox.js';

export class ODataError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** One answer of the fake: status, headers, and a JSON body or bytes. */
export interface Reply {
  status: number;
  headers?: Record<string, string>;
  json?: unknown;
  bytes?: Buffer;
}

/** An error answer in Graph's shape. */
export function graphError(status: number, code: string, message: string, headers: Record<string, string> = {}): Reply {
  return { status, headers, json: { error: { code, message, innerError: { date: new Date().toISOString(), 'request-id': randomUUID() } } } };
}

/** A request body as JSON; Graph's error for one that is not. */
export function parseBody(text: string): Record<string, unknown> {
  try {
    const value: unknown = text.length ? JSON.parse(text) : {};
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new ODataError(400, 'RequestBodyRead', 'Invalid JSON in the request body.');
}

export interface Representation {
  /** Prefer: IdType="ImmutableId" was sent. */
  immutable: boolean;
  /** Prefer: outlook.body-content-type, when sent. */
  bodyType?: 'text' | 'html';
}

const MESSAGE_PROPS = new Set([
  'id', 'createdDateTime', 'lastModifiedDateTime', 'receivedDateTime', 'sentDateTime', 'hasAttachments', 'internetMessageId',
  'subject', 'bodyPreview', 'importance', 'parentFolderId', 'conversationId', 'isRead', 'isDraft', 'webLink', 'body', 'uniqueBody',
  'sender', 'from', 'toRecipients', 'ccRecipients', 'bccRecipients', 'replyTo', 'flag', 'internetMessageHeaders', 'categories',
]);
const FOLDER_PROPS = new Set(['id', 'displayName', 'parentFolderId', 'childFolderCount', 'unreadItemCount', 'totalItemCount', 'isHidden']);
const ATTACHMENT_PROPS = new Set(['id', 'name', 'contentType', 'size', 'isInline', 'lastModifiedDateTime']);
const FILE_CAST = 'microsoft.graph.fileattachment/';

/** Splits on commas outside parentheses ($expand items, $select lists). */
export function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')') depth--;
    else if (text[i] === ',' && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(text.slice(start).trim());
  return out.filter(Boolean);
}

function project(full: Record<string, unknown>, select: string[] | undefined, known: Set<string>, type: string): Record<string, unknown> {
  if (!select) return full;
  const out: Record<string, unknown> = {};
  for (const name of select) {
    if (!known.has(name)) throw new ODataError(400, 'RequestBroker--ParseUri', `Could not find a property named '${name}' on type '${type}'.`);
    if (name in full) out[name] = full[name];
  }
  if ('@odata.etag' in full) out['@odata.etag'] = full['@odata.etag'];
  out.id = full.id;
  return out;
}

export function folderJson(mb: FakeMailbox, f: FakeFolder, select?: string[]): Record<string, unknown> {
  const counts = mb.counts(f.id);
  const full = {
    id: f.id,
    displayName: f.displayName,
    parentFolderId: f.parentId ?? '',
    childFolderCount: mb.children(f.id).length,
    unreadItemCount: counts.unread,
    totalItemCount: counts.total,
    isHidden: false,
  };
  return project(full, select, FOLDER_PROPS, 'microsoft.graph.mailFolder');
}

function recipient(a: { name: string; address: string } | null) {
  return a ? { emailAddress: { name: a.name, address: a.address } } : null;
}

function htmlOf(text: string): string {
  const escaped = text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
  return `<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head><body><div>${escaped}</div></body></html>`;
}

export function attachmentJson(a: FakeAttachment, select?: string[]): Record<string, unknown> {
  const type = `#microsoft.graph.${a.kind}Attachment`;
  const base: Record<string, unknown> = {
    '@odata.type': type,
    id: a.id,
    lastModifiedDateTime: '2026-11-01T10:00:00Z',
    name: a.name,
    contentType: a.contentType,
    size: a.bytes.length,
    isInline: a.isInline,
  };
  const file = a.kind === 'file' ? { contentId: a.contentId, contentLocation: null, contentBytes: a.bytes.toString('base64') } : {};
  if (!select) return { ...base, ...file };
  const out: Record<string, unknown> = { '@odata.type': type };
  for (const name of select) {
    const lower = name.toLowerCase();
    if (lower.startsWith(FILE_CAST)) {
      const prop = name.slice(FILE_CAST.length);
      if (!['contentId', 'contentBytes', 'contentLocation'].includes(prop)) throw new ODataError(400, 'RequestBroker--ParseUri', `Could not find a property named '${prop}' on type 'microsoft.graph.fileAttachment'.`);
      if (a.kind === 'file') out[prop] = (file as Record<string, unknown>)[prop];
      continue;
    }
    if (!ATTACHMENT_PROPS.has(name)) throw new ODataError(400, 'RequestBroker--ParseUri', `Could not find a property named '${name}' on type 'microsoft.graph.attachment'.`);
    out[name] = base[name];
  }
  out.id = a.id;
  return out;
}

/** $expand=singleValueExtendedProperties($filter=id eq 'Integer 0x0E08' or ...): the MAPI values the fake knows. */
function extendedProperties(m: FakeMessage, options: string): Record<string, unknown>[] {
  const asked = [...options.matchAll(/id eq '([^']+)'/gi)].map((x) => x[1]!);
  const out: Record<string, unknown>[] = [];
  for (const id of asked) {
    const tag = /^Integer\s+0x([0-9a-f]+)$/i.exec(id);
    if (!tag) continue;
    const n = Number.parseInt(tag[1]!, 16);
    // Graph names them back in its own spelling: lower-case hex without leading zeros
    const name = `Integer 0x${n.toString(16)}`;
    if (n === 0x0e08) out.push({ id: name, value: String(m.mime.length) });
    if (n === 0x1081 && m.lastVerb !== undefined) out.push({ id: name, value: String(m.lastVerb) });
  }
  return out;
}

export function messageJson(mb: FakeMailbox, m: FakeMessage, rep: Representation, select?: string[], expand?: string): Record<string, unknown> {
  const body =
    rep.bodyType === 'text' && m.body.contentType === 'html'
      ? { contentType: 'text', content: m.textRendering }
      : rep.bodyType === 'html' && m.body.contentType === 'text'
        ? { contentType: 'html', content: htmlOf(m.body.content) }
        : m.body;
  const full: Record<string, unknown> = {
    '@odata.etag': `W/"CQAAABYAAAB${m.seq}"`,
    id: rep.immutable ? m.immutableId : mb.restId(m),
    createdDateTime: m.receivedDateTime,
    lastModifiedDateTime: m.receivedDateTime,
    receivedDateTime: m.receivedDateTime,
    sentDateTime: m.sentDateTime,
    hasAttachments: m.attachments.some((a) => !a.isInline),
    internetMessageId: m.internetMessageId,
    subject: m.subject,
    bodyPreview: m.textRendering.slice(0, 255),
    importance: 'normal',
    parentFolderId: m.folderId,
    conversationId: 'AAQkAGConv',
    isRead: m.isRead,
    isDraft: m.isDraft,
    webLink: `https://outlook.office365.com/owa/?ItemID=${encodeURIComponent(m.immutableId)}`,
    body,
    sender: recipient(m.from),
    from: recipient(m.from),
    toRecipients: m.to.map(recipient),
    ccRecipients: m.cc.map(recipient),
    bccRecipients: m.bcc.map(recipient),
    replyTo: m.replyTo.map(recipient),
    flag: { flagStatus: m.flagged ? 'flagged' : 'notFlagged' },
    categories: [...m.categories],
  };
  // Graph gives the transport headers only when they are selected
  const shaped = project(full, select, MESSAGE_PROPS, 'microsoft.graph.message');
  if (select?.includes('internetMessageHeaders')) shaped.internetMessageHeaders = m.headers;
  for (const item of expand ? splitTop(expand) : []) {
    const open = item.indexOf('(');
    const name = open < 0 ? item : item.slice(0, open);
    const options = open < 0 ? '' : item.slice(open + 1, -1);
    if (name === 'attachments') {
      const sel = /^\$select=(.*)$/i.exec(options)?.[1];
      shaped.attachments = m.attachments.map((a) => attachmentJson(a, sel ? splitTop(sel) : undefined));
    } else if (name === 'singleValueExtendedProperties') {
      shaped.singleValueExtendedProperties = extendedProperties(m, options);
    } else {
      throw new ODataError(400, 'RequestBroker--ParseUri', `Could not find a property named '${name}' on type 'microsoft.graph.message'.`);
    }
  }
  return shaped;
}
