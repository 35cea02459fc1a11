import { createHash } from 'node:crypto';
import { AppError } from '../../errors.js';
import type { ListQuery } from '../../domain/mail.js';

/**
 * The EWS list cursor: anchored on the date received, not on an offset, so that mail arriving (or leaving)
 * between two pages neither repeats nor skips a message.
 *
 * A page ends at some message received in second `t` (EWS shows DateTimeReceived to the second). The next
 * page asks FindItem for what was received before the end of that second (newest first) or from its start
 * on (oldest first), and drops the messages of second `t` it already gave: their ItemIds are remembered as
 * short hashes (`seen`), because Exchange promises no order among messages of the same second. New mail is
 * newer than `t`, so it never enters a newest-first walk (it shows on the next walk) and lands at the end
 * of an oldest-first one.
 *
 * When more than MAX_SEEN messages share one second (a bulk import), the cursor stops remembering and
 * counts instead (`skip`: that many messages of second `t` are done), which is exact as long as Exchange
 * keeps their order between calls.
 *
 * Wire form: `e1.<query>.<t>.<skip>.<seen>`: the query's hash (a cursor only continues the list it came
 * from), t in seconds since 1970, and 8-character hashes concatenated; at most ~3.3 KB, [A-Za-z0-9_.-].
 */
export interface ListCursor {
  /** Seconds since 1970 of the anchor's DateTimeReceived. */
  t: number;
  skip: number;
  seen: string[];
}

export const MAX_SEEN = 400;
const HASH_CHARS = 8;

/** A short, URL-safe hash of an ItemId, for `seen`. */
export function idHash(itemId: string): string {
  return createHash('sha256').update(itemId).digest('base64url').slice(0, HASH_CHARS);
}

/** What a cursor is valid for: the folder, the filters (work claims' keyword too) and the order (not the page size). */
function queryHash(query: ListQuery): string {
  const key = JSON.stringify([
    query.folder,
    query.status,
    query.subject,
    query.from,
    query.since?.getTime() ?? null,
    query.before?.getTime() ?? null,
    query.order,
    // only when set, so that the cursors of lists without it keep their form
    ...(query.withoutKeyword ? [query.withoutKeyword] : []),
  ]);
  return createHash('sha256').update(key).digest('base64url').slice(0, 12);
}

export function encodeCursor(query: ListQuery, cursor: ListCursor): string {
  return ['e1', queryHash(query), String(cursor.t), String(cursor.skip), cursor.seen.join('')].join('.');
}

const invalid = (why: string) => new AppError('VALIDATION_ERROR', `cursor: ${why}; start again without a cursor`);

/** Reads a cursor of this connector; a VALIDATION_ERROR for anything else. */
export function decodeCursor(query: ListQuery, text: string): ListCursor {
  const m = /^e1\.([A-Za-z0-9_-]{12})\.(\d{1,12})\.(\d{1,9})\.([A-Za-z0-9_-]*)$/.exec(text);
  if (!m) throw invalid('not a cursor of an EWS session');
  if (m[1] !== queryHash(query)) throw invalid('it belongs to another list (folder, filters and order must stay the same)');
  const seenText = m[4]!;
  if (seenText.length % HASH_CHARS !== 0 || seenText.length / HASH_CHARS > MAX_SEEN) throw invalid('it is damaged');
  const seen: string[] = [];
  for (let i = 0; i < seenText.length; i += HASH_CHARS) seen.push(seenText.slice(i, i + HASH_CHARS));
  return { t: Number(m[2]), skip: Number(m[3]), seen };
}

/** One entry of a FindItem answer: enough to page. */
export interface Found {
  itemId: string;
  /** DateTimeReceived, ms since 1970. */
  receivedMs: number;
}

/**
 * Cuts a page out of one FindItem answer (asked for `limit + seen.length` entries from `skip`) and makes the
 * next cursor, or null when nothing is left.
 */
export function cutPage(found: Found[], moreAvailable: boolean, limit: number, previous: ListCursor | undefined): { page: Found[]; next: ListCursor | null } {
  const seen = new Set(previous?.seen ?? []);
  const fresh = found.filter((f) => !seen.has(idHash(f.itemId)));
  const page = fresh.slice(0, limit);
  const more = moreAvailable || fresh.length > limit;
  if (!more) return { page, next: null };
  const last = page.at(-1);
  if (!last) {
    if (!previous || found.length === 0) return { page, next: null };
    // everything the server gave was seen already (a server that answers fewer entries than asked):
    // count past them instead of asking for the same entries again
    return { page, next: { t: previous.t, skip: previous.skip + found.length, seen: [] } };
  }
  const t = Math.floor(last.receivedMs / 1000);
  const ties = page.filter((f) => Math.floor(f.receivedMs / 1000) === t);
  const sameSecond = previous !== undefined && previous.t === t;
  if (sameSecond && previous.skip > 0) return { page, next: { t, skip: previous.skip + ties.length, seen: [] } };
  const hashes = [...(sameSecond ? previous.seen : []), ...ties.map((f) => idHash(f.itemId))];
  if (hashes.length > MAX_SEEN) return { page, next: { t, skip: hashes.length, seen: [] } };
  return { page, next: { t, skip: 0, seen: hashes } };
}
