import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test, type TestContext } from 'node:test';
import { decodeMessageId } from '../../src/connectors/imap/ids.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { startGreenMail, type GreenMailServer } from '../harness/greenmail.js';
import { compose, flagsOf, imapPeer } from '../harness/mail.js';

/**
 * The read routes against GreenMail (IMAP and POP3), through HTTP. Each test works in a folder of its own (or, for
 * POP3, on mail with its own subject), so the tests also hold against a shared external GreenMail.
 */

const USER = 'alice@example.test';

interface Summary {
  id: string;
  subject: string | null;
  seen: boolean | null;
  attachments: { id: string; filename: string | null }[];
  text?: string | null;
}

describe('reading mail through GreenMail, through the HTTP API', () => {
  let greenmail: GreenMailServer;
  before(async () => {
    greenmail = await startGreenMail();
  });
  after(async () => {
    await greenmail?.close();
  });

  const tls = () => (greenmail.caPem ? { ca: greenmail.caPem } : { verifyCertificate: false });

  async function setup(t: TestContext, type: 'imap' | 'pop3') {
    const built = await build(t);
    const port = type === 'imap' ? greenmail.ports.imaps : greenmail.ports.pop3s;
    const res = await built.app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'g', type, host: greenmail.host, port, username: USER, password: greenmail.users[USER], tls: tls() } });
    assert.equal(res.statusCode, 201, res.body);
    const peer = await imapPeer({ host: greenmail.host, port: greenmail.ports.imaps, secure: true, user: USER, pass: greenmail.users[USER]!, ca: greenmail.caPem });
    t.after(() => peer.logout().catch(() => undefined));
    const get = async (url: string) => {
      const r = await built.app.inject({ url: `/v1/sessions/g${url}` });
      assert.equal(r.statusCode, 200, `${url}: ${r.body}`);
      return r.json();
    };
    const folder = `gm-${randomBytes(4).toString('hex')}`;
    await peer.mailboxCreate(folder);
    return { ...built, peer, get, folder };
  }

  test('IMAP: folders, filters, pages while mail arrives, detail, attachment and raw byte-exact, \\Seen only with markAsRead', async (t) => {
    const { app, peer, get, folder } = await setup(t, 'imap');
    await peer.mailboxCreate(`${folder}.Unterordner März`);
    const { folders } = await get('/folders');
    const byPath = Object.fromEntries(folders.map((f: { path: string }) => [f.path, f]));
    assert.equal(byPath.INBOX?.specialUse, 'inbox');
    assert.deepEqual(byPath[`${folder}.Unterordner März`], { path: `${folder}.Unterordner März`, name: 'Unterordner März', delimiter: '.', specialUse: null });

    for (let i = 1; i <= 7; i++) {
      await peer.append(folder, await compose({ from: i % 2 ? 'Billing <billing@shop.test>' : 'other@example.test', subject: `gm invoice ${i}`, text: `text ${i}` }), i === 2 ? ['\\Seen'] : [], new Date(Date.UTC(2026, 10, i, 12)));
    }
    const q = `folder=${encodeURIComponent(folder)}`;
    const pages: Summary[][] = [];
    let cursor: string | null = null;
    let late = 0;
    do {
      const page: { messages: Summary[]; nextCursor: string | null } = await get(`/messages?${q}&limit=2&order=oldest${cursor ? `&cursor=${cursor}` : ''}`);
      pages.push(page.messages);
      cursor = page.nextCursor;
      if (cursor && late < 2) await peer.append(folder, await compose({ subject: `gm late ${++late}`, text: 'late' }));
    } while (cursor);
    assert.deepEqual(pages.flat().map((m) => m.subject), [...Array.from({ length: 7 }, (_, i) => `gm invoice ${i + 1}`), 'gm late 1', 'gm late 2']);
    const subjects = async (filter: string) => ((await get(`/messages?${q}&order=oldest&${filter}`)).messages as Summary[]).map((m) => m.subject);
    // GreenMail's FROM search matches the whole address only (RFC 9051 asks for a substring of the header)
    assert.deepEqual(await subjects('from=billing@shop.test&subject=invoice'), ['gm invoice 1', 'gm invoice 3', 'gm invoice 5', 'gm invoice 7']);
    assert.deepEqual(await subjects('status=read'), ['gm invoice 2']);
    // GreenMail keeps only the day of an APPEND's date (INTERNALDATE 12:00 becomes 00:00): the expectation is
    // computed from the receivedAt it reports
    const received = ((await get(`/messages?${q}&order=oldest`)).messages as (Summary & { receivedAt: string })[]).map((m) => [m.subject, m.receivedAt] as const);
    const [since, until] = ['2026-11-03T00:00:00.000Z', '2026-11-05T00:00:00.000Z'];
    assert.deepEqual(await subjects(`since=${since}&before=${until}`), received.filter(([, at]) => at >= since && at < until).map(([s]) => s));
    assert.deepEqual(await subjects(`since=${since}&before=${until}`), ['gm invoice 3', 'gm invoice 4']);
    assert.deepEqual(await subjects('subject=invoice%201;late%202'), ['gm invoice 1', 'gm late 2']);

    const file = randomBytes(300_000);
    const raw = await compose({ subject: 'gm file', text: 'Grüße', html: '<p>Grüße</p>', attachments: [{ filename: 'Bericht März.bin', content: file }] });
    await peer.append(folder, raw);
    const [m] = (await get(`/messages?${q}&limit=1&include=text`)).messages as Summary[];
    assert.equal(m!.text, 'Grüße');
    const d = await get(`/messages/${m!.id}`);
    assert.equal(d.html, '<p>Grüße</p>');
    assert.deepEqual(d.attachments.map((a: { id: string; filename: string }) => [a.id, a.filename]), [['2', 'Bericht März.bin']]);
    const att = await app.inject({ url: `/v1/sessions/g/messages/${m!.id}/attachments/2` });
    assert.ok(att.rawPayload.equals(file));
    const eml = await app.inject({ url: `/v1/sessions/g/messages/${m!.id}/raw` });
    assert.ok(eml.rawPayload.equals(raw), 'raw is the message as appended');
    assert.equal((await flagsOf(peer, folder, decodeMessageId(m!.id)!.uid)).has('\\Seen'), false);
    assert.equal((await get(`/messages/${m!.id}?markAsRead=true`)).seen, true);
    assert.equal((await flagsOf(peer, folder, decodeMessageId(m!.id)!.uid)).has('\\Seen'), true);
    assertProblem(await app.inject({ url: `/v1/sessions/g/messages?folder=${folder}.nope` }), 'FOLDER_NOT_FOUND');
  });

  test('IMAP: a folder deleted and created again makes its old ids MESSAGE_NOT_FOUND', async (t) => {
    const { app, peer, get, folder } = await setup(t, 'imap');
    await peer.append(folder, await compose({ subject: 'before', text: 'x' }));
    const [old] = (await get(`/messages?folder=${folder}`)).messages as Summary[];
    await peer.mailboxDelete(folder);
    await peer.mailboxCreate(folder);
    await peer.append(folder, await compose({ subject: 'after', text: 'y' }));
    const [fresh] = (await get(`/messages?folder=${folder}`)).messages as Summary[];
    assert.equal(fresh!.subject, 'after');
    // GreenMail gives a folder created again within the same second the same UIDVALIDITY (RFC 9051 2.3.1.1 asks
    // for a new one) and starts its UIDs over: the id's check of the message itself keeps the old id from
    // naming the new message
    assert.equal(decodeMessageId(fresh!.id)!.uid, decodeMessageId(old!.id)!.uid);
    for (const url of [`/messages/${old!.id}`, `/messages/${old!.id}/raw`, `/messages/${old!.id}/attachments/1`]) {
      assertProblem(await app.inject({ url: `/v1/sessions/g${url}` }), 'MESSAGE_NOT_FOUND');
    }
    assert.equal((await get(`/messages/${fresh!.id}`)).subject, 'after');
  });

  test('POP3: list, detail and attachment of mail delivered over SMTP', async (t) => {
    const { app, get } = await setup(t, 'pop3');
    const tag = randomBytes(4).toString('hex');
    await greenmail.deliver(USER, (await compose({ from: 'billing@shop.test', to: USER, subject: `pop ${tag} 1`, text: 'one' })).toString());
    await greenmail.deliver(USER, (await compose({ from: 'billing@shop.test', to: USER, subject: `pop ${tag} 2`, text: 'two', attachments: [{ filename: 'a.pdf', content: 'pdf bytes' }] })).toString());
    const { messages } = await get(`/messages?subject=${tag}&order=oldest`);
    assert.deepEqual(messages.map((m: Summary) => m.subject), [`pop ${tag} 1`, `pop ${tag} 2`]);
    const d = await get(`/messages/${messages[1].id}`);
    assert.equal(d.text.trim(), 'two');
    assert.deepEqual(d.attachments.map((a: { id: string; filename: string }) => [a.id, a.filename]), [['2', 'a.pdf']]);
    assert.equal((await app.inject({ url: `/v1/sessions/g/messages/${messages[1].id}/attachments/2` })).body, 'pdf bytes');
    const raw = await app.inject({ url: `/v1/sessions/g/messages/${messages[0].id}/raw` });
    assert.match(raw.body, new RegExp(`Subject: pop ${tag} 1\\r\\n`));
  });
});
