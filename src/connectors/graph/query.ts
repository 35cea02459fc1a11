import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { AppError } from '../../errors.js';
import type { ListQuery, MessageFilter } from '../../domain/mail.js';

/**
 * The OData side of listing messages: the $filter for the loop's filters, and the cursor that carries
 * Graph's paging state from one page to the next.
 *
 * Graph refuses ("InefficientFilter") a $filter + $orderby on messages unless every $orderby property
 * also appears in $filter, first: so the filter always opens with a receivedDateTime clause. `$search`
 * is never used: it cannot be combined with $filter or $orderby (no newest/oldest order, no status or
 * date filters), ranks by relevance and stops after 1,000 results.
 */

/** The lower bound when the caller gives none (Microsoft's own example for satisfying the $orderby rule). */
const EPOCH = '1900-01-01T00:00:00Z';
const PIN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$/;

/** An instant as an OData DateTimeOffset literal (UTC, whole seconds unless given finer). */
function odataDate(at: Date): string {
  return at.toISOString().replace('.000Z', 'Z');
}

/** A string literal: single quotes are doubled (OData ABNF). */
function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

function anyOf(clauses: string[]): string {
  return clauses.length === 1 ? clauses[0]! : `(${clauses.join(' or ')})`;
}

/**
 * The loop's filters as $filter: receivedDateTime first (the $orderby rule), then read status, then
 * subject and sender "contains" (Graph compares case-insensitively; `from` matches the address or the
 * display name), then "without this category" (what work claims have not done yet) as a lambda on the
 * categories collection. `pin` bounds a newest-first listing to what existed when its first page was read.
 */
export function buildFilter(filter: MessageFilter, pin?: string): string {
  const clauses = [`receivedDateTime ge ${filter.since ? odataDate(filter.since) : EPOCH}`];
  if (filter.before) clauses.push(`receivedDateTime lt ${odataDate(filter.before)}`);
  if (pin) clauses.push(`receivedDateTime le ${pin}`);
  if (filter.status !== 'all') clauses.push(`isRead eq ${filter.status === 'read'}`);
  if (filter.subject.length) clauses.push(anyOf(filter.subject.map((s) => `contains(subject,${literal(s)})`)));
  if (filter.from.length) {
    clauses.push(anyOf(filter.from.flatMap((s) => [`contains(from/emailAddress/address,${literal(s)})`, `contains(from/emailAddress/name,${literal(s)})`])));
  }
  if (filter.withoutKeyword) clauses.push(`not(categories/any(c:c eq ${literal(filter.withoutKeyword)}))`);
  return clauses.join(' and ');
}

/** A query string as Graph's documentation asks: RFC 3986 percent-encoding (spaces as %20, not "+"). */
export function queryString(params: readonly (readonly [string, string])[]): string {
  return params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
}

/** The parameters this service writes itself; a cursor carries only the others (Graph's paging state). */
const OWN_PARAMS = new Set(['$filter', '$orderby', '$top', '$select', '$expand']);
const PAGING_NAME = /^\$?[A-Za-z][A-Za-z0-9_]{0,31}$/;

/** What a cursor holds: the listing's folder and pin, Graph's paging parameters, and whose query it continues. */
export interface CursorState {
  /** Fingerprint of the query that made it: a cursor continues only the same query. */
  query: string;
  folderId: string;
  folderPath: string;
  pin?: string;
  paging: [string, string][];
}

function protocolError(host: string, why: string): AppError {
  return new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${host}: ${why}`);
}

/**
 * Graph's paging state from an @odata.nextLink: its parameters other than ours ($skip, $skiptoken...).
 * The link must point at the session's own Graph origin, and must carry some paging state (a link that
 * repeats the first page would loop a bot forever).
 */
export function pagingOf(nextLink: unknown, origin: string, host: string): [string, string][] {
  if (typeof nextLink !== 'string' || nextLink.length > 16_384) throw protocolError(host, 'the @odata.nextLink of the page is not a URL');
  let url: URL;
  try {
    url = new URL(nextLink);
  } catch {
    throw protocolError(host, 'the @odata.nextLink of the page is not a URL');
  }
  if (url.origin !== origin) throw protocolError(host, `the @odata.nextLink points to another host (${url.origin}): not followed`);
  const paging = [...url.searchParams].filter(([name]) => !OWN_PARAMS.has(name.toLowerCase()));
  checkPaging(paging, () => protocolError(host, 'the @odata.nextLink carries no usable paging state'));
  return paging;
}

function checkPaging(paging: [string, string][], fail: () => AppError): void {
  if (paging.length === 0 || paging.length > 4) throw fail();
  for (const [name, value] of paging) {
    if (!PAGING_NAME.test(name) || OWN_PARAMS.has(name.toLowerCase()) || value.length > 2048) throw fail();
    if (name.toLowerCase() === '$skip' && !/^\d{1,9}$/.test(value)) throw fail();
  }
}

/** The fingerprint of a list query: which cursor belongs to it. */
export function queryFingerprint(q: ListQuery): string {
  const parts = [q.folder, q.status, q.subject, q.from, q.since?.toISOString() ?? null, q.before?.toISOString() ?? null, q.order, q.limit, q.includeText, ...(q.withoutKeyword ? [q.withoutKeyword] : [])];
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 22);
}

/** Compressed JSON in base64url: URL-safe, and short enough for the 4,096 characters a cursor may have. */
export function encodeCursor(state: CursorState): string {
  const packed = { v: 1, q: state.query, f: state.folderId, p: state.folderPath, ...(state.pin ? { t: state.pin } : {}), k: state.paging };
  const cursor = deflateRawSync(Buffer.from(JSON.stringify(packed), 'utf8')).toString('base64url');
  if (cursor.length > 4096) throw new AppError('MAIL_PROTOCOL_ERROR', 'the paging state Microsoft Graph gave does not fit in a cursor');
  return cursor;
}

function badCursor(message: string): AppError {
  return new AppError('VALIDATION_ERROR', `cursor ${message}`, { errors: [{ path: '/querystring/cursor', message }] });
}

/**
 * A cursor is caller input: it is inflated with a bound, read as data, and must belong to this query.
 * Whatever it says, the next request goes to the session's own Graph host and mailbox (the connector
 * builds the URL), to a folder id that is one path segment, with our own filter.
 */
export function decodeCursor(cursor: string, q: ListQuery): CursorState {
  let packed: { v?: unknown; q?: unknown; f?: unknown; p?: unknown; t?: unknown; k?: unknown };
  try {
    packed = JSON.parse(inflateRawSync(Buffer.from(cursor, 'base64url'), { maxOutputLength: 16_384 }).toString('utf8')) as typeof packed;
  } catch {
    throw badCursor('is not a cursor of this service');
  }
  const paging = packed?.k;
  const valid =
    typeof packed === 'object' && packed !== null && packed.v === 1 &&
    typeof packed.q === 'string' && typeof packed.f === 'string' && /^[A-Za-z0-9_=+-]{1,512}$/.test(packed.f) &&
    typeof packed.p === 'string' && packed.p.length <= 4096 &&
    (packed.t === undefined || (typeof packed.t === 'string' && PIN.test(packed.t))) &&
    Array.isArray(paging) && paging.every((pair) => Array.isArray(pair) && pair.length === 2 && pair.every((s) => typeof s === 'string'));
  if (!valid) throw badCursor('is not a cursor of this service');
  if (packed.q !== queryFingerprint(q)) {
    throw badCursor('was made for another query: repeat the folder, filters, order, limit and include of the request that gave it');
  }
  const pairs = paging as [string, string][];
  checkPaging(pairs, () => badCursor('is not a cursor of this service'));
  return { query: packed.q, folderId: packed.f as string, folderPath: packed.p as string, ...(packed.t ? { pin: packed.t as string } : {}), paging: pairs };
}

/** receivedDateTime as Graph wrote it, when it can serve as a pin. */
export function pinOf(value: unknown): string | undefined {
  return typeof value === 'string' && PIN.test(value) ? value : undefined;
}
