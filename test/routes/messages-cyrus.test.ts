import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test, type TestContext } from 'node:test';
import { decodeMessageId } from '../../src/connectors/imap/ids.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { startCyrus, type CyrusServer } from '../harness/cyrus.js';
import { compose, flagsOf, imapPeer } from '../harness/mail.js';

/**
 * The read routes against Cyrus IMAP 3.6 with its own defaults' hierarchy delimiter "/" (unixhierarchysep: yes),
 * a folder with a special use set by the server, COMPRESS=DEFLATE and CONDSTORE (imapflow turns both on), and
 * its POP3 (popminpoll 0, so that every use may log in).
 */

const users: Record<string, string> = Object.fromEntries(['imap', 'pop'].map((u) => [`cyrus-${u}@example.test`, `cyrus-${u}-Secret-1`]));

interface Summary {
  id: string;
  folder: string;
  subject: string | null;
  seen: boolean | null;
  attachments: { id: string; filename: string | null }[];
  text?: string | null;
}

describe('reading mail through Cyrus IMAP 3.6 (delimiter "/"), through the HTTP API', () => {
  let cyrus: CyrusServer;
  before(async () => {
    cyrus = await startCyrus({ users, popMinPollMinutes: 0, unixHierarchySep: true, specialUse: { 'Bot Outbox': 'sent' } });
  });
  after(async () => {
    await cyrus?.close();
  });

  async function setup(t: TestContext, type: 'imap' | 'pop3', user: string) {
    const built = await build(t);
    const port = type === 'imap' ? cyrus.ports.imaps : cyrus.ports.pop3s;
    const res = await built.app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'c', type, host: '127.0.0.1', port, username: user, password: users[user], tls: { ca: cyrus.caPem } } });
    assert.equal(res.statusCode, 201, res.body);
    const get = async (url: string) => {
      const r = await built.app.inject({ url: `/v1/sessions/c${url}` });
      assert.equal(r.statusCode, 200, `${url}: ${r.body}`);
      return r.json();
    };
    return { ...built, get };
  }

  test('IMAP: folders with "/" and special use, filters, pages while mail arrives, detail, downloads, \\Seen, UIDVALIDITY', async (t) => {
    const user = 'cyrus-imap@example.test';
    const { app, get } = await setup(t, 'imap', user);
    const peer = await imapPeer({ host: '127.0.0.1', port: cyrus.ports.imaps, secure: true, user, pass: users[user]!, ca: cyrus.caPem });
    t.after(() => peer.logout().catch(() => undefined));
    await peer.mailboxCreate(['INBOX', 'Rechnungen März']);

    const { folders } = await get('/folders');
    const byPath = Object.fromEntries(folders.map((f: { path: string }) => [f.path, f]));
    assert.deepEqual(byPath.INBOX, { path: 'INBOX', name: 'INBOX', delimiter: '/', specialUse: 'inbox' });
    assert.deepEqual(byPath['INBOX/Bot Outbox'], { path: 'INBOX/Bot Outbox', name: 'Bot Outbox', delimiter: '/', specialUse: 'sent' });
    assert.deepEqual(byPath['INBOX/Rechnungen März'], { path: 'INBOX/Rechnungen März', name: 'Rechnungen März', delimiter: '/', specialUse: null });

    const folder = 'INBOX/Rechnungen März';
    const q = `folder=${encodeURIComponent(folder)}`;
    for (let i = 1; i <= 7; i++) {
      await peer.append(folder, await compose({ from: i % 2 ? 'Billing <billing@shop.test>' : 'other@example.test', subject: `cyrus invoice ${i}`, text: `text ${i}` }), i === 2 ? ['\\Seen'] : [], new Date(Date.UTC(2026, 10, i, 12, 30)));
    }
    const pages: Summary[][] = [];
    let cursor: string | null = null;
    let late = 0;
    do {
      const page: { messages: Summary[]; nextCursor: string | null } = await get(`/messages?${q}&limit=2&order=oldest${cursor ? `&cursor=${cursor}` : ''}`);
      pages.push(page.messages);
      cursor = page.nextCursor;
      if (cursor && late < 2) await peer.append(folder, await compose({ subject: `cyrus late ${++late}`, text: 'late' }));
    } while (cursor);
    assert.deepEqual(pages.flat().map((m) => m.subject), [...Array.from({ length: 7 }, (_, i) => `cyrus invoice ${i + 1}`), 'cyrus late 1', 'cyrus late 2']);
    assert.equal(pages.flat()[0]!.folder, folder);
    const subjects = async (filter: string) => ((await get(`/messages?${q}&order=oldest&${filter}`)).messages as Summary[]).map((m) => m.subject);
    assert.deepEqual(await subjects('from=BILLING&subject=invoice'), ['cyrus invoice 1', 'cyrus invoice 3', 'cyrus invoice 5', 'cyrus invoice 7']);
    assert.deepEqual(await subjects('status=read'), ['cyrus invoice 2']);
    assert.deepEqual(await subjects('since=2026-11-03T12:30:00Z&before=2026-11-05T12:30:00Z'), ['cyrus invoice 3', 'cyrus invoice 4']);
    // alternatives of two filters (the late mail has no From header)
    assert.deepEqual(await subjects('subject=invoice%201;invoice%202;late%202&from=billing;example'), ['cyrus invoice 1', 'cyrus invoice 2']);

    const file = randomBytes(3 * 1024 * 1024);
    const raw = await compose({ subject: 'cyrus file', text: 'Grüße', html: '<p>Grüße</p>', attachments: [{ filename: 'Bericht März.bin', content: file }] });
    await peer.append(folder, raw);
    const [m] = (await get(`/messages?${q}&limit=1&include=text`)).messages as Summary[];
    assert.equal(m!.text, 'Grüße');
    const d = await get(`/messages/${m!.id}`);
    assert.equal(d.html, '<p>Grüße</p>');
    assert.deepEqual(d.attachments.map((a: { id: string; filename: string }) => [a.id, a.filename]), [['2', 'Bericht März.bin']]);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.equal(sha((await app.inject({ url: `/v1/sessions/c/messages/${m!.id}/attachments/2` })).rawPayload), sha(file));
    assert.equal(sha((await app.inject({ url: `/v1/sessions/c/messages/${m!.id}/raw` })).rawPayload), sha(raw));
    const uid = decodeMessageId(m!.id)!.uid;
    assert.equal((await flagsOf(peer, folder, uid)).has('\\Seen'), false, 'reading left it unread');
    assert.equal((await get(`/messages/${m!.id}?markAsRead=true`)).seen, true);
    assert.equal((await flagsOf(peer, folder, uid)).has('\\Seen'), true);

    // the folder deleted and created again: the old id names no message, never the new one with its UID
    await peer.mailboxDelete(folder);
    await peer.mailboxCreate(folder);
    await peer.append(folder, await compose({ subject: 'cyrus after', text: 'x' }));
    const [fresh] = (await get(`/messages?${q}`)).messages as Summary[];
    assert.equal(fresh!.subject, 'cyrus after');
    assert.notEqual(decodeMessageId(fresh!.id)!.uidValidity, decodeMessageId(m!.id)!.uidValidity);
    assertProblem(await app.inject({ url: `/v1/sessions/c/messages/${m!.id}` }), 'MESSAGE_NOT_FOUND');
    assertProblem(await app.inject({ url: '/v1/sessions/c/messages?folder=INBOX.Rechnungen' }), 'FOLDER_NOT_FOUND');
  });

  test('POP3: list, detail, attachment, and raw equal to the message IMAP serves', async (t) => {
    const user = 'cyrus-pop@example.test';
    const tag = randomBytes(3).toString('hex');
    await cyrus.deliver(user, (await compose({ to: user, subject: `pop ${tag} 1`, text: 'one\n.\n..two' })).toString());
    await cyrus.deliver(user, (await compose({ to: user, subject: `pop ${tag} 2`, text: 'two', attachments: [{ filename: 'a.pdf', content: Buffer.alloc(200_000, 5) }] })).toString());
    const { app, get } = await setup(t, 'pop3', user);
    const { messages } = await get('/messages?order=oldest');
    assert.deepEqual(messages.map((m: Summary) => m.subject), [`pop ${tag} 1`, `pop ${tag} 2`]);
    const d = await get(`/messages/${messages[1].id}`);
    assert.deepEqual(d.attachments.map((a: { id: string; filename: string; size: number }) => [a.id, a.filename, a.size]), [['2', 'a.pdf', 200_000]]);
    assert.ok((await app.inject({ url: `/v1/sessions/c/messages/${messages[1].id}/attachments/2` })).rawPayload.equals(Buffer.alloc(200_000, 5)));
    assert.equal((await get(`/messages/${messages[0].id}`)).text.trimEnd(), 'one\n.\n..two', 'dot-stuffed lines come back as they were');
    const peer = await imapPeer({ host: '127.0.0.1', port: cyrus.ports.imaps, secure: true, user, pass: users[user]!, ca: cyrus.caPem });
    t.after(() => peer.logout().catch(() => undefined));
    const lock = await peer.getMailboxLock('INBOX', { readOnly: true });
    try {
      for (const [i, m] of (messages as Summary[]).entries()) {
        const viaImap = await peer.fetchOne(String(i + 1), { source: true });
        assert.ok(viaImap && viaImap.source);
        const viaPop = (await app.inject({ url: `/v1/sessions/c/messages/${m.id}/raw` })).rawPayload;
        assert.ok(viaPop.equals(viaImap.source), `${m.subject}: POP3 RETR and IMAP BODY[] agree byte for byte`);
      }
    } finally {
      lock.release();
    }
  });
});
