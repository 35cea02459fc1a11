import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test, type TestContext } from 'node:test';
import { decodeMessageId } from '../../src/connectors/imap/ids.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { compose, flagsOf, imapPeer } from '../harness/mail.js';

/**
 * The read routes on IMAP sessions against Dovecot, through HTTP (app.inject), with a second, independent
 * imapflow client seeding folders (APPEND with chosen INTERNALDATEs and flags) and checking flags.
 */

const users: Record<string, string> = Object.fromEntries(
  ['folders', 'filters', 'pages', 'uidvalidity', 'seen', 'big', 'detail', 'hostile', 'logs'].map((u) => [`${u}@example.test`, `${u}-Secret-1`]),
);
const SPECIAL = { 'Bot Outbox': '\\Sent', Papierkorb: '\\Trash', 'Old Stuff': '\\Archive' };

interface Summary {
  id: string;
  folder: string;
  subject: string | null;
  from: { name: string | null; address: string | null } | null;
  receivedAt: string | null;
  seen: boolean | null;
  hasAttachments: boolean;
  attachments: { id: string; filename: string | null; contentType: string; size: number | null; inline: boolean; contentId: string | null }[];
  text?: string | null;
}

describe('reading mail over IMAP (Dovecot), through the HTTP API', () => {
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot({ users, specialUse: SPECIAL });
  });
  after(async () => {
    await dovecot?.close();
  });

  /** The app with an imap session `s` for `user`, and a peer client for the same mailbox. */
  async function setup(t: TestContext, user: string, env: Record<string, string> = {}) {
    const built = await build(t, env);
    const res = await built.app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { name: 's', type: 'imap', host: '127.0.0.1', port: dovecot.ports.imaps, username: `${user}@example.test`, password: users[`${user}@example.test`], tls: { ca: dovecot.caPem } },
    });
    assert.equal(res.statusCode, 201, res.body);
    const peer = await imapPeer({ host: '127.0.0.1', port: dovecot.ports.imaps, secure: true, user: `${user}@example.test`, pass: users[`${user}@example.test`]!, ca: dovecot.caPem });
    t.after(() => peer.logout().catch(() => undefined));
    const get = async (url: string) => {
      const r = await built.app.inject({ method: 'GET', url: `/v1/sessions/s${url}` });
      assert.equal(r.statusCode, 200, `${url}: ${r.body}`);
      return r.json();
    };
    /** Every page of a list, following nextCursor. */
    const all = async (query: string, between?: (page: number) => Promise<void>): Promise<Summary[][]> => {
      const pages: Summary[][] = [];
      let cursor: string | null = null;
      do {
        const page: { messages: Summary[]; nextCursor: string | null } = await get(`/messages?${query}${cursor ? `&cursor=${cursor}` : ''}`);
        pages.push(page.messages);
        cursor = page.nextCursor;
        if (cursor && between) await between(pages.length);
        assert.ok(pages.length < 100, 'pagination ends');
      } while (cursor);
      return pages;
    };
    return { ...built, peer, get, all };
  }

  const message = (subject: string, from = 'Sender <sender@example.test>', text = `body of ${subject}`) =>
    compose({ from, to: 'bot@example.test', subject, text, messageId: `<${subject.replace(/[^A-Za-z0-9]/g, '-')}@example.test>` });

  test('folders: the server\'s delimiter and special-use, unicode names decoded; FOLDER_NOT_FOUND', async (t) => {
    const { app, peer, get } = await setup(t, 'folders');
    await peer.mailboxCreate('Rechnungen März ✓');
    await peer.mailboxCreate(['Archiv', '2026']);
    await peer.append('Rechnungen März ✓', await message('in a unicode folder'));
    const { folders } = await get('/folders');
    const byPath = Object.fromEntries(folders.map((f: { path: string }) => [f.path, f]));
    assert.deepEqual(byPath.INBOX, { path: 'INBOX', name: 'INBOX', delimiter: '.', specialUse: 'inbox' });
    assert.equal(folders[0].path, 'INBOX', 'INBOX first');
    // the roles come from the server (SPECIAL-USE): these names are no well-known ones
    assert.equal(byPath['Bot Outbox']?.specialUse, 'sent');
    assert.equal(byPath.Papierkorb?.specialUse, 'trash');
    assert.equal(byPath['Old Stuff']?.specialUse, 'archive');
    assert.deepEqual(byPath['Rechnungen März ✓'], { path: 'Rechnungen März ✓', name: 'Rechnungen März ✓', delimiter: '.', specialUse: null });
    assert.deepEqual(byPath['Archiv.2026'], { path: 'Archiv.2026', name: '2026', delimiter: '.', specialUse: null });

    const page = await get(`/messages?folder=${encodeURIComponent('Rechnungen März ✓')}`);
    assert.deepEqual(page.messages.map((m: Summary) => [m.subject, m.folder]), [['in a unicode folder', 'Rechnungen März ✓']]);
    const detail = await get(`/messages/${page.messages[0].id}`);
    assert.equal(detail.text.trimEnd(), 'body of in a unicode folder');
    assert.deepEqual((await get('/messages?folder=Archiv.2026')).messages, []);
    assertProblem(await app.inject({ url: '/v1/sessions/s/messages?folder=Archiv%2F2026' }), 'FOLDER_NOT_FOUND');
    assertProblem(await app.inject({ url: '/v1/sessions/s/messages?folder=Nope' }), 'FOLDER_NOT_FOUND');
    // the session is still fine after an item-level error
    assert.equal((await get('')).state, 'connected');
  });

  test('every filter, alone and together, against what was seeded; newest and oldest by arrival', async (t) => {
    const { get, all, peer } = await setup(t, 'filters');
    const seeds = [
      { subject: 'Invoice 1001', from: 'Billing <billing@shop.test>', at: '2026-11-02T23:59:59Z', seen: true },
      { subject: 'Rechnung 1002', from: 'Buchhaltung <buha@firma.test>', at: '2026-11-03T09:59:59Z', seen: false },
      { subject: 'invoice reminder', from: 'billing@shop.test', at: '2026-11-03T10:00:00Z', seen: false },
      { subject: 'Lunch?', from: 'Colleague <colleague@example.test>', at: '2026-11-03T10:00:01Z', seen: true },
      { subject: 'INVOICE 1003', from: 'Other Shop <sales@other.test>', at: '2026-11-04T00:00:00Z', seen: false },
      { subject: 'Newsletter', from: 'news@shop.test', at: '2026-11-05T12:00:00Z', seen: false },
      { subject: 'Facture 1004', from: 'Billing <billing@shop.test>', at: '2026-11-06T08:00:00Z', seen: true },
    ];
    // appended out of date order: arrival (UID) order and INTERNALDATE differ, as after a migration
    for (const s of [seeds[3]!, seeds[0]!, seeds[5]!, seeds[1]!, seeds[6]!, seeds[2]!, seeds[4]!]) {
      await peer.append('INBOX', await message(s.subject, s.from), s.seen ? ['\\Seen'] : [], new Date(s.at));
    }
    const arrival = [3, 0, 5, 1, 6, 2, 4].map((i) => seeds[i]!.subject);
    const subjects = async (query: string) => (await all(query)).flat().map((m) => m.subject);
    const expect = (pick: (s: (typeof seeds)[number]) => boolean) => arrival.filter((subject) => pick(seeds.find((s) => s.subject === subject)!));

    assert.deepEqual(await subjects('order=oldest'), arrival);
    assert.deepEqual(await subjects(''), [...arrival].reverse(), 'newest first by default');
    assert.deepEqual(await subjects('status=unread&order=oldest'), expect((s) => !s.seen));
    assert.deepEqual(await subjects('status=read&order=oldest'), expect((s) => s.seen));
    const has = (text: string, parts: string[]) => parts.some((p) => text.toLowerCase().includes(p.toLowerCase()));
    assert.deepEqual(await subjects('subject=invoice&order=oldest'), expect((s) => has(s.subject, ['invoice'])), 'case-insensitive contains');
    assert.deepEqual(await subjects('subject=invoice;rechnung;%20facture%20&order=oldest'), expect((s) => has(s.subject, ['invoice', 'rechnung', 'facture'])));
    assert.deepEqual(await subjects('from=BILLING@shop&order=oldest'), expect((s) => has(s.from, ['billing@shop'])));
    assert.deepEqual(await subjects('from=Buchhaltung&order=oldest'), expect((s) => has(s.from, ['Buchhaltung'])), 'the sender\'s name matches too');
    assert.deepEqual(
      await subjects('subject=invoice;facture&from=billing;sales&order=oldest'),
      expect((s) => has(s.subject, ['invoice', 'facture']) && has(s.from, ['billing', 'sales'])),
      'alternatives of two filters',
    );
    // exact instants, inside one day and across midnight
    const since = '2026-11-03T10:00:00Z';
    assert.deepEqual(await subjects(`since=${since}&order=oldest`), expect((s) => s.at >= since));
    assert.deepEqual(await subjects(`before=${since}&order=oldest`), expect((s) => s.at < since));
    assert.deepEqual(await subjects('since=2026-11-03T09:59:59.500Z&before=2026-11-03T10:00:00.500Z&order=oldest'), ['invoice reminder']);
    assert.deepEqual(await subjects('since=2026-11-03T11:00:00%2B01:00&order=oldest'), expect((s) => s.at >= since), 'an offset is an instant');
    assert.deepEqual(await subjects('since=2026-11-04&order=oldest'), expect((s) => s.at >= '2026-11-04T00:00:00Z'), 'a date is its start in UTC');
    assert.deepEqual(await subjects('since=2026-11-03&before=2026-11-04&status=unread&order=oldest'), expect((s) => s.at.startsWith('2026-11-03') && !s.seen));
    assert.deepEqual(await subjects('since=2026-11-05&before=2026-11-05'), []);
    assert.deepEqual(await subjects('subject=no-such-subject'), []);
    // filtered pages of one
    const pages = await all('subject=invoice;rechnung;facture&limit=1&order=oldest');
    assert.deepEqual(pages.flat().map((m) => m.subject), expect((s) => has(s.subject, ['invoice', 'rechnung', 'facture'])));
    assert.ok(pages.every((p) => p.length === 1));
    // receivedAt is the INTERNALDATE
    const first = (await get('/messages?order=oldest&limit=1')).messages[0];
    assert.equal(first.receivedAt, '2026-11-03T10:00:01.000Z');
  });

  test('pagination across pages while new mail arrives: nothing repeated, nothing skipped', async (t) => {
    const { app, get, all, peer } = await setup(t, 'pages');
    for (let i = 1; i <= 10; i++) await peer.append('INBOX', await message(`page mail ${i}`));
    let added = 0;
    const arrive = async () => {
      for (let k = 0; k < 2; k++) await peer.append('INBOX', await message(`late mail ${++added}`));
    };
    // newest first: what arrives during the loop is newer than the first page, and not in this loop
    const newest = await all('limit=3', arrive);
    assert.ok(newest.length >= 4, `${newest.length} pages`);
    assert.deepEqual(newest.flat().map((m) => m.subject), Array.from({ length: 10 }, (_, i) => `page mail ${10 - i}`));
    // oldest first: the loop reaches what arrived meanwhile, once each
    const before = added;
    const oldest = await all('order=oldest&limit=4', arrive);
    const expected = [...Array.from({ length: 10 }, (_, i) => `page mail ${i + 1}`), ...Array.from({ length: added }, (_, i) => `late mail ${i + 1}`)];
    assert.deepEqual(oldest.flat().map((m) => m.subject), expected);
    assert.ok(added > before, 'mail arrived during the loop');
    // a cursor belongs to its order and folder
    const { nextCursor } = await get('/messages?limit=2');
    assert.ok(nextCursor);
    assertProblem(await app.inject({ url: `/v1/sessions/s/messages?limit=2&order=oldest&cursor=${nextCursor}` }), 'VALIDATION_ERROR');
    assertProblem(await app.inject({ url: `/v1/sessions/s/messages?limit=2&folder=Papierkorb&cursor=${nextCursor}` }), 'VALIDATION_ERROR');
    assertProblem(await app.inject({ url: '/v1/sessions/s/messages?cursor=bm90LWEtY3Vyc29y' }), 'VALIDATION_ERROR');
  });

  test('after a UIDVALIDITY change an old id is MESSAGE_NOT_FOUND, never another message; an old cursor is refused', async (t) => {
    const { app, get, peer } = await setup(t, 'uidvalidity');
    await peer.mailboxCreate('Recreated');
    await peer.append('Recreated', await message('first life 1'));
    await peer.append('Recreated', await message('first life 2'));
    const old = await get('/messages?folder=Recreated&limit=1&order=oldest');
    const oldId = old.messages[0].id;
    assert.equal((await get(`/messages/${oldId}`)).subject, 'first life 1');
    // another client deletes the folder and creates it again: same name, new UIDVALIDITY, UIDs from 1 again
    await peer.mailboxDelete('Recreated');
    await peer.mailboxCreate('Recreated');
    await peer.append('Recreated', await message('second life 1'));
    await peer.append('Recreated', await message('second life 2'));
    const fresh = await get('/messages?folder=Recreated&order=oldest');
    assert.deepEqual(fresh.messages.map((m: Summary) => m.subject), ['second life 1', 'second life 2']);
    const [a, b] = [decodeMessageId(oldId)!, decodeMessageId(fresh.messages[0].id)!];
    assert.equal(a.uid, b.uid, 'the same UID names another message now');
    assert.notEqual(a.uidValidity, b.uidValidity);
    for (const url of [`/messages/${oldId}`, `/messages/${oldId}/raw`, `/messages/${oldId}/attachments/1`]) {
      assertProblem(await app.inject({ url: `/v1/sessions/s${url}` }), 'MESSAGE_NOT_FOUND');
    }
    assertProblem(await app.inject({ url: `/v1/sessions/s/messages?folder=Recreated&order=oldest&cursor=${old.nextCursor}` }), 'VALIDATION_ERROR');
    assert.equal((await get(`/messages/${fresh.messages[0].id}`)).subject, 'second life 1');
    // the folder gone altogether
    await peer.mailboxDelete('Recreated');
    assertProblem(await app.inject({ url: `/v1/sessions/s/messages/${fresh.messages[0].id}` }), 'MESSAGE_NOT_FOUND');
    assert.equal((await get('')).state, 'connected');
  });

  test('reading never sets \\Seen; markAsRead does, as an independent client sees', async (t) => {
    const { app, get, peer } = await setup(t, 'seen');
    await peer.append('INBOX', await compose({ subject: 'unread one', text: 'hello', attachments: [{ filename: 'a.txt', content: 'attached' }] }));
    await peer.append('INBOX', await message('unread two'));
    const page = await get('/messages?include=text&order=oldest');
    const [one, two] = page.messages as Summary[];
    assert.equal(one!.seen, false);
    await get(`/messages/${one!.id}`);
    for (const url of [`/messages/${one!.id}/raw`, `/messages/${one!.id}/attachments/2`]) {
      assert.equal((await app.inject({ url: `/v1/sessions/s${url}` })).statusCode, 200, url);
    }
    const uid = (id: string) => decodeMessageId(id)!.uid;
    assert.equal((await flagsOf(peer, 'INBOX', uid(one!.id))).has('\\Seen'), false, 'list, detail, raw and attachment left it unread');
    const marked = await get(`/messages/${two!.id}?markAsRead=true`);
    assert.equal(marked.seen, true);
    assert.equal((await flagsOf(peer, 'INBOX', uid(two!.id))).has('\\Seen'), true);
    assert.equal((await get(`/messages/${two!.id}`)).seen, true);
    assert.deepEqual((await get('/messages?status=unread')).messages.map((m: Summary) => m.subject), ['unread one']);
    // the folder opened read-write for markAsRead is left without expunging what another client flagged \Deleted
    const lock = await peer.getMailboxLock('INBOX');
    try {
      await peer.messageFlagsAdd(String(uid(one!.id)), ['\\Deleted'], { uid: true });
    } finally {
      lock.release();
    }
    await get(`/messages/${two!.id}?markAsRead=true`);
    const status = await peer.status('INBOX', { messages: true });
    assert.equal(status && status.messages, 2, 'nothing expunged');
  });

  test('a 20 MB attachment and the raw message stream byte-exact', async (t) => {
    const { app, get, peer } = await setup(t, 'big');
    const file = randomBytes(20 * 1024 * 1024);
    const raw = await compose({ subject: 'big file', text: 'see attached', attachments: [{ filename: 'Jahresbericht 2026.bin', content: file }] });
    await peer.append('INBOX', raw);
    const [m] = (await get('/messages')).messages as Summary[];
    assert.deepEqual(m!.attachments.map((a) => [a.id, a.filename, a.contentType, a.size]), [['2', 'Jahresbericht 2026.bin', 'application/octet-stream', null]]);
    assert.equal(m!.hasAttachments, true);
    const att = await app.inject({ url: `/v1/sessions/s/messages/${m!.id}/attachments/2` });
    assert.equal(att.statusCode, 200);
    assert.equal(att.headers['content-type'], 'application/octet-stream');
    assert.match(String(att.headers['content-disposition']), /^attachment; filename="Jahresbericht 2026.bin"/);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.equal(att.rawPayload.length, file.length);
    assert.equal(sha(att.rawPayload), sha(file));
    const eml = await app.inject({ url: `/v1/sessions/s/messages/${m!.id}/raw` });
    assert.equal(eml.statusCode, 200);
    assert.equal(eml.headers['content-type'], 'message/rfc822');
    assert.equal(sha(eml.rawPayload), sha(raw), 'raw is the message as appended');
    assertProblem(await app.inject({ url: `/v1/sessions/s/messages/${m!.id}/attachments/1` }), 'ATTACHMENT_NOT_FOUND');
    assertProblem(await app.inject({ url: `/v1/sessions/s/messages/${m!.id}/attachments/9.9` }), 'ATTACHMENT_NOT_FOUND');
  });

  test('the detail: text, HTML, headers, attachments; HTML-only mail gets text; inline images; include=text', async (t) => {
    const { app, get, peer } = await setup(t, 'detail');
    await peer.append(
      'INBOX',
      await compose({
        from: 'Jürgen <billing@shop.test>',
        to: 'bot@example.test',
        cc: 'Audit <audit@example.test>',
        subject: 'Rechnung März',
        messageId: '<r-1@shop.test>',
        inReplyTo: '<order-1@example.test>',
        references: ['<order-1@example.test>'],
        text: 'Bitte bis Freitag zahlen.',
        html: '<p>Bitte bis <b>Freitag</b> zahlen. <img src="cid:logo@shop"></p>',
        attachments: [
          { filename: 'Rechnung März €.pdf', content: Buffer.from('%PDF-1.4 invoice') },
          { filename: 'logo.png', content: Buffer.from('not really a png'), cid: 'logo@shop' },
          { filename: 'notes.txt', content: 'Grüße', contentType: 'text/plain; charset=utf-8' },
        ],
      }),
    );
    await peer.append('INBOX', await compose({ subject: 'html only', html: '<h1>Quarterly</h1><p>Total: <b>42 EUR</b></p>', attachments: [{ filename: 'q.pdf', content: 'x' }] }));
    await peer.append('INBOX', Buffer.from('From: legacy@example.test\r\nSubject: latin-1\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe, caf=E9\r\n'));
    const page = await get('/messages?order=oldest&include=text');
    const [rich, htmlOnly, legacy] = page.messages as Summary[];
    assert.equal(rich!.text, 'Bitte bis Freitag zahlen.');
    assert.match(htmlOnly!.text ?? '', /QUARTERLY\s+Total: 42 EUR/);
    assert.equal(legacy!.text?.trim(), 'Grüße, café');

    const d = await get(`/messages/${rich!.id}`);
    assert.equal(d.subject, 'Rechnung März');
    assert.deepEqual(d.from, { name: 'Jürgen', address: 'billing@shop.test' });
    assert.deepEqual(d.cc, [{ name: 'Audit', address: 'audit@example.test' }]);
    assert.equal(d.messageId, '<r-1@shop.test>');
    assert.equal(d.inReplyTo, '<order-1@example.test>');
    assert.deepEqual(d.references, ['<order-1@example.test>']);
    assert.equal(d.text, 'Bitte bis Freitag zahlen.');
    assert.match(d.html, /cid:logo@shop/);
    assert.equal(d.truncated, false);
    assert.ok(d.headers.some((h: { name: string; value: string }) => h.name === 'Subject' && h.value === 'Rechnung März'));
    const byName = Object.fromEntries((d.attachments as Summary['attachments']).map((a) => [a.filename, a]));
    assert.deepEqual(byName['logo.png'], { id: '1.2.2', filename: 'logo.png', contentType: 'image/png', size: null, inline: true, contentId: 'logo@shop' });
    assert.deepEqual(byName['Rechnung März €.pdf'], { id: '2', filename: 'Rechnung März €.pdf', contentType: 'application/pdf', size: null, inline: false, contentId: null });
    assert.equal(byName['notes.txt']?.size, null, 'quoted-printable: the decoded size is not known before downloading');
    const pdf = await app.inject({ url: `/v1/sessions/s/messages/${rich!.id}/attachments/2` });
    assert.equal(pdf.body, '%PDF-1.4 invoice');
    assert.equal(pdf.headers['content-disposition'], `attachment; filename="Rechnung M_rz _.pdf"; filename*=UTF-8''Rechnung%20M%C3%A4rz%20%E2%82%AC.pdf`);
    const notes = await app.inject({ url: `/v1/sessions/s/messages/${rich!.id}/attachments/${byName['notes.txt']!.id}` });
    assert.equal(notes.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(notes.rawPayload.toString('utf8'), 'Grüße');
    // the body text parts are not attachments
    assertProblem(await app.inject({ url: `/v1/sessions/s/messages/${rich!.id}/attachments/1.1` }), 'ATTACHMENT_NOT_FOUND');

    const h = await get(`/messages/${htmlOnly!.id}`);
    assert.match(h.text, /QUARTERLY/);
    assert.match(h.html, /<b>42 EUR<\/b>/);
    assert.equal((await get(`/messages/${legacy!.id}`)).text.trim(), 'Grüße, café');
    // an 8bit attachment: BODYSTRUCTURE's size is its size
    await peer.append('INBOX', Buffer.from('Subject: 8bit\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n--b\r\nContent-Type: text/csv; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nContent-Disposition: attachment; filename=a.csv\r\n\r\nä,b\r\n--b--\r\n'));
    const eight = (await get('/messages?limit=1')).messages[0] as Summary;
    assert.deepEqual(eight.attachments.map((a) => [a.id, a.filename, a.size]), [['2', 'a.csv', Buffer.byteLength('ä,b')]]);
    const csv = await app.inject({ url: `/v1/sessions/s/messages/${eight.id}/attachments/2` });
    assert.equal(csv.rawPayload.toString('utf8'), 'ä,b');
    assertProblem(await app.inject({ url: '/v1/sessions/s/messages/bm90LWFuLWlk' }), 'MESSAGE_NOT_FOUND');

    // text parts larger than a download chunk (1 MiB) are streamed into the parser: the same text, whole
    const longText = 'Zeile mit Umlauten: äöü ß, and a long line '.repeat(12).concat('\n').repeat(3000);
    const longHtml = `<p>${'Großer Absatz. '.repeat(30_000)}</p>`;
    await peer.append('INBOX', await compose({ subject: 'long parts', text: longText, html: longHtml, textEncoding: 'quoted-printable' }));
    const long = (await get('/messages?limit=1')).messages[0] as Summary;
    const dl = await get(`/messages/${long.id}`);
    assert.equal(dl.text, longText);
    assert.equal(dl.html, longHtml);
    assert.equal(dl.truncated, false);
  });

  test('hostile mail and the parse limit: truncated results, never a 5xx, the session unharmed', async (t) => {
    const { app, get, peer } = await setup(t, 'hostile', { MSB_PARSE_MAX_BYTES: '65536' });
    await peer.append('INBOX', await compose({ subject: 'long text', text: 'a line of text\n'.repeat(20_000) }));
    await peer.append('INBOX', Buffer.from(`Subject: huge header\r\nX-Filler: ${'h'.repeat(3 * 1024 * 1024)}\r\n\r\nbody\r\n`));
    let many = 'Subject: many parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nthe text\r\n';
    for (let i = 0; i < 3000; i++) many += `--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=f${i}.pdf\r\n\r\nx\r\n`;
    await peer.append('INBOX', Buffer.from(`${many}--b--\r\n`));
    let nested = 'Subject: leaf\r\n\r\nleaf\r\n';
    for (let i = 0; i < 200; i++) nested = `Subject: level ${i}\r\nContent-Type: message/rfc822\r\n\r\n${nested}`;
    await peer.append('INBOX', Buffer.from(`Subject: nested\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\ncaf\xe9\r\n--o\r\nContent-Type: message/rfc822\r\n\r\n${nested}\r\n--o--\r\n`, 'latin1'));
    const page = await get('/messages?order=oldest&include=text');
    const [long, header, parts, deep] = page.messages as Summary[];
    const dl = await get(`/messages/${long!.id}`);
    assert.equal(dl.truncated, true, 'beyond MSB_PARSE_MAX_BYTES');
    assert.ok(dl.text.length > 30_000 && dl.text.length < 65_536, `text of about the limit: ${dl.text.length}`);
    const dh = await get(`/messages/${header!.id}`);
    assert.equal(dh.truncated, true);
    assert.equal(dh.subject, 'huge header');
    assert.ok(JSON.stringify(dh.headers).length < 1.1 * 1024 * 1024);
    const dp = await get(`/messages/${parts!.id}`);
    assert.equal(dp.text, 'the text');
    assert.ok(dp.attachments.length <= 1000 && dp.truncated === true, `${dp.attachments.length} attachments listed`);
    // nested past imapflow's depth limit, the BODYSTRUCTURE is unreadable: the detail parses the message itself
    assert.deepEqual(deep!.attachments, []);
    const dd = await get(`/messages/${deep!.id}`);
    assert.deepEqual(dd.attachments.map((a: { id: string; contentType: string }) => [a.id, a.contentType]), [['2', 'message/rfc822']]);
    assert.equal(dd.hasAttachments, true);
    assert.match(dd.text, /^caf\uFFFD/);
    assert.equal((await app.inject({ url: `/v1/sessions/s/messages/${deep!.id}/attachments/2` })).statusCode, 200);
    assert.equal((await get('')).state, 'connected');
  });

  test('no message body and no password in any log line, at trace level', async (t) => {
    const { app, logs, get, peer } = await setup(t, 'logs');
    const canaries = ['Body-Canary-5f1e2d', 'Html-Canary-77aa01', 'Attachment-Canary-c3b9e8'];
    await peer.append(
      'INBOX',
      await compose({
        subject: 'canary',
        text: `first line\n${canaries[0]} in the text`,
        html: `<p>${canaries[1]}</p>`,
        attachments: [{ filename: 'c.txt', content: `${canaries[2]} in a file` }],
      }),
    );
    const { messages } = await get('/messages?include=text');
    const id = messages[0].id;
    await get(`/messages/${id}?markAsRead=true`);
    for (const url of [`/messages/${id}/raw`, `/messages/${id}/attachments/2`]) assert.equal((await app.inject({ url: `/v1/sessions/s${url}` })).statusCode, 200);
    await app.close();
    assert.ok(logs.some((l) => /"lib":"imap"/.test(l) && /FETCH/.test(l)), 'imapflow traced the fetches');
    const secret = users['logs@example.test']!;
    const leaks = logs.filter((l) => [...canaries, secret, Buffer.from(secret).toString('base64')].some((c) => l.includes(c)));
    assert.deepEqual(leaks, []);
  });
});
