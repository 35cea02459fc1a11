import type { SearchObject } from 'imapflow';
import type { MessageFilter } from '../../domain/mail.js';

/**
 * The loop's filters as IMAP UID SEARCH criteria (RFC 3501 6.4.4). SUBJECT and FROM are case-insensitive
 * "contains" on the server already; alternatives become OR; status becomes SEEN / UNSEEN.
 *
 * Dates need care: SINCE and BEFORE compare days, not instants, and each on the INTERNALDATE's own time zone
 * (imapflow may send WITHIN's YOUNGER/OLDER instead, relative to the server's clock). So the server is asked
 * for a superset, one day wider on each side than any time zone can shift a date, and the exact instant is
 * checked here on the INTERNALDATE of the messages in the boundary days only (`dateWindows`): a filter on
 * "since last Monday 10:00" costs a FETCH INTERNALDATE of three days of mail, never of the folder.
 */

const DAY = 86_400_000;
/** Outside these days an IMAP date cannot be written with four digits (or no mail has such an INTERNALDATE). */
const MIN_DAY = Date.UTC(1900, 0, 3);
const MAX_DAY = Date.UTC(9999, 11, 29);

/** Midnight UTC of the day of `at`, moved by `days`. */
function day(at: Date, days: number): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()) + days * DAY);
}

/** A time zone shifts a date by at most 14 hours, so one day either side always covers it. */
function sinceDay(since: Date | undefined): Date | undefined {
  return since && since.getTime() > MIN_DAY ? day(since, -1) : undefined;
}

function beforeDay(before: Date | undefined): Date | undefined {
  return before && before.getTime() < MAX_DAY ? day(before, 2) : undefined;
}

/** `a OR b OR ...` of one criterion; imapflow builds the binary OR tree. */
function anyOf(key: 'subject' | 'from', values: string[]): SearchObject {
  return values.length === 1 ? { [key]: values[0] } : { or: values.map((v) => ({ [key]: v })) };
}

/** true when no message can match (since at or after before, or dates out of any mailbox's range). */
export function matchesNothing(filter: MessageFilter): boolean {
  if (filter.since && filter.before && filter.since.getTime() >= filter.before.getTime()) return true;
  if (filter.since && filter.since.getTime() >= MAX_DAY) return true;
  return filter.before !== undefined && filter.before.getTime() <= MIN_DAY;
}

/** true when the query has no criterion besides the cursor's UID range (a page can then be read by sequence numbers). */
export function isUnfiltered(filter: MessageFilter): boolean {
  return filter.status === 'all' && !filter.subject.length && !filter.from.length && !filter.since && !filter.before && !filter.withoutKeyword;
}

/** The UID SEARCH for `filter` within `uid` (a UID range such as "1:41"), a superset on dates (see above). */
export function searchQuery(filter: MessageFilter, uid?: string): SearchObject {
  const query: SearchObject = {};
  if (uid) query.uid = uid;
  if (filter.status !== 'all') query.seen = filter.status === 'read';
  // work claims: what is not done yet (UNKEYWORD); on a server that keeps no keywords this matches everything
  if (filter.withoutKeyword) query.unKeyword = filter.withoutKeyword;
  const since = sinceDay(filter.since);
  const before = beforeDay(filter.before);
  if (since) query.since = since;
  if (before) query.before = before;
  const subject = filter.subject.length ? anyOf('subject', filter.subject) : undefined;
  const from = filter.from.length ? anyOf('from', filter.from) : undefined;
  if (subject && from && subject.or && from.or) {
    // one query holds one OR key: (S1 OR S2) AND (F1 OR F2) is written NOT (NOT (S1 OR S2) OR NOT (F1 OR F2))
    query.not = { or: [{ not: subject }, { not: from }] };
  } else {
    Object.assign(query, subject ?? {}, from ?? {});
  }
  return query;
}

/** Boundary days whose messages need their INTERNALDATE compared with the exact instant. */
export interface DateWindow {
  search: SearchObject;
  /** Whether a message received at `at` passes this bound. */
  keep: (at: Date) => boolean;
}

/** The boundary-day windows of `filter`'s since and before (none for a bound that is absent or out of range). */
export function dateWindows(filter: MessageFilter): DateWindow[] {
  const windows: DateWindow[] = [];
  const { since, before } = filter;
  if (since && sinceDay(since)) {
    windows.push({ search: { since: day(since, -1), before: day(since, 2) }, keep: (at) => at.getTime() >= since.getTime() });
  }
  if (before && beforeDay(before)) {
    windows.push({ search: { since: day(before, -1), before: day(before, 2) }, keep: (at) => at.getTime() < before.getTime() });
  }
  return windows;
}
