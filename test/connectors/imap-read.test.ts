import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MessageStructureObject } from 'imapflow';
import { decodeCursor, decodeMessageId, encodeCursor, encodeMessageId, messageCheck, pathHash } from '../../src/connectors/imap/ids.js';
import { dateWindows, searchQuery } from '../../src/connectors/imap/search.js';
import { readStructure } from '../../src/connectors/imap/structure.js';
import type { MessageFilter } from '../../src/domain/mail.js';

const filter = (f: Partial<MessageFilter> = {}): MessageFilter => ({ status: 'all', subject: [], from: [], ...f });

test('message ids: folder + UIDVALIDITY + UID + a check of the message, URL-safe, at most 1024 characters, a long path hashed', () => {
  const check = messageCheck({ messageId: '<a@b>', internalDate: new Date('2026-11-03T10:00:00Z'), size: 1234 });
  assert.match(check, /^[A-Za-z0-9_-]{8}$/);
  assert.equal(check, messageCheck({ messageId: '<a@b>', internalDate: new Date('2026-11-03T10:00:00Z'), size: 1234 }));
  assert.notEqual(check, messageCheck({ messageId: '<a@b>', internalDate: new Date('2026-11-03T10:00:00Z'), size: 1235 }));
  assert.notEqual(check, messageCheck({ messageId: '<c@d>', internalDate: new Date('2026-11-03T10:00:00Z'), size: 1234 }));
  const id = encodeMessageId('Archiv.Rechnungen/2026 März', 1796143763n, 42, check);
  assert.match(id, /^[A-Za-z0-9_-]+$/);
  assert.deepEqual(decodeMessageId(id), { uidValidity: 1796143763n, uid: 42, check, path: 'Archiv.Rechnungen/2026 März' });
  const long = 'Ä'.repeat(600);
  const longId = encodeMessageId(long, 7n, 1, check);
  assert.ok(longId.length <= 1024);
  assert.deepEqual(decodeMessageId(longId), { uidValidity: 7n, uid: 1, check, pathHash: pathHash(long) });
  const b = (text: string) => Buffer.from(text).toString('base64url');
  for (const bad of ['', 'not/base64', b('1:x:1:abcdefgh:INBOX'), b('1:1:0:abcdefgh:INBOX'), b('1:1:99999999999:abcdefgh:INBOX'), b('3:1:1:abcdefgh:INBOX'), b('1:1:1:INBOX'), b('1:1:1:abc:INBOX')]) {
    assert.equal(decodeMessageId(bad), undefined, bad);
  }
});

test('cursors round-trip and refuse anything else', () => {
  const c = { path: 'INBOX', uidValidity: 5n, uid: 17, order: 'oldest' as const };
  const text = encodeCursor(c);
  assert.match(text, /^[A-Za-z0-9_.~-]+$/);
  assert.deepEqual(decodeCursor(text), c);
  assert.equal(decodeCursor(encodeMessageId('INBOX', 5n, 17, 'abcdefgh')), undefined);
});

test('filters become UID SEARCH criteria: alternatives OR, status SEEN, dates widened by a day each side', () => {
  assert.deepEqual(searchQuery(filter({ status: 'unread', subject: ['invoice'] }), '1:99'), { uid: '1:99', seen: false, subject: 'invoice' });
  assert.deepEqual(searchQuery(filter({ subject: ['a', 'b'], from: ['x'] })), { or: [{ subject: 'a' }, { subject: 'b' }], from: 'x' });
  assert.deepEqual(searchQuery(filter({ subject: ['a', 'b'], from: ['x', 'y'] })), {
    not: { or: [{ not: { or: [{ subject: 'a' }, { subject: 'b' }] } }, { not: { or: [{ from: 'x' }, { from: 'y' }] } }] },
  });
  const q = searchQuery(filter({ since: new Date('2026-11-03T10:30:00Z'), before: new Date('2026-11-05T00:00:00Z') }));
  assert.deepEqual(q, { since: new Date('2026-11-02T00:00:00Z'), before: new Date('2026-11-07T00:00:00Z') });
});

test('date windows: only the boundary days are checked, and the exact instant decides', () => {
  const since = new Date('2026-11-03T10:30:00Z');
  const [w] = dateWindows(filter({ since }));
  assert.deepEqual(w!.search, { since: new Date('2026-11-02T00:00:00Z'), before: new Date('2026-11-05T00:00:00Z') });
  assert.equal(w!.keep(new Date('2026-11-03T10:29:59Z')), false);
  assert.equal(w!.keep(since), true);
  const [b] = dateWindows(filter({ before: since }));
  assert.equal(b!.keep(new Date('2026-11-03T10:29:59Z')), true);
  assert.equal(b!.keep(since), false);
  assert.deepEqual(dateWindows(filter()), []);
});

test('BODYSTRUCTURE: body text and attachments by mailparser\'s rules, embedded messages not walked', () => {
  const root: MessageStructureObject = {
    type: 'multipart/mixed',
    childNodes: [
      {
        part: '1',
        type: 'multipart/alternative',
        childNodes: [
          { part: '1.1', type: 'text/plain', parameters: { charset: 'utf-8', format: 'flowed' }, encoding: 'quoted-printable', size: 100 },
          {
            part: '1.2',
            type: 'multipart/related',
            childNodes: [
              { part: '1.2.1', type: 'text/html', parameters: { charset: 'utf-8' }, encoding: '7bit', size: 200 },
              { part: '1.2.2', type: 'image/png', id: '<logo@x>', encoding: 'base64', size: 300 },
            ],
          },
        ],
      },
      { part: '2', type: 'application/pdf', disposition: 'attachment', dispositionParameters: { filename: 'Rechnung März.pdf' }, encoding: 'base64', size: 4000 },
      { part: '3', type: 'text/plain', disposition: 'attachment', parameters: { name: 'notes.txt', charset: 'iso-8859-1' }, encoding: '8bit', size: 12 },
      { part: '4', type: 'message/rfc822', encoding: '7bit', size: 500, childNodes: [{ part: '4', type: 'multipart/mixed', childNodes: [{ part: '4.1', type: 'text/plain', size: 1 }] }] },
      { part: '5', type: 'text/html', disposition: 'weird', size: 5 },
    ],
  };
  const s = readStructure(root);
  assert.deepEqual(s.text.map((t) => [t.section, t.type, t.charset, t.format]), [['1.1', 'text/plain', 'utf-8', 'flowed'], ['1.2.1', 'text/html', 'utf-8', undefined]]);
  assert.deepEqual(
    s.attachments.map((a) => [a.id, a.filename, a.contentType, a.size, a.inline, a.contentId, a.downloadType]),
    [
      ['1.2.2', null, 'image/png', null, true, 'logo@x', 'image/png'],
      ['2', 'Rechnung März.pdf', 'application/pdf', null, false, null, 'application/pdf'],
      ['3', 'notes.txt', 'text/plain', 12, false, null, 'text/plain; charset=iso-8859-1'],
      ['4', null, 'message/rfc822', 500, false, null, 'message/rfc822'],
      ['5', null, 'text/html', 5, false, null, 'text/html'],
    ],
  );
  assert.equal(s.truncated, false);
  // a single-part message: its body is BODY[TEXT], and a non-text one is attachment "1"
  assert.equal(readStructure({ type: 'text/plain', size: 3 }).text[0]?.section, 'TEXT');
  assert.equal(readStructure({ type: 'application/pdf', encoding: 'base64', size: 3 }).attachments[0]?.id, '1');
});
