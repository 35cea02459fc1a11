import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ListQuery } from '../../src/domain/mail.js';
import { AppError } from '../../src/errors.js';
import { MAX_SEEN, cutPage, decodeCursor, encodeCursor, idHash, type Found, type ListCursor } from '../../src/connectors/ews/cursor.js';
import { childPath, splitPath, wellKnownByName } from '../../src/connectors/ews/folder-paths.js';

const query: ListQuery = { folder: 'Inbox', status: 'all', subject: [], from: [], limit: 3, order: 'newest', includeText: false };

/** A folder of `n` messages, newest first, `perSecond` of them in each second. */
function folder(n: number, perSecond: number): Found[] {
  const t0 = 1_800_000_000_000;
  return Array.from({ length: n }, (_, i) => ({ itemId: `item-${i}`, receivedMs: t0 - Math.floor(i / perSecond) * 1000 - (i % perSecond) }));
}

/** What the fake server does with the cursor's restriction: before the end of its second, from `skip`. */
function serve(all: Found[], cursor: ListCursor | undefined, size: number, shuffle: (list: Found[]) => Found[]): { found: Found[]; more: boolean } {
  const eligible = cursor ? all.filter((f) => f.receivedMs < (cursor.t + 1) * 1000) : all;
  const bySecond = new Map<number, Found[]>();
  for (const f of eligible) bySecond.set(Math.floor(f.receivedMs / 1000), [...(bySecond.get(Math.floor(f.receivedMs / 1000)) ?? []), f]);
  const ordered = [...bySecond.keys()].sort((a, b) => b - a).flatMap((s) => shuffle(bySecond.get(s)!));
  const start = cursor?.skip ?? 0;
  return { found: ordered.slice(start, start + size), more: start + size < ordered.length };
}

function walk(all: Found[], limit: number, shuffle: (list: Found[]) => Found[]): { pages: number; ids: string[]; cursors: string[] } {
  const ids: string[] = [];
  const cursors: string[] = [];
  let cursor: ListCursor | undefined;
  let pages = 0;
  for (;;) {
    const { found, more } = serve(all, cursor, limit + (cursor?.seen.length ?? 0), shuffle);
    const { page, next } = cutPage(found, more, limit, cursor);
    ids.push(...page.map((p) => p.itemId));
    pages += 1;
    if (!next || pages > 10_000) break;
    const text = encodeCursor(query, next);
    cursors.push(text);
    cursor = decodeCursor(query, text);
  }
  return { pages, ids, cursors };
}

test('cutPage: every message once, in pages, whatever the order within a second', () => {
  const reverse = (l: Found[]) => [...l].reverse();
  let flip = false;
  const alternate = (l: Found[]) => ((flip = !flip) ? l : reverse(l));
  for (const [n, perSecond, limit] of [[10, 1, 3], [25, 7, 3], [40, 40, 6], [5, 5, 5], [1, 1, 1]] as const) {
    for (const shuffle of [(l: Found[]) => l, reverse, alternate]) {
      const all = folder(n, perSecond);
      const { ids, pages } = walk(all, limit, shuffle);
      assert.equal(new Set(ids).size, ids.length, `${n}/${perSecond}/${limit}: no duplicates`);
      assert.deepEqual([...ids].sort(), all.map((f) => f.itemId).sort(), `${n}/${perSecond}/${limit}: none skipped`);
      assert.equal(pages, Math.max(1, Math.ceil(n / limit)), `${n}/${perSecond}/${limit}: pages`);
    }
  }
});

test('more than MAX_SEEN messages in one second: the cursor counts instead and stays under 4096 characters', () => {
  const all = folder(MAX_SEEN + 250, MAX_SEEN + 250);
  const { ids, cursors } = walk(all, 100, (l) => l);
  assert.equal(new Set(ids).size, all.length);
  assert.ok(cursors.some((c) => /\.\d+\.0\.[A-Za-z0-9_-]+$/.test(c)), 'remembers while it may');
  assert.ok(cursors.some((c) => /\.[1-9]\d*\.$/.test(c)), 'then counts');
  for (const c of cursors) {
    assert.ok(c.length <= 4096, `${c.length} characters`);
    assert.match(c, /^[A-Za-z0-9_.~-]+$/);
  }
});

test('a cursor belongs to its query; damaged ones are VALIDATION_ERROR', () => {
  const text = encodeCursor(query, { t: 1_700_000_000, skip: 0, seen: [idHash('a'), idHash('b')] });
  assert.deepEqual(decodeCursor({ ...query, limit: 50 }, text).seen, [idHash('a'), idHash('b')], 'the page size may change');
  for (const other of [{ ...query, folder: 'Sent Items' }, { ...query, status: 'unread' as const }, { ...query, order: 'oldest' as const }, { ...query, subject: ['x'] }]) {
    assert.throws(() => decodeCursor(other, text), (e: unknown) => e instanceof AppError && e.code === 'VALIDATION_ERROR');
  }
  for (const bad of ['', 'e1', `${text}x`, text.replace('e1.', 'e2.'), 'e1.AAAAAAAAAAAA.1.0.abc']) {
    assert.throws(() => decodeCursor(query, bad), (e: unknown) => e instanceof AppError && e.code === 'VALIDATION_ERROR', bad);
  }
});

test('folder paths: display names joined with "/", "/" and "\\" escaped, well-known names in any case', () => {
  assert.equal(childPath('', 'Projects'), 'Projects');
  assert.equal(childPath('Projects', 'Q1/Q2'), 'Projects/Q1\\/Q2');
  assert.equal(childPath('A', 'back\\slash'), 'A/back\\\\slash');
  assert.deepEqual(splitPath('Projects/Q1\\/Q2'), ['Projects', 'Q1/Q2']);
  assert.deepEqual(splitPath('A/back\\\\slash'), ['A', 'back\\slash']);
  for (const bad of ['', 'a//b', '/a', 'a/', 'a\\']) assert.equal(splitPath(bad), undefined, bad);
  assert.equal(wellKnownByName('INBOX')?.key, 'inbox');
  assert.equal(wellKnownByName('Trash')?.key, 'deleteditems');
  assert.equal(wellKnownByName('junk e-mail')?.key, 'junkemail');
  assert.equal(wellKnownByName('Sent')?.path, 'Sent Items');
  assert.equal(wellKnownByName('Invoices'), undefined);
});
