import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { inflateRawSync, deflateRawSync } from 'node:zlib';
import { encodeId } from '../../src/domain/mail.js';
import { build, type TestApp } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { BODY_MARKERS, seedFolders, seedInbox, type PlainSeed, type RichSeed } from '../harness/graph-mail-seed.js';
import { USERS, assertNoSecrets, startGraphWorld, type GraphWorld } from '../harness/graph-world.js';
import type { GraphRequestRecord } from '../harness/fake-graph.js';

type App = TestApp['app'];
type Summary = { id: string; subject: string; seen: boolean; receivedAt: string; folder: string; from: { name: string; address: string } };

/** Reading an outlook session's mailbox through the HTTP API: the fake Graph speaks Graph's wire format. */
describe('reading mail of outlook sessions (Microsoft Graph)', () => {
  let world: GraphWorld;
  let app: App;
  let logs: string[];
  let inbox: PlainSeed[];
  let rich: RichSeed;
  const closers: (() => unknown)[] = [];
  const bodies: string[] = [];
  const mailbox = USERS.alice.name;

  before(async () => {
    world = await startGraphWorld();
    const mb = world.graph.mailbox(mailbox);
    inbox = await seedInbox(mb);
    rich = await seedFolders(mb);
    const built = await build({ after: (fn: () => unknown) => void closers.push(fn) } as never, world.env);
    ({ app, logs } = built);
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'mail', type: 'outlook', mailbox } });
    assert.equal(res.statusCode, 201, res.body);
  });
  after(async () => {
    for (const close of closers) await close();
    await world?.close();
  });

  async function get(url: string) {
    const res = await app.inject({ method: 'GET', url: `/v1/sessions/mail${url}` });
    bodies.push(res.body);
    return res;
  }
  async function list(query: string): Promise<{ messages: Summary[]; nextCursor: string | null }> {
    const res = await get(`/messages?${query}`);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  }
  /** Every page of a listing, following nextCursor. */
  async function all(query: string): Promise<Summary[][]> {
    const pages: Summary[][] = [];
    let cursor: string | null = null;
    do {
      const page = await list(`${query}${cursor ? `&cursor=${cursor}` : ''}`);
      pages.push(page.messages);
      cursor = page.nextCursor;
    } while (cursor && pages.length < 20);
    return pages;
  }
  const since = (from: number) => world.graph.requests.slice(from);
  const messagesRequests = (records: GraphRequestRecord[]) => records.filter((r) => /\/messages$/.test(r.path));
  const newestFirst = (seeds: PlainSeed[]) => [...seeds].sort((a, b) => b.receivedDateTime.localeCompare(a.receivedDateTime)).map((s) => s.subject);

  test('folders: paths of display names joined by "/", the well-known folders as special uses', async () => {
    const res = await get('/folders');
    assert.equal(res.statusCode, 200, res.body);
    const folders = res.json().folders as { path: string; name: string; delimiter: string; specialUse: string | null }[];
    const byPath = Object.fromEntries(folders.map((f) => [f.path, f]));
    assert.deepEqual(
      Object.fromEntries(folders.filter((f) => f.specialUse).map((f) => [f.path, f.specialUse])),
      { Inbox: 'inbox', Drafts: 'drafts', 'Sent Items': 'sent', 'Deleted Items': 'trash', 'Junk Email': 'junk', Archive: 'archive' },
    );
    for (const path of ['Inbox/Invoices', 'Inbox/Invoices/2026', 'Clients/Acme', 'Q1/Q2 reports', 'Outbox']) assert.ok(byPath[path], `${path} listed`);
    assert.equal(byPath['Inbox/Invoices/2026']!.name, '2026');
    assert.equal(byPath['Q1/Q2 reports']!.name, 'Q1/Q2 reports');
    assert.ok(folders.every((f) => f.delimiter === '/'));
    assert.ok(folders.findIndex((f) => f.path === 'Inbox') < folders.findIndex((f) => f.path === 'Inbox/Invoices'), 'parents come before their children');
  });

  test('every filter, alone and together; the wire request satisfies Graph\'s $filter + $orderby rule', async () => {
    const expect = (pick: (s: PlainSeed) => boolean) => newestFirst(inbox.filter(pick));
    const subjects = async (query: string) => (await list(`limit=100&${query}`)).messages.map((m) => m.subject);
    const cases: [string, (s: PlainSeed) => boolean][] = [
      ['', () => true],
      ['status=unread', (s) => !s.isRead],
      ['status=read', (s) => s.isRead],
      ['since=2026-11-02', (s) => s.receivedDateTime >= '2026-11-02T00:00:00Z'],
      ['before=2026-11-02T14:00:00Z', (s) => s.receivedDateTime < '2026-11-02T14:00:00Z'],
      ['since=2026-11-02T02:00:00Z&before=2026-11-03', (s) => s.receivedDateTime >= '2026-11-02T02:00:00Z' && s.receivedDateTime < '2026-11-03T00:00:00Z'],
      ['subject=invoice', (s) => s.subject.startsWith('Invoice')],
      ['subject=INVOICE;facture', (s) => !s.subject.startsWith('Meeting')],
      ['from=billing@acme.test', (s) => s.from.address === 'billing@acme.test'],
      ['from=jane%20roe', (s) => s.from.name === 'Jane Roe'],
      ['from=acme.test;nobody', (s) => s.from.address.endsWith('acme.test')],
      ['status=unread&subject=invoice;facture&from=acme&since=2026-11-01T12:00:00Z', (s) => !s.isRead && !s.subject.startsWith('Meeting') && s.from.address.includes('acme') && s.receivedDateTime >= '2026-11-01T12:00:00Z'],
    ];
    for (const [query, pick] of cases) {
      const expected = expect(pick);
      assert.ok(query === '' || expected.length < inbox.length, `${query}: the case filters something`);
      assert.deepEqual(await subjects(query), expected, query);
    }
    const from = world.graph.requests.length;
    await subjects("subject=O'Brien&folder=Inbox/Invoices");
    const [wire] = messagesRequests(since(from));
    assert.equal(wire!.query.$filter, "receivedDateTime ge 1900-01-01T00:00:00Z and contains(subject,'O''Brien')");
    assert.equal((await list("subject=o'brien&folder=inbox/invoices")).messages.length, 1, 'quotes are escaped, names and words compared case-insensitively');

    const before = world.graph.requests.length;
    await subjects('status=unread&subject=a;b&from=c&since=2026-11-02&before=2026-11-05');
    const [req] = messagesRequests(since(before));
    assert.equal(
      req!.query.$filter,
      "receivedDateTime ge 2026-11-02T00:00:00Z and receivedDateTime lt 2026-11-05T00:00:00Z and isRead eq false and (contains(subject,'a') or contains(subject,'b')) and (contains(from/emailAddress/address,'c') or contains(from/emailAddress/name,'c'))",
    );
    assert.equal(req!.query.$orderby, 'receivedDateTime desc');
    assert.equal(req!.query.$top, '100');
    assert.equal(req!.query.$select, 'id,parentFolderId,internetMessageId,subject,from,toRecipients,ccRecipients,sentDateTime,receivedDateTime,isRead,flag,hasAttachments');
    assert.match(req!.query.$expand!, /^attachments\(\$select=id,name,contentType,size,isInline,microsoft\.graph\.fileAttachment\/contentId\),singleValueExtendedProperties\(/);
    assert.ok(world.graph.requests.every((r) => !('$search' in r.query)), '$search is never used');
  });

  test('order: newest first by default, oldest on request; 3+ pages follow @odata.nextLink', async () => {
    const newest = await all('limit=5');
    assert.deepEqual(newest.map((p) => p.length), [5, 5, 2]);
    assert.deepEqual(newest.flat().map((m) => m.subject), newestFirst(inbox));
    const from = world.graph.requests.length;
    const oldest = await all('order=oldest&limit=4');
    assert.deepEqual(oldest.map((p) => p.length), [4, 4, 4]);
    assert.deepEqual(oldest.flat().map((m) => m.subject), newestFirst(inbox).reverse());
    const wire = messagesRequests(since(from));
    assert.deepEqual(wire.map((r) => [r.query.$orderby, r.query.$skip]), [['receivedDateTime asc', undefined], ['receivedDateTime asc', '4'], ['receivedDateTime asc', '8']]);
  });

  test('pages stay correct while mail arrives: a newest-first listing is pinned to its first page', async () => {
    const mb = world.graph.mailbox(mailbox);
    const first = await list('limit=4');
    const arrived = await mb.addMessage('inbox', `From: late@acme.test\r\nTo: alice@contoso.test\r\nSubject: Arrived meanwhile\r\n\r\nlate\r\n`);
    try {
      const from = world.graph.requests.length;
      const rest: Summary[] = [];
      let cursor = first.nextCursor;
      while (cursor) {
        const page = await list(`limit=4&cursor=${cursor}`);
        rest.push(...page.messages);
        cursor = page.nextCursor;
      }
      const seen = [...first.messages, ...rest].map((m) => m.subject);
      assert.deepEqual(seen, newestFirst(inbox), 'no message twice, none missed, the new one not in this listing');
      const pinned = messagesRequests(since(from));
      assert.equal(pinned.length, 2);
      assert.ok(pinned.every((r) => r.query.$filter!.includes(`receivedDateTime le ${inbox.at(-1)!.receivedDateTime}`)), pinned[0]!.query.$filter);
      assert.equal((await list('limit=1')).messages[0]!.subject, 'Arrived meanwhile', 'the next listing has it');
    } finally {
      mb.messages.delete(arrived.immutableId);
    }
  });

  test('a cursor is opaque, URL-safe and bound to its query; one made up or changed is refused', async () => {
    const { nextCursor } = await list('limit=3&subject=invoice');
    assert.match(nextCursor!, /^[A-Za-z0-9_-]{1,4096}$/);
    assertProblem(await get(`/messages?limit=3&cursor=${nextCursor}`), 'VALIDATION_ERROR');
    assertProblem(await get(`/messages?limit=4&subject=invoice&cursor=${nextCursor}`), 'VALIDATION_ERROR');
    assertProblem(await get('/messages?cursor=bm90LWEtY3Vyc29y'), 'VALIDATION_ERROR');
    // a cursor that tries to name another mailbox's folder, or to replace our filter
    const packed = JSON.parse(inflateRawSync(Buffer.from(nextCursor!, 'base64url')).toString('utf8'));
    const forge = (change: Record<string, unknown>) => deflateRawSync(Buffer.from(JSON.stringify({ ...packed, ...change }))).toString('base64url');
    const requests = world.graph.requests.length;
    for (const forged of [
      forge({ f: '../../users/bob@contoso.test/mailFolders/inbox' }),
      forge({ f: 'https://elsewhere.test/v1.0/me/mailFolders/inbox' }),
      forge({ k: [['$filter', 'isRead eq true'], ['$skip', '3']] }),
      forge({ k: [['$skip', '-1']] }),
      forge({ k: [] }),
      forge({ v: 2 }),
    ]) {
      const problem = assertProblem(await get(`/messages?limit=3&subject=invoice&cursor=${forged}`), 'VALIDATION_ERROR');
      assert.deepEqual((problem.errors as { path: string }[]).map((e) => e.path), ['/querystring/cursor']);
    }
    assert.equal(world.graph.requests.length, requests, 'nothing was sent for a refused cursor');
  });

  test('a message: summary fields, text and HTML, decoded headers, attachments; include=text in a list', async () => {
    const page = await list('folder=INBOX/Invoices');
    assert.equal(page.messages.length, 1);
    const summary = page.messages[0]! as Summary & Record<string, unknown>;
    assert.equal(summary.folder, 'Inbox/Invoices');
    assert.deepEqual(summary.from, { name: 'Acme Billing', address: 'billing@acme.test' });
    assert.equal(summary.size, rich.mime.length, 'PR_MESSAGE_SIZE');
    assert.deepEqual([summary.flagged, summary.answered, summary.seen, summary.hasAttachments], [true, true, false, true]);
    const from = world.graph.requests.length;
    const res = await get(`/messages/${summary.id}`);
    assert.equal(res.statusCode, 200, res.body);
    const m = res.json();
    assert.equal(m.subject, "Rechnung März – O'Brien");
    assert.equal(m.receivedAt, '2026-11-20T09:30:00.000Z');
    assert.match(m.html, new RegExp(BODY_MARKERS[1]!));
    assert.match(m.text, new RegExp(BODY_MARKERS[2]!), "Graph's plain-text rendering");
    assert.deepEqual(m.cc, [{ name: 'Bob', address: 'bob@contoso.test' }]);
    assert.equal(m.inReplyTo, '<order-1@acme.test>');
    assert.deepEqual(m.references, ['<thread-0@acme.test>', '<order-1@acme.test>']);
    assert.equal(m.headers.find((h: { name: string }) => h.name === 'Subject').value, "Rechnung März – O'Brien", 'encoded words decoded');
    assert.equal(m.truncated, false);
    const byName = Object.fromEntries(m.attachments.map((a: { filename: string }) => [a.filename, a]));
    assert.deepEqual(
      { ...byName['Rechnung 2026-11.pdf'], id: undefined },
      { id: undefined, filename: 'Rechnung 2026-11.pdf', contentType: 'application/pdf', size: rich.pdf.length, inline: false, contentId: null },
    );
    assert.deepEqual([byName['logo.png'].inline, byName['logo.png'].contentId], [true, 'logo@acme.test']);
    assert.equal(byName.order.contentType, 'message/rfc822');
    assert.deepEqual(m.attachments, summary.attachments, 'the list shows the same attachments');
    const wire = since(from);
    assert.deepEqual(wire.map((r) => [r.method, r.query.$select, r.prefer]), [
      ['GET', 'id,parentFolderId,internetMessageId,subject,from,toRecipients,ccRecipients,sentDateTime,receivedDateTime,isRead,flag,hasAttachments,body,internetMessageHeaders', 'IdType="ImmutableId"'],
      ['GET', 'body', 'IdType="ImmutableId", outlook.body-content-type="text"'],
    ]);
    assert.equal(world.graph.mailbox(mailbox).find(rich.message.immutableId)!.isRead, false, 'reading changes nothing');

    const withText = await list('include=text&subject=invoice%201000');
    assert.match((withText.messages[0] as Summary & { text: string }).text, new RegExp(`${BODY_MARKERS[0]} message 0`));
    assert.match(world.graph.requests.at(-1)!.prefer!, /outlook\.body-content-type="text"/);
  });

  test('raw: the MIME source streamed byte for byte; an attachment of 3 MB byte-exact; an attached message as .eml', async () => {
    const id = encodeId(rich.message.immutableId);
    const raw = await get(`/messages/${id}/raw`);
    assert.equal(raw.statusCode, 200);
    assert.equal(raw.headers['content-type'], 'message/rfc822');
    assert.ok(raw.rawPayload.equals(rich.mime), 'the .eml is the message as stored');
    const detail = (await get(`/messages/${id}`)).json();
    const pdf = detail.attachments.find((a: { filename: string }) => a.filename === 'Rechnung 2026-11.pdf');
    const res = await get(`/messages/${id}/attachments/${pdf.id}`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/pdf');
    assert.match(String(res.headers['content-disposition']), /^attachment; filename="Rechnung 2026-11\.pdf"/);
    assert.equal(createHash('sha256').update(res.rawPayload).digest('hex'), createHash('sha256').update(rich.pdf).digest('hex'));
    const wire = world.graph.requests.at(-1)!;
    assert.match(wire.path, /\/attachments\/[^/]+\/\$value$/);
    const order = detail.attachments.find((a: { filename: string }) => a.filename === 'order');
    const eml = await get(`/messages/${id}/attachments/${order.id}`);
    assert.equal(eml.headers['content-type'], 'message/rfc822');
    assert.match(String(eml.headers['content-disposition']), /filename="order\.eml"/);
    assert.match(eml.body, /Subject: The original order/);
  });

  test('markAsRead PATCHes isRead: the mailbox shows it read', async () => {
    const target = inbox.find((s) => !s.isRead)!;
    const id = encodeId(target.message.immutableId);
    const plain = (await get(`/messages/${id}`)).json();
    assert.equal(plain.seen, false);
    assert.equal(target.message.isRead, false);
    const from = world.graph.requests.length;
    const marked = (await get(`/messages/${id}?markAsRead=true`)).json();
    assert.equal(marked.seen, true);
    assert.equal(world.graph.mailbox(mailbox).find(target.message.immutableId)!.isRead, true);
    assert.deepEqual(since(from).map((r) => r.method), ['GET', 'PATCH']);
    const again = world.graph.requests.length;
    await get(`/messages/${id}?markAsRead=true`);
    assert.ok(since(again).every((r) => r.method === 'GET'), 'a message already read is not changed again');
  });

  test('ids are immutable: a message moved to another folder keeps its id', async () => {
    const target = inbox[5]!;
    const id = encodeId(target.message.immutableId);
    const mb = world.graph.mailbox(mailbox);
    mb.move(target.message.immutableId, 'archive');
    try {
      const moved = (await get(`/messages/${id}`)).json();
      assert.equal(moved.subject, target.subject);
      assert.equal(moved.folder, 'Archive');
    } finally {
      mb.move(target.message.immutableId, 'inbox');
    }
  });

  test('MESSAGE_NOT_FOUND, ATTACHMENT_NOT_FOUND, FOLDER_NOT_FOUND: answered, and the session stays connected', async () => {
    const gone = encodeId('AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0AnotThereAAA=');
    assertProblem(await get(`/messages/${gone}`), 'MESSAGE_NOT_FOUND');
    assertProblem(await get(`/messages/${gone}/raw`), 'MESSAGE_NOT_FOUND');
    assertProblem(await get(`/messages/${gone}/attachments/${encodeId('AAkAnope=')}`), 'MESSAGE_NOT_FOUND');
    const id = encodeId(rich.message.immutableId);
    assertProblem(await get(`/messages/${id}/attachments/${encodeId('AAkAnope=')}`), 'ATTACHMENT_NOT_FOUND');
    const requests = world.graph.requests.length;
    assertProblem(await get('/messages/not-a-graph-id-because-of-this-__'), 'MESSAGE_NOT_FOUND');
    assertProblem(await get(`/messages/${id}/attachments/not.base64`), 'ATTACHMENT_NOT_FOUND');
    assert.equal(world.graph.requests.length, requests, 'an id that cannot be Graph\'s is not sent');
    for (const folder of ['Nowhere', 'Inbox/Nowhere', 'Inbox/Invoices/2026/deeper']) {
      assert.match(String(assertProblem(await get(`/messages?folder=${encodeURIComponent(folder)}`), 'FOLDER_NOT_FOUND').detail), /no folder/);
    }
    const state = (await app.inject({ method: 'GET', url: '/v1/sessions/mail' })).json();
    assert.equal(state.state, 'connected');
    assert.equal(state.lastError, null);
  });

  test('a folder deleted and made again under the same path is found again; one only deleted is FOLDER_NOT_FOUND', async () => {
    const mb = world.graph.mailbox(mailbox);
    assert.deepEqual((await list('folder=Clients/Acme')).messages, []);
    const old = mb.folder('Clients/Acme')!;
    mb.folders.delete(old.id);
    const remade = mb.addFolder(mb.folder('Clients')!.id, 'Acme');
    await mb.addMessage(remade.id, 'From: a@acme.test\r\nSubject: In the new Acme\r\n\r\nx\r\n', { receivedDateTime: '2026-11-05T00:00:00Z' });
    assert.deepEqual((await list('folder=Clients/Acme')).messages.map((m) => [m.subject, m.folder]), [['In the new Acme', 'Clients/Acme']]);
    mb.folders.delete(remade.id);
    assertProblem(await get('/messages?folder=Clients/Acme'), 'FOLDER_NOT_FOUND');
  });

  test('every request carries Prefer: IdType="ImmutableId"; no token or message body in any log line', () => {
    const mine = world.graph.requests.filter((r) => r.mailbox === mailbox);
    assert.ok(mine.length > 30);
    for (const r of mine) assert.match(r.prefer ?? '', /(^|, )IdType="ImmutableId"(,|$)/, `${r.method} ${r.path}`);
    assertNoSecrets(logs, [...world.secrets(), ...BODY_MARKERS, rich.pdf.subarray(0, 24).toString('base64')], 'log');
    assertNoSecrets(bodies, world.secrets(), 'response body');
  });
});
