import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { GraphConnector } from '../../src/connectors/graph/connection.js';
import { toGraphError } from '../../src/connectors/graph/errors.js';
import { MailboxLimiter } from '../../src/connectors/graph/mailbox-limiter.js';
import { commentOf } from '../../src/connectors/graph/send.js';
import { buildFilter, decodeCursor, encodeCursor, pagingOf, queryFingerprint } from '../../src/connectors/graph/query.js';
import type { Connector } from '../../src/domain/connector.js';
import type { ListQuery } from '../../src/domain/mail.js';
import { Secret } from '../../src/domain/secret.js';
import { isAppError } from '../../src/errors.js';
import { outlookKind } from '../../src/kinds/outlook.js';

const query: ListQuery = { folder: 'INBOX', status: 'all', subject: [], from: [], limit: 50, order: 'newest', includeText: false };

test('$filter: receivedDateTime first, then status, subject and sender; quotes doubled', () => {
  assert.equal(buildFilter(query), 'receivedDateTime ge 1900-01-01T00:00:00Z');
  assert.equal(
    buildFilter({ ...query, status: 'read', subject: ["l'été"], from: ['a', 'b'], since: new Date('2026-11-01T10:00:00.250Z'), before: new Date('2026-12-01') }, '2026-11-30T08:00:00Z'),
    "receivedDateTime ge 2026-11-01T10:00:00.250Z and receivedDateTime lt 2026-12-01T00:00:00Z and receivedDateTime le 2026-11-30T08:00:00Z and isRead eq true and contains(subject,'l''été') and (contains(from/emailAddress/address,'a') or contains(from/emailAddress/name,'a') or contains(from/emailAddress/address,'b') or contains(from/emailAddress/name,'b'))",
  );
});

test('withoutKeyword: a lambda on categories after the receivedDateTime clauses; a cursor of such a listing is its own', () => {
  assert.equal(
    buildFilter({ ...query, status: 'unread', withoutKeyword: "$Processed" }),
    "receivedDateTime ge 1900-01-01T00:00:00Z and isRead eq false and not(categories/any(c:c eq '$Processed'))",
  );
  assert.notEqual(queryFingerprint({ ...query, withoutKeyword: '$Processed' }), queryFingerprint(query));
});

test('the comment of a reply or forward is HTML: the html as given, the text escaped with its line breaks', () => {
  assert.equal(commentOf({ text: 'a < b & "c"\r\nnext', html: null }), 'a &lt; b &amp; &quot;c&quot;<br>next');
  assert.equal(commentOf({ text: 'ignored', html: '<p>hi</p>' }), '<p>hi</p>');
  assert.equal(commentOf({ text: null, html: null }), '');
});

test('a cursor round-trips, stays URL-safe and short, and belongs to its query', () => {
  const state = { query: queryFingerprint(query), folderId: 'AAMkAGFold-_x=', folderPath: 'Inbox/Rechnungen März', pin: '2026-11-30T08:00:00Z', paging: [['$skip', '50']] as [string, string][] };
  const cursor = encodeCursor(state);
  assert.match(cursor, /^[A-Za-z0-9_-]+$/);
  assert.ok(cursor.length < 200, `${cursor.length} characters`);
  assert.deepEqual(decodeCursor(cursor, query), state);
  for (const other of [{ ...query, limit: 10 }, { ...query, order: 'oldest' as const }, { ...query, subject: ['x'] }, { ...query, folder: 'Archive' }, { ...query, includeText: true }]) {
    assert.throws(() => decodeCursor(cursor, other), (err) => isAppError(err) && err.code === 'VALIDATION_ERROR' && /another query/.test(err.message));
  }
  for (const junk of ['', 'AAAA', 'x'.repeat(4000), Buffer.from('{"v":1}').toString('base64url')]) {
    assert.throws(() => decodeCursor(junk, query), (err) => isAppError(err) && err.code === 'VALIDATION_ERROR');
  }
});

test('@odata.nextLink: only the session\'s own origin, and only with paging state', () => {
  const origin = 'https://graph.microsoft.com';
  assert.deepEqual(pagingOf(`${origin}/v1.0/me/mailFolders/x/messages?%24filter=a&%24top=5&%24skip=5`, origin, 'graph'), [['$skip', '5']]);
  assert.deepEqual(pagingOf(`${origin}/v1.0/users('x')/messages?$skiptoken=abc`, origin, 'graph'), [['$skiptoken', 'abc']]);
  for (const bad of [`https://evil.test/v1.0/me/messages?$skip=5`, `http://graph.microsoft.com/v1.0/me/messages?$skip=5`, `${origin}:8443/x?$skip=5`, `${origin}/x?$top=5`, `${origin}/x?$skip=-5`, 'not a url', 42, null]) {
    assert.throws(() => pagingOf(bad, origin, 'graph'), (err) => isAppError(err) && err.code === 'MAIL_PROTOCOL_ERROR', String(bad));
  }
});

test('the mailbox limiter: 4 at a time per key, waiters in order, a waiter gives up at its deadline', async () => {
  const limiter = new MailboxLimiter(2);
  const far = Date.now() + 60_000;
  const a = await limiter.acquire('k', far);
  const b = await limiter.acquire('k', far);
  assert.ok(a && b);
  assert.ok(await limiter.acquire('other', far), 'another key has its own slots');
  const order: string[] = [];
  const c = limiter.acquire('k', far).then((r) => (order.push('c'), r));
  const d = limiter.acquire('k', far).then((r) => (order.push('d'), r));
  assert.equal(await limiter.acquire('k', Date.now() + 20), undefined, 'no slot within the deadline');
  a!();
  a!();
  b!();
  const [rc, rd] = await Promise.all([c, d]);
  assert.deepEqual(order, ['c', 'd']);
  assert.equal(limiter.active('k'), 2, 'a release called twice counts once');
  rc!();
  rd!();
  assert.equal(limiter.active('k'), 0);
});

test('the mailbox limiter: a batch takes several slots at once, in turn, never overtaken by single requests', async () => {
  const limiter = new MailboxLimiter(4);
  const far = Date.now() + 60_000;
  const one = await limiter.acquire('k', far);
  const order: string[] = [];
  const batch = limiter.acquire('k', far, 4).then((r) => (order.push('batch'), r));
  const single = limiter.acquire('k', far).then((r) => (order.push('single'), r));
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(order, [], 'the batch waits for all 4; the single request waits behind it');
  one!();
  const release = await batch;
  assert.equal(limiter.active('k'), 4);
  assert.deepEqual(order, ['batch']);
  release!();
  (await single)!();
  assert.deepEqual(order, ['batch', 'single']);
  assert.equal(limiter.active('k'), 0);
  assert.ok(await limiter.acquire('k', far, 99), 'a weight above the capacity takes the whole capacity');
  const late = limiter.acquire('k', Date.now() + 20, 2);
  assert.equal(await late, undefined, 'gives up at its deadline');
  assert.equal(limiter.active('k'), 4);
});

test('item-level Graph answers: not-found codes for the item, never the mailbox', () => {
  const where = { host: 'graph.microsoft.com', port: 443, mailbox: 'me' };
  assert.equal(toGraphError({ ...where, status: 404, graphCode: 'ErrorItemNotFound', item: 'message' }).code, 'MESSAGE_NOT_FOUND');
  assert.equal(toGraphError({ ...where, status: 400, graphCode: 'ErrorInvalidIdMalformed', item: 'message' }).code, 'MESSAGE_NOT_FOUND');
  assert.equal(toGraphError({ ...where, status: 404, item: 'folder' }).code, 'FOLDER_NOT_FOUND');
  assert.equal(toGraphError({ ...where, status: 404, graphCode: 'ErrorItemNotFound', item: 'attachment' }).code, 'ATTACHMENT_NOT_FOUND');
  assert.equal(toGraphError({ ...where, status: 404, graphCode: 'ErrorInvalidUser', item: 'message' }).code, 'GRAPH_MAILBOX_NOT_FOUND', 'the mailbox itself is gone');
  assert.equal(toGraphError({ ...where, status: 400, graphCode: 'InefficientFilter', item: 'folder' }).code, 'MAIL_PROTOCOL_ERROR');
  assert.match(toGraphError({ ...where, status: 403, write: true }).message, /Mail\.ReadWrite/);
  assert.equal(toGraphError({ ...where, status: 404 }).code, 'GRAPH_MAILBOX_NOT_FOUND');
});

test('the outlook kind declares the capabilities its connector has', () => {
  const tokens = { token: async () => new Secret('t'), close: () => {} };
  const ctx = { logger: pino({ level: 'silent' }), outbound: {} as never, onDrop: () => {}, resume: async () => {} };
  const connector: Connector = new GraphConnector(
    { host: 'graph.test', port: 443, mailbox: 'me', inboxUrl: 'https://graph.test/v1.0/me/mailFolders/inbox', mailboxUrl: 'https://graph.test/v1.0/me', extraCaFile: '', timeouts: { connectMs: 1000, commandMs: 1000 }, maxAttempts: 1, parseMaxBytes: 1000 },
    ctx,
    tokens,
    new MailboxLimiter(),
  );
  for (const capability of ['reader', 'flagger', 'mover', 'deleter', 'sender', 'tagger', 'watcher'] as const) {
    assert.equal(connector[capability] !== undefined, outlookKind.capabilities.outlook!.includes(capability), capability);
  }
});
