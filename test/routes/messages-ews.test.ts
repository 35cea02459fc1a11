import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { build, type TestApp } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { compose } from '../harness/compose.js';
import { USERS, assertNoSecrets, startEwsWorld, type EwsWorld } from '../harness/ews-world.js';
import { all, attr, first, parseSoap, textOf } from '../harness/fake-ews-mail.js';
import type { FakeMailbox, FakeMessage } from '../harness/fake-ews-store.js';
import { encodeId } from '../../src/domain/mail.js';

/** Reading mail through EWS sessions, over HTTP, against the fake EWS and its real SOAP. */
describe('EWS sessions: reading mail', () => {
  let world: EwsWorld;
  let box: FakeMailbox;
  let app: TestApp['app'];
  let logs: string[];
  /** Text that is only in message bodies and attachments: must never reach a log line. */
  const BODY_MARKER = `body-marker-${randomBytes(6).toString('hex')}`;
  const pdf = randomBytes(300_000);
  const base = Date.UTC(2026, 2, 1, 8, 0, 0);
  let rich: FakeMessage;
  let htmlOnly: FakeMessage;
  let forwarded: FakeMessage;
  const seeded: FakeMessage[] = [];
  const closers: (() => Promise<void>)[] = [];

  const pdfOf = (detail: { attachments: { id: string; filename: string }[] }) => detail.attachments.find((a) => a.filename.endsWith('.pdf'))!;
  const get = (url: string) => app.inject({ method: 'GET', url: `/v1/sessions/ews-read${url}` });
  /** The SOAP bodies the library sent since `from`, parsed. */
  const sent = (from: number, operation?: string) =>
    world.ews.requests.slice(from).map((r) => ({ record: r, soap: parseSoap(r.body) })).filter((r) => r.soap && (!operation || r.soap.operation === operation));

  before(async () => {
    world = await startEwsWorld();
    box = world.ews.store(USERS.alice.name);
    const senders = ['Bob Billing <billing@vendor.test>', 'Carol <carol@contoso.test>', 'Dan Reports <reports@metrics.test>'];
    const subjects = ['Invoice 1001', 'Weekly report', 'Lunch?', 'INVOICE 1002 overdue', 'Report Q1', 'Hello'];
    for (let i = 0; i < 12; i += 1) {
      const mime = await compose({ from: senders[i % 3], to: USERS.alice.name, subject: subjects[i % subjects.length], text: `message ${i} ${BODY_MARKER}` });
      seeded.push(await box.addMessage('inbox', mime, { received: base + i * 3_600_000 + 250, isRead: i % 4 === 0, flagged: i === 5, answered: i === 7 }));
    }
    rich = await box.addMessage(
      'inbox',
      await compose({
        from: '"Zoë Sender" <zoe@example.test>',
        to: [USERS.alice.name, 'Team <team@contoso.test>'],
        cc: 'cc@contoso.test',
        subject: 'Rechnung März 2026',
        messageId: '<rich-1@example.test>',
        inReplyTo: '<parent@example.test>',
        references: ['<root@example.test>', '<parent@example.test>'],
        text: `Plain part ${BODY_MARKER}`,
        html: `<p>HTML part ${BODY_MARKER}</p><img src="cid:logo@example.test">`,
        attachments: [
          { filename: 'Rechnung März.pdf', content: pdf, contentType: 'application/pdf' },
          { filename: 'logo.png', content: randomBytes(500), contentType: 'image/png', cid: 'logo@example.test' },
        ],
      }),
      { received: base + 20 * 3_600_000 },
    );
    htmlOnly = await box.addMessage('inbox', await compose({ from: 'html@example.test', to: USERS.alice.name, subject: 'HTML only', html: `<h1>Title</h1><p>Only HTML ${BODY_MARKER}</p>` }), { received: base + 21 * 3_600_000 });
    const inner = await compose({ from: 'inner@example.test', to: 'x@example.test', subject: 'The original', text: `inner ${BODY_MARKER}` });
    forwarded = await box.addMessage(
      'inbox',
      await compose({ from: 'fwd@example.test', to: USERS.alice.name, subject: 'Fwd: The original', text: 'see attached', attachments: [{ filename: 'original.eml', content: inner, contentType: 'message/rfc822' }] }),
      { received: base + 22 * 3_600_000 },
    );
    const invoices = box.addFolder('inbox', 'Invoices');
    await box.addMessage(invoices, await compose({ from: 'billing@vendor.test', to: USERS.alice.name, subject: 'Filed invoice', text: 'filed' }), { received: base });
    const projects = box.addFolder('msgfolderroot', 'Projects');
    box.addFolder(projects, 'Q1/Q2');

    ({ app, logs } = await build({ after: (fn) => void closers.push(fn as () => Promise<void>) }, world.env));
    const created = await app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { name: 'ews-read', type: 'ews', url: world.ews.url, username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'basic' } },
    });
    assert.equal(created.statusCode, 201, created.body);
  });
  after(async () => {
    for (const close of closers) await close();
    await world?.close();
  });

  test('folders: paths from the root, well-known folders with their special use, no calendar or contacts', async () => {
    const from = world.ews.requests.length;
    const res = await get('/folders');
    assert.equal(res.statusCode, 200, res.body);
    const folders = res.json().folders as { path: string; name: string; delimiter: string; specialUse: string | null }[];
    const byPath = new Map(folders.map((f) => [f.path, f]));
    for (const [path, use] of [['Inbox', 'inbox'], ['Sent Items', 'sent'], ['Drafts', 'drafts'], ['Deleted Items', 'trash'], ['Junk Email', 'junk'], ['Archive', 'archive'], ['Outbox', null]] as const) {
      assert.equal(byPath.get(path)?.specialUse, use, `${path}: ${res.body}`);
    }
    assert.deepEqual(byPath.get('Inbox/Invoices'), { path: 'Inbox/Invoices', name: 'Invoices', delimiter: '/', specialUse: null });
    assert.deepEqual(byPath.get('Projects/Q1\\/Q2'), { path: 'Projects/Q1\\/Q2', name: 'Q1/Q2', delimiter: '/', specialUse: null }, 'a "/" in a display name is escaped');
    assert.ok(!byPath.has('Calendar') && !byPath.has('Contacts'), 'only mail folders');
    const find = sent(from, 'FindFolder').at(-1)!.soap!.node;
    assert.equal(attr(find, 'Traversal'), 'Deep');
    assert.equal(attr(first(first(find, 'ParentFolderIds'), 'DistinguishedFolderId'), 'Id'), 'msgfolderroot');
    // the escaped path reaches the folder again (it holds nothing)
    const q = await get(`/messages?folder=${encodeURIComponent('Projects/Q1\\/Q2')}`);
    assert.equal(q.statusCode, 200, q.body);
    assert.deepEqual(q.json(), { messages: [], nextCursor: null });
  });

  test('list: newest first, every summary field, ids URL-safe; the wire asks FindItem for a page, then one GetItem', async () => {
    const from = world.ews.requests.length;
    const res = await get('/messages?limit=5');
    assert.equal(res.statusCode, 200, res.body);
    const page = res.json() as { messages: Record<string, unknown>[]; nextCursor: string | null };
    const expected = [...box.messages].filter((m) => m.folderId === box.folder('inbox').id).sort((a, b) => b.receivedMs - a.receivedMs).slice(0, 5);
    assert.deepEqual(page.messages.map((m) => m.subject), expected.map((m) => m.subject));
    assert.ok(page.nextCursor && /^[A-Za-z0-9_.~-]+$/.test(page.nextCursor));
    for (const m of page.messages) assert.match(String(m.id), /^[A-Za-z0-9_-]+$/, 'no "/", "+" or "=" in an id');

    const r = page.messages.find((m) => m.subject === 'Rechnung März 2026')!;
    assert.equal(r.id, encodeId(rich.id));
    assert.equal(r.folder, 'Inbox');
    assert.equal(r.messageId, '<rich-1@example.test>');
    assert.deepEqual(r.from, { name: 'Zoë Sender', address: 'zoe@example.test' });
    assert.deepEqual(r.to, [{ name: null, address: USERS.alice.name }, { name: 'Team', address: 'team@contoso.test' }]);
    assert.deepEqual(r.cc, [{ name: null, address: 'cc@contoso.test' }]);
    assert.equal(r.receivedAt, new Date(rich.receivedMs).toISOString());
    assert.equal(r.size, rich.mime.length);
    assert.equal(r.seen, false);
    assert.equal(r.hasAttachments, true);
    const atts = r.attachments as { filename: string; contentType: string; size: number; inline: boolean; contentId: string | null }[];
    assert.deepEqual(atts.map((a) => [a.filename, a.contentType, a.size, a.inline, a.contentId]).sort(), [
      ['Rechnung März.pdf', 'application/pdf', pdf.length, false, null],
      ['logo.png', 'image/png', 500, true, 'logo@example.test'],
    ].sort());
    const flags = await get('/messages?limit=50');
    const bySubjectIndex = (i: number) => (flags.json().messages as Record<string, unknown>[]).find((m) => m.id === encodeId(seeded[i]!.id))!;
    assert.equal(bySubjectIndex(5).flagged, true);
    assert.equal(bySubjectIndex(6).flagged, false);
    assert.equal(bySubjectIndex(7).answered, true);
    assert.equal(bySubjectIndex(4).seen, true);

    const find = sent(from, 'FindItem')[0]!.soap!.node;
    const view = first(find, 'IndexedPageItemView');
    assert.equal(attr(view, 'MaxEntriesReturned'), '5');
    assert.equal(attr(view, 'Offset'), '0');
    const order = first(first(find, 'SortOrder'), 'FieldOrder');
    assert.equal(attr(order, 'Order'), 'Descending');
    assert.equal(attr(first(order, 'FieldURI'), 'FieldURI'), 'item:DateTimeReceived');
    assert.equal(first(find, 'Restriction'), undefined, 'no filter, no restriction');
    const getItem = sent(from, 'GetItem')[0]!.soap!.node;
    assert.equal(all(first(getItem, 'ItemIds'), 'ItemId').length, 5, 'one GetItem for the page');

    const oldest = await get('/messages?limit=3&order=oldest');
    assert.deepEqual(oldest.json().messages.map((m: { id: string }) => m.id), seeded.slice(0, 3).map((m) => encodeId(m.id)));
  });

  test('filters: subject and sender alternatives, status, since/before; each is in the FindItem restriction', async () => {
    const inbox = () => box.messages.filter((m) => m.folderId === box.folder('inbox').id);
    const check = async (query: string, want: (m: FakeMessage) => boolean, wire: (restriction: string) => void) => {
      const from = world.ews.requests.length;
      const res = await get(`/messages?limit=100&${query}`);
      assert.equal(res.statusCode, 200, `${query}: ${res.body}`);
      const got = (res.json().messages as { id: string }[]).map((m) => m.id).sort();
      const expected = inbox().filter(want).map((m) => encodeId(m.id)).sort();
      assert.ok(expected.length > 0 && expected.length < inbox().length, `${query}: the seed must make the filter matter`);
      assert.deepEqual(got, expected, query);
      wire(sent(from, 'FindItem')[0]!.record.body);
    };
    await check('subject=invoice;%20report', (m) => /invoice|report/i.test(m.subject), (xml) => {
      assert.match(xml, /<t:Or><t:Contains ContainmentMode="Substring" ContainmentComparison="IgnoreCase"><t:FieldURI FieldURI="item:Subject"><\/t:FieldURI><t:Constant Value="invoice"><\/t:Constant><\/t:Contains><t:Contains [^>]*><t:FieldURI FieldURI="item:Subject"><\/t:FieldURI><t:Constant Value="report">/);
    });
    await check('from=billing', (m) => /billing/i.test(`${m.from?.name} ${m.from?.address}`), (xml) => {
      for (const tag of ['66', '101', '23810']) assert.match(xml, new RegExp(`<t:ExtendedFieldURI PropertyTag="${tag}" PropertyType="String"></t:ExtendedFieldURI><t:Constant Value="billing">`));
    });
    await check('from=Reports%20;%20zoe@', (m) => /reports|zoe@/i.test(`${m.from?.name} ${m.from?.address}`), () => {});
    await check('status=unread', (m) => !m.isRead, (xml) => assert.match(xml, /<t:IsEqualTo><t:FieldURI FieldURI="message:IsRead"><\/t:FieldURI><t:FieldURIOrConstant><t:Constant Value="false">/));
    await check('status=read', (m) => m.isRead, (xml) => assert.match(xml, /<t:Constant Value="true">/));
    const since = new Date(base + 5 * 3_600_000).toISOString();
    const beforeAt = new Date(base + 9 * 3_600_000).toISOString();
    await check(`since=${since}&before=${beforeAt}`, (m) => m.receivedMs >= Date.parse(since) && m.receivedMs < Date.parse(beforeAt), (xml) => {
      assert.match(xml, new RegExp(`<t:IsGreaterThanOrEqualTo><t:FieldURI FieldURI="item:DateTimeReceived"></t:FieldURI><t:FieldURIOrConstant><t:Constant Value="${since}">`));
      assert.match(xml, new RegExp(`<t:IsLessThan><t:FieldURI FieldURI="item:DateTimeReceived"></t:FieldURI><t:FieldURIOrConstant><t:Constant Value="${beforeAt}">`));
    });
    await check('since=2026-03-01&subject=invoice&status=unread', (m) => /invoice/i.test(m.subject) && !m.isRead && m.receivedMs >= Date.UTC(2026, 2, 1), (xml) => assert.match(xml, /<m:Restriction><t:And>/));
  });

  test('pages: 3+ pages stay exact while mail arrives, also within one second whose order Exchange shuffles', async () => {
    const folder = box.addFolder('inbox', 'Paging');
    const t0 = Date.UTC(2026, 4, 1, 12, 0, 0);
    // 6 messages spread out, then 9 received within one second (the fake orders those differently on every request)
    for (let i = 0; i < 6; i += 1) await box.addMessage(folder, await compose({ from: 'p@example.test', to: USERS.alice.name, subject: `spread ${i}`, text: 'x' }), { received: t0 + i * 60_000 });
    for (let i = 0; i < 9; i += 1) await box.addMessage(folder, await compose({ from: 'p@example.test', to: USERS.alice.name, subject: `tie ${i}`, text: 'x' }), { received: t0 - 3_600_000 + i * 97 });
    const present = () => box.messages.filter((m) => m.folderId === folder.id);
    const initial = present().map((m) => encodeId(m.id));

    for (const order of ['newest', 'oldest'] as const) {
      const seen: string[] = [];
      const arrived: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const from = world.ews.requests.length;
        const res = await get(`/messages?folder=Inbox/Paging&limit=4&order=${order}${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(res.statusCode, 200, res.body);
        const page = res.json() as { messages: { id: string; receivedAt: string }[]; nextCursor: string | null };
        const times = page.messages.map((m) => Date.parse(m.receivedAt));
        assert.deepEqual(times, [...times].sort((a, b) => (order === 'newest' ? b - a : a - b)), 'ordered by date received');
        seen.push(...page.messages.map((m) => m.id));
        if (cursor) {
          const view = first(sent(from, 'FindItem')[0]!.soap!.node, 'IndexedPageItemView');
          assert.ok(Number(attr(view, 'MaxEntriesReturned')) >= 4, 'asks for the page plus what it must skip');
        }
        cursor = page.nextCursor;
        pages += 1;
        // new mail arrives between pages: now, newer than anything listed
        if (cursor && pages <= 2) {
          const m = await box.addMessage(folder, await compose({ from: 'new@example.test', to: USERS.alice.name, subject: `arrived ${order} ${pages}`, text: 'x' }));
          arrived.push(encodeId(m.id));
        }
      } while (cursor && pages < 20);
      assert.ok(pages >= 4, `${order}: ${pages} pages`);
      assert.equal(new Set(seen).size, seen.length, `${order}: no message twice`);
      for (const id of initial) assert.ok(seen.includes(id), `${order}: no message skipped`);
      // newest first: what arrived after the walk began is newer than its start, so it is not in this walk;
      // oldest first: it comes at the end
      for (const id of arrived) assert.equal(seen.includes(id), order === 'oldest', `${order}: a message that arrived during the walk`);
      for (const id of arrived) box.messages.splice(box.messages.findIndex((m) => encodeId(m.id) === id), 1);
    }
  });

  test('XML\'s own characters in a filter and a folder path reach Exchange escaped (the library writes strings as they are)', async () => {
    const folder = box.addFolder('inbox', 'R&D <team>');
    const subject = `R&D "Q1" <draft> it's`;
    const m = await box.addMessage(folder, await compose({ from: 'rd@example.test', to: USERS.alice.name, subject, text: 'x' }));
    await box.addMessage(folder, await compose({ from: 'rd@example.test', to: USERS.alice.name, subject: 'R and D', text: 'x' }));
    const from = world.ews.requests.length;
    const res = await get(`/messages?folder=${encodeURIComponent('Inbox/R&D <team>')}&subject=${encodeURIComponent('R&D "Q1" <draft> it\'s')}`);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().messages.map((x: { id: string; subject: string; folder: string }) => [x.id, x.subject, x.folder]), [[encodeId(m.id), subject, 'Inbox/R&D <team>']]);
    assert.match(sent(from, 'FindItem')[0]!.record.body, /<t:Constant Value="R&amp;D &quot;Q1&quot; &lt;draft&gt; it&apos;s">/);
    assert.match(sent(from, 'FindFolder').map((f) => f.record.body).join(''), /<t:Constant Value="R&amp;D &lt;team&gt;">/);
  });

  test('a cursor only continues its own list; garbage is VALIDATION_ERROR', async () => {
    const first = await get('/messages?limit=2');
    const cursor = first.json().nextCursor as string;
    assertProblem(await get(`/messages?limit=2&status=unread&cursor=${cursor}`), 'VALIDATION_ERROR');
    assertProblem(await get('/messages?cursor=not-a-cursor'), 'VALIDATION_ERROR');
    assertProblem(await get('/messages?cursor=e1.AAAAAAAAAAAA.1.0.abc'), 'VALIDATION_ERROR');
    const next = await get(`/messages?limit=2&cursor=${cursor}`);
    assert.equal(next.statusCode, 200, 'a different page size is fine');
  });

  test('get: text, html, decoded headers, attachments, threading; reading changes nothing', async () => {
    const from = world.ews.requests.length;
    const res = await get(`/messages/${encodeId(rich.id)}`);
    assert.equal(res.statusCode, 200, res.body);
    const m = res.json();
    assert.equal(m.text.trim(), `Plain part ${BODY_MARKER}`);
    assert.match(m.html, new RegExp(`<p>HTML part ${BODY_MARKER}</p>`));
    assert.equal(m.headers.find((h: { name: string }) => h.name === 'Subject').value, 'Rechnung März 2026', 'encoded words decoded');
    assert.ok(rich.headers.some((h) => h.name === 'Subject' && /=\?/.test(h.value)), 'the fake sent the header encoded, as Exchange does');
    assert.equal(m.inReplyTo, '<parent@example.test>');
    assert.deepEqual(m.references, ['<root@example.test>', '<parent@example.test>']);
    assert.equal(m.truncated, false);
    assert.equal(m.folder, 'Inbox');
    assert.equal(m.attachments.length, 2);
    assert.equal(m.seen, false);
    assert.equal(rich.isRead, false, 'GetItem does not mark read');
    const getItem = sent(from, 'GetItem')[0]!.soap!.node;
    const fields = all(first(first(getItem, 'ItemShape'), 'AdditionalProperties'), 'FieldURI').map((f) => attr(f, 'FieldURI'));
    for (const f of ['item:Body', 'item:TextBody', 'item:InternetMessageHeaders', 'item:Attachments']) assert.ok(fields.includes(f), f);
    assert.equal(textOf(first(first(getItem, 'ItemShape'), 'MaximumBodySize')), String(25 * 1024));
    assert.equal(sent(from, 'UpdateItem').length, 0);

    const h = (await get(`/messages/${encodeId(htmlOnly.id)}`)).json();
    assert.match(h.html, /<h1>Title<\/h1>/);
    assert.match(h.text, new RegExp(`Only HTML ${BODY_MARKER}`), 'text derived from the HTML');

    const sub = await get('/messages?folder=INBOX%2FInvoices');
    const filed = sub.json().messages[0];
    assert.equal(filed.folder, 'Inbox/Invoices');
    assert.equal((await get(`/messages/${filed.id}`)).json().folder, 'Inbox/Invoices', 'the folder path of a message, walked up from its parent');
  });

  test('markAsRead=true sets IsRead with UpdateItem (no read receipt), and the fake holds it', async () => {
    const target = seeded[1]!;
    assert.equal(target.isRead, false);
    const from = world.ews.requests.length;
    const res = await get(`/messages/${encodeId(target.id)}?markAsRead=true`);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().seen, true);
    assert.equal(target.isRead, true, 'the server state changed');
    const update = sent(from, 'UpdateItem')[0]!.soap!.node;
    assert.equal(attr(update, 'SuppressReadReceipts'), 'true');
    const set = first(first(first(first(update, 'ItemChanges'), 'ItemChange'), 'Updates'), 'SetItemField');
    assert.equal(attr(first(set, 'FieldURI'), 'FieldURI'), 'message:IsRead');
    assert.equal(textOf(first(first(set, 'Message'), 'IsRead')), 'true');
    const again = world.ews.requests.length;
    await get(`/messages/${encodeId(target.id)}?markAsRead=true`);
    assert.equal(sent(again, 'UpdateItem').length, 0, 'already read: nothing to update');
  });

  test('raw: the MIME content, byte for byte, as message/rfc822 named after the subject', async () => {
    const res = await get(`/messages/${encodeId(rich.id)}/raw`);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], 'message/rfc822');
    assert.match(String(res.headers['content-disposition']), /^attachment; filename="Rechnung M_rz 2026\.eml"; filename\*=UTF-8''Rechnung%20M%C3%A4rz%202026\.eml$/);
    assert.equal(Number(res.headers['content-length']), rich.mime.length);
    assert.ok(res.rawPayload.equals(rich.mime));
  });

  test('attachments: a file byte for byte, an attached message as its MIME', async () => {
    const detail = (await get(`/messages/${encodeId(rich.id)}`)).json();
    const file = await get(`/messages/${encodeId(rich.id)}/attachments/${pdfOf(detail).id}`);
    assert.equal(file.statusCode, 200, file.body);
    assert.equal(file.headers['content-type'], 'application/pdf');
    assert.match(String(file.headers['content-disposition']), /filename\*=UTF-8''Rechnung%20M%C3%A4rz\.pdf/);
    assert.ok(file.rawPayload.equals(pdf), 'byte-exact');

    const fwd = (await get(`/messages/${encodeId(forwarded.id)}`)).json();
    const item = fwd.attachments[0];
    assert.equal(item.contentType, 'message/rfc822');
    const mime = await get(`/messages/${encodeId(forwarded.id)}/attachments/${item.id}`);
    assert.equal(mime.statusCode, 200, mime.body);
    assert.ok(mime.rawPayload.equals(forwarded.attachments[0]!.content));
  });

  test('ids and folders that do not resolve: MESSAGE_NOT_FOUND, ATTACHMENT_NOT_FOUND, FOLDER_NOT_FOUND; the session stays', async () => {
    const gone = await box.addMessage('inbox', await compose({ from: 'x@example.test', to: USERS.alice.name, subject: 'gone', text: 'x' }), { received: base - 1000 });
    box.messages.splice(box.messages.indexOf(gone), 1);
    const from = world.ews.requests.length;
    for (const suffix of ['', '/raw', '?markAsRead=true']) assertProblem(await get(`/messages/${encodeId(gone.id)}${suffix}`), 'MESSAGE_NOT_FOUND');
    const answers = sent(from, 'GetItem');
    assert.ok(answers.length >= 3);
    for (const a of answers) {
      assert.equal(a.record.status, 200, 'Exchange answers item errors inside an HTTP 200');
    }
    // base64 the service made, but not an id the server knows the shape of: ErrorInvalidIdMalformed
    assertProblem(await get(`/messages/${encodeId('ZZZZ')}`), 'MESSAGE_NOT_FOUND');
    // not even base64 inside: refused before any request
    const before = world.ews.requests.length;
    assertProblem(await get(`/messages/${encodeId('no!such*id')}`), 'MESSAGE_NOT_FOUND');
    assert.equal(world.ews.requests.length, before);

    const detail = (await get(`/messages/${encodeId(rich.id)}`)).json();
    assertProblem(await get(`/messages/${encodeId(rich.id)}/attachments/${encodeId('AAMkAGAnot+there=')}`), 'ATTACHMENT_NOT_FOUND');
    assertProblem(await get(`/messages/${encodeId(gone.id)}/attachments/${detail.attachments[0].id}`), 'MESSAGE_NOT_FOUND');

    for (const folder of ['Nope', 'Inbox/Nope', 'Projects//x', 'Projects\\']) assertProblem(await get(`/messages?folder=${encodeURIComponent(folder)}`), 'FOLDER_NOT_FOUND');

    // a folder deleted between two pages
    const doomed = box.addFolder('msgfolderroot', 'Doomed');
    for (let i = 0; i < 3; i += 1) await box.addMessage(doomed, await compose({ from: 'x@example.test', to: USERS.alice.name, subject: `d${i}`, text: 'x' }));
    const p1 = await get('/messages?folder=Doomed&limit=2');
    assert.equal(p1.statusCode, 200, p1.body);
    box.folders.splice(box.folders.indexOf(doomed), 1);
    assertProblem(await get(`/messages?folder=Doomed&limit=2&cursor=${p1.json().nextCursor}`), 'FOLDER_NOT_FOUND');

    const inspect = await app.inject({ method: 'GET', url: '/v1/sessions/ews-read' });
    assert.equal(inspect.json().state, 'connected', 'item-level answers do not make the session reconnect');
  });

  test('a localized mailbox: the well-known paths stay English, display names are shown as they are', async (t) => {
    const carol = world.ews.store(USERS.carol.name);
    carol.folder('inbox').name = 'Posteingang';
    carol.folder('sentitems').name = 'Gesendete Elemente';
    await carol.addMessage('inbox', await compose({ from: 'x@example.test', to: USERS.carol.name, subject: 'Hallo', text: 'x' }));
    const built = await build(t, world.env);
    logs.push(...built.logs);
    const created = await built.app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'de', type: 'ews', url: world.ews.url, username: USERS.carol.name, password: USERS.carol.password, auth: { type: 'basic' } } });
    assert.equal(created.statusCode, 201, created.body);
    const folders = (await built.app.inject({ method: 'GET', url: '/v1/sessions/de/folders' })).json().folders as { path: string; name: string; specialUse: string }[];
    assert.deepEqual(folders.find((f) => f.specialUse === 'inbox'), { path: 'Inbox', name: 'Posteingang', delimiter: '/', specialUse: 'inbox' });
    assert.equal(folders.find((f) => f.specialUse === 'sent')?.path, 'Sent Items');
    for (const folder of ['INBOX', 'inbox', 'Posteingang']) {
      const res = await built.app.inject({ method: 'GET', url: `/v1/sessions/de/messages?folder=${folder}` });
      assert.equal(res.statusCode, 200, `${folder}: ${res.body}`);
      assert.deepEqual(res.json().messages.map((m: { subject: string; folder: string }) => [m.subject, m.folder]), [['Hallo', 'Inbox']], folder);
    }
  });

  test('include=text adds each message\'s text (TextBody, cut at MaximumBodySize)', async () => {
    const from = world.ews.requests.length;
    const res = await get('/messages?limit=3&include=text');
    assert.equal(res.statusCode, 200, res.body);
    const byId = new Map(box.messages.map((m) => [encodeId(m.id), m]));
    for (const m of res.json().messages as { id: string; text: string }[]) assert.equal(m.text, byId.get(m.id)!.text, 'the text body');
    const shape = first(sent(from, 'GetItem')[0]!.soap!.node, 'ItemShape');
    assert.ok(all(first(shape, 'AdditionalProperties'), 'FieldURI').some((f) => attr(f, 'FieldURI') === 'item:TextBody'));
    assert.equal(textOf(first(shape, 'MaximumBodySize')), String(25 * 1024));
    const plain = await get('/messages?limit=1');
    assert.equal('text' in plain.json().messages[0], false, 'no text unless asked');
  });

  test('Exchange 2010: no TextBody or MaximumBodySize (the library refuses them); the text comes from a second GetItem', async (t) => {
    const old = await build(t, world.env);
    logs.push(...old.logs);
    const created = await old.app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { name: 'e2010', type: 'ews', url: world.ews.url, username: USERS.alice.name, password: USERS.alice.password, exchangeVersion: 'Exchange2010_SP2', auth: { type: 'basic' } },
    });
    assert.equal(created.statusCode, 201, created.body);
    const from = world.ews.requests.length;
    const res = await old.app.inject({ method: 'GET', url: `/v1/sessions/e2010/messages/${encodeId(htmlOnly.id)}` });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(res.json().html, /<h1>Title<\/h1>/);
    assert.match(res.json().text, new RegExp(`Only HTML ${BODY_MARKER}`));
    const gets = sent(from, 'GetItem').map((g) => first(g.soap!.node, 'ItemShape'));
    assert.ok(gets.every((shape) => !all(first(shape, 'AdditionalProperties'), 'FieldURI').some((f) => attr(f, 'FieldURI') === 'item:TextBody')));
    assert.ok(gets.every((shape) => first(shape, 'MaximumBodySize') === undefined));
    assert.ok(gets.some((shape) => textOf(first(shape, 'BodyType')) === 'Text'), 'asked for the body as text');
    const unread = seeded.find((m) => !m.isRead)!;
    const mark = world.ews.requests.length;
    const marked = await old.app.inject({ method: 'GET', url: `/v1/sessions/e2010/messages/${encodeId(unread.id)}?markAsRead=true` });
    assert.equal(marked.statusCode, 200, marked.body);
    assert.equal(unread.isRead, true);
    assert.equal(attr(sent(mark, 'UpdateItem')[0]!.soap!.node, 'SuppressReadReceipts'), undefined);
  });

  test('downloads above MSB_EWS_MAX_DOWNLOAD_BYTES are DOWNLOAD_TOO_LARGE before a byte moves', async (t) => {
    const small = await build(t, { ...world.env, MSB_EWS_MAX_DOWNLOAD_BYTES: '100000' });
    logs.push(...small.logs);
    const created = await small.app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'small', type: 'ews', url: world.ews.url, username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'basic' } } });
    assert.equal(created.statusCode, 201, created.body);
    const detail = (await small.app.inject({ method: 'GET', url: `/v1/sessions/small/messages/${encodeId(rich.id)}` })).json();
    const from = world.ews.requests.length;
    assertProblem(await small.app.inject({ method: 'GET', url: `/v1/sessions/small/messages/${encodeId(rich.id)}/attachments/${pdfOf(detail).id}` }), 'DOWNLOAD_TOO_LARGE');
    assertProblem(await small.app.inject({ method: 'GET', url: `/v1/sessions/small/messages/${encodeId(rich.id)}/raw` }), 'DOWNLOAD_TOO_LARGE');
    assert.equal(sent(from, 'GetAttachment').length, 0, 'the attachment was never fetched');
    const logo = detail.attachments.find((a: { filename: string }) => a.filename === 'logo.png');
    const small2 = await small.app.inject({ method: 'GET', url: `/v1/sessions/small/messages/${encodeId(rich.id)}/attachments/${logo.id}` });
    assert.equal(small2.statusCode, 200, 'a small one still downloads');
  });

  test('hostile answers to mail operations: problem+json, no crash, no hang; the session keeps working', async () => {
    const envelopeStart = '<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:FindItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"';
    const cases: { name: string; status: number; body: string }[] = [
      { name: 'empty 200', status: 200, body: '' },
      { name: 'truncated XML', status: 200, body: envelopeStart },
      { name: 'not XML', status: 200, body: 'Service Unavailable' },
      { name: 'HTML 500', status: 500, body: '<html><body><h1>Server Error</h1></body></html>' },
      // these two ended the process before the guarded transport (an unhandled rejection in the library)
      { name: 'empty 500', status: 500, body: '' },
      { name: 'plain-text 500', status: 500, body: 'oops' },
      { name: 'truncated 500', status: 500, body: envelopeStart },
      { name: 'HTML 502 from a proxy', status: 502, body: '<html><body>Bad gateway</body></html>' },
      {
        name: 'ResponseClass="Error" with an unexpected code',
        status: 200,
        body: `${envelopeStart}><m:ResponseMessages><m:FindItemResponseMessage ResponseClass="Error"><m:MessageText>busy</m:MessageText><m:ResponseCode>ErrorServerBusy</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:FindItemResponseMessage></m:ResponseMessages></m:FindItemResponse></s:Body></s:Envelope>`,
      },
    ];
    for (const c of cases) {
      world.ews.mailHostility = { operation: 'FindItem', status: c.status, body: c.body };
      try {
        const res = await get('/messages');
        assert.ok(res.statusCode >= 400 && res.statusCode !== 500, `${c.name}: ${res.statusCode} ${res.body}`);
        assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8', c.name);
        assert.match(res.json().code, /^MAIL_/, c.name);
      } finally {
        world.ews.mailHostility = undefined;
      }
    }
    const ok = await get('/messages?limit=1');
    assert.equal(ok.statusCode, 200, ok.body);
  });

  test('no password, token or message content in any log line', () => {
    assertNoSecrets(logs, [...world.secrets(), BODY_MARKER, pdf.subarray(0, 24).toString('base64'), 'Rechnung M'], 'logs');
  });
});
