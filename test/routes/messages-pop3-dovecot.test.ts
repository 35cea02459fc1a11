import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { logPatterns, startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { compose } from '../harness/mail.js';

/** The read routes on POP3 sessions against Dovecot's POP3 (TLS), through HTTP; mail is delivered into the Maildir. */

const users: Record<string, string> = Object.fromEntries(['list', 'detail', 'raw', 'limits'].map((u) => [`pop-${u}@example.test`, `pop-${u}-Secret-1`]));

interface Summary {
  id: string;
  subject: string | null;
  size: number | null;
  seen: boolean | null;
  receivedAt: string | null;
  hasAttachments: boolean;
  attachments: { id: string; filename: string | null; size: number | null; inline: boolean }[];
  text?: string | null;
}

describe('reading mail over POP3 (Dovecot), through the HTTP API', () => {
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot({ users });
  });
  after(async () => {
    await dovecot?.close();
  });

  async function setup(t: TestContext, user: string, env: Record<string, string> = {}) {
    const built = await build(t, env);
    const address = `pop-${user}@example.test`;
    const res = await built.app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { name: 'p', type: 'pop3', host: '127.0.0.1', port: dovecot.ports.pop3s, username: address, password: users[address], tls: { ca: dovecot.caPem } },
    });
    assert.equal(res.statusCode, 201, res.body);
    const get = async (url: string) => {
      const r = await built.app.inject({ url: `/v1/sessions/p${url}` });
      assert.equal(r.statusCode, 200, `${url}: ${r.body}`);
      return r.json();
    };
    const all = async (query: string, between?: () => Promise<void>): Promise<Summary[][]> => {
      const pages: Summary[][] = [];
      let cursor: string | null = null;
      do {
        const page: { messages: Summary[]; nextCursor: string | null } = await get(`/messages?${query}${cursor ? `&cursor=${cursor}` : ''}`);
        pages.push(page.messages);
        cursor = page.nextCursor;
        if (cursor && between) await between();
        assert.ok(pages.length < 100);
      } while (cursor);
      return pages;
    };
    const deliver = (raw: Buffer | string) => dovecot.deliver(address, raw.toString());
    /** The Maildir file of the message with this Message-ID, as POP3 serves it (CRLF lines). */
    const maildropFile = async (messageId: string): Promise<Buffer> => {
      // Dovecot renames a file when a POP3 session's QUIT marks it seen: a name read a moment ago may be gone
      for (let attempt = 0; attempt < 5; attempt++) {
        for (const sub of ['new', 'cur']) {
          const dir = path.join(dovecot.dir, 'mail', address, sub);
          for (const name of await readdir(dir).catch(() => [] as string[])) {
            const text = await readFile(path.join(dir, name), 'latin1').catch(() => '');
            if (text.includes(`Message-ID: ${messageId}`)) return Buffer.from(text.replace(/\n/g, '\r\n'), 'latin1');
          }
        }
      }
      throw new Error(`no Maildir file holds ${messageId}`);
    };
    return { ...built, address, get, all, deliver, maildropFile };
  }

  const message = (subject: string, extra: Record<string, unknown> = {}) =>
    compose({ from: 'Billing <billing@shop.test>', to: 'bot@example.test', subject, text: `body of ${subject}`, messageId: `<${subject.replace(/[^A-Za-z0-9]/g, '-')}@example.test>`, ...extra });

  test('list: UIDL ids, newest = the last delivered, pages while mail arrives, filters on the headers', async (t) => {
    const { app, get, all, deliver } = await setup(t, 'list');
    for (let i = 1; i <= 7; i++) await deliver(await message(`pop mail ${i}`, i % 3 === 0 ? { from: 'Colleague <colleague@example.test>' } : {}));
    let late = 0;
    const arrive = async () => void (await deliver(await message(`late ${++late}`)));
    const newest = await all('limit=2', arrive);
    assert.deepEqual(newest.flat().map((m) => m.subject), Array.from({ length: 7 }, (_, i) => `pop mail ${7 - i}`));
    assert.ok(newest.length >= 4);
    const oldest = await all('order=oldest&limit=3', arrive);
    assert.deepEqual(oldest.flat().map((m) => m.subject), [...Array.from({ length: 7 }, (_, i) => `pop mail ${i + 1}`), ...Array.from({ length: late }, (_, i) => `late ${i + 1}`)]);
    const first = oldest[0]![0]!;
    assert.equal(first.seen, null, 'POP3 keeps no flags');
    assert.ok(first.size && first.size > 100);
    assert.deepEqual(first.attachments, []);
    assert.equal(first.hasAttachments, false);

    const subjects = async (q: string) => (await all(q)).flat().map((m) => m.subject);
    assert.deepEqual(await subjects('subject=MAIL%203;mail%205&order=oldest'), ['pop mail 3', 'pop mail 5']);
    assert.deepEqual(await subjects('from=colleague&order=oldest'), ['pop mail 3', 'pop mail 6']);
    assert.deepEqual(await subjects('from=Billing&subject=late&order=oldest'), Array.from({ length: late }, (_, i) => `late ${i + 1}`));
    // since/before read the Received header (the Date header without one)
    await deliver(`Received: from mx by pop.example.test; Tue, 03 Nov 2026 10:00:00 +0000\r\nDate: Sun, 01 Nov 2026 00:00:00 +0000\r\nSubject: received\r\nMessage-ID: <rcv@x>\r\n\r\nx\r\n`);
    assert.deepEqual(await subjects('since=2026-11-03T10:00:00Z&before=2026-11-03T10:00:01Z'), ['received']);
    assert.deepEqual(await subjects('since=2026-11-03T10:00:01Z&before=2026-11-04'), []);
    const withText = (await get('/messages?limit=1&include=text')).messages[0];
    assert.equal(withText.text?.trim(), 'x');
    assert.equal(withText.receivedAt, '2026-11-03T10:00:00.000Z');

    assert.deepEqual((await get('/folders')).folders, [{ path: 'INBOX', name: 'INBOX', delimiter: null, specialUse: 'inbox' }]);
    assertProblem(await app.inject({ url: '/v1/sessions/p/messages?folder=Sent' }), 'FOLDER_NOT_FOUND');
    const unsupported = assertProblem(await app.inject({ url: '/v1/sessions/p/messages?status=unread' }), 'OPERATION_NOT_SUPPORTED');
    assert.ok((unsupported.supportedBy as string[]).includes('imap'));
    assertProblem(await app.inject({ url: `/v1/sessions/p/messages/${first.id}?markAsRead=true` }), 'OPERATION_NOT_SUPPORTED');
    assertProblem(await app.inject({ url: '/v1/sessions/p/messages?order=newest&cursor=bm9wZQ' }), 'VALIDATION_ERROR');
  });

  test('the detail parses RETR: text, HTML-only text, attachments with decoded sizes, inline images', async (t) => {
    const { app, get, deliver } = await setup(t, 'detail');
    await deliver(
      await message('Rechnung März', {
        html: '<p>Bitte <b>zahlen</b> <img src="cid:logo@shop"></p>',
        attachments: [{ filename: 'Rechnung März.pdf', content: Buffer.alloc(5000, 1) }, { filename: 'logo.png', content: Buffer.alloc(20, 2), cid: 'logo@shop' }],
      }),
    );
    await deliver(await compose({ subject: 'html only', html: '<h1>Hello</h1><p>world</p>', messageId: '<html-only@x>' }));
    const [htmlOnly, rich] = (await get('/messages')).messages as Summary[];
    assert.equal(rich!.hasAttachments, true, 'multipart/mixed: attachments likely');
    const d = await get(`/messages/${rich!.id}`);
    assert.equal(d.subject, 'Rechnung März');
    assert.equal(d.text, 'body of Rechnung März');
    assert.match(d.html, /cid:logo@shop/);
    assert.equal(d.truncated, false);
    assert.equal(d.seen, null);
    assert.deepEqual(
      (d.attachments as Summary['attachments']).map((a) => [a.id, a.filename, a.size, a.inline]),
      [['1.2.2', 'logo.png', 20, true], ['2', 'Rechnung März.pdf', 5000, false]],
    );
    const pdf = await app.inject({ url: `/v1/sessions/p/messages/${rich!.id}/attachments/2` });
    assert.equal(pdf.statusCode, 200);
    assert.equal(pdf.headers['content-type'], 'application/pdf');
    assert.ok(pdf.rawPayload.equals(Buffer.alloc(5000, 1)));
    assertProblem(await app.inject({ url: `/v1/sessions/p/messages/${rich!.id}/attachments/7` }), 'ATTACHMENT_NOT_FOUND');
    assert.match((await get(`/messages/${htmlOnly!.id}`)).text, /HELLO\s+world/);
  });

  test('raw equals the maildrop file, dot-stuffed lines and large messages included; a deleted message is gone', async (t) => {
    const { app, address, get, deliver, maildropFile } = await setup(t, 'raw');
    const lines = ['.', '..', '.leading dot', 'a line', '', '. ', 'end.'].join('\n');
    await deliver(await message('dots', { text: `${lines}\n` }));
    const big = randomBytes(8 * 1024 * 1024);
    await deliver(await message('big', { attachments: [{ filename: 'big.bin', content: big }] }));
    await deliver('Subject: bare\r\nMessage-ID: <bare@x>\r\n\r\n.\r\n');
    const messages = (await get('/messages?order=oldest')).messages as Summary[];
    assert.deepEqual(messages.map((m) => m.subject), ['dots', 'big', 'bare']);
    const ids = ['<dots@example.test>', '<big@example.test>', '<bare@x>'];
    for (const [i, m] of messages.entries()) {
      const raw = await app.inject({ url: `/v1/sessions/p/messages/${m.id}/raw` });
      assert.equal(raw.statusCode, 200);
      assert.equal(raw.headers['content-type'], 'message/rfc822');
      const file = await maildropFile(ids[i]!);
      assert.equal(raw.rawPayload.length, file.length, `${m.subject}: length`);
      assert.ok(raw.rawPayload.equals(file), `${m.subject}: bytes`);
    }
    assert.equal((await get(`/messages/${messages[0]!.id}`)).text, `${lines}\n`);
    // parsing 8 MB is slower than the socket: the connection pauses, and must be handed back flowing for QUIT
    assert.equal((await get(`/messages/${messages[1]!.id}`)).attachments[0].size, big.length);
    const att = await app.inject({ url: `/v1/sessions/p/messages/${messages[1]!.id}/attachments/2` });
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.equal(sha(att.rawPayload), sha(big));
    // list, detail and raw each ended with QUIT (an attachment's download may stop the RETR midway and close)
    await dovecot.waitForLog(logPatterns.pop3Logout(address), (await dovecot.countLog(logPatterns.pop3Login(address))) - 1);

    for (const sub of ['new', 'cur']) {
      const dir = path.join(dovecot.dir, 'mail', address, sub);
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if ((await readFile(path.join(dir, name), 'latin1')).includes('<bare@x>')) await rm(path.join(dir, name));
      }
    }
    for (const url of [`/messages/${messages[2]!.id}`, `/messages/${messages[2]!.id}/raw`, '/messages/bm9wZQ']) {
      assertProblem(await app.inject({ url: `/v1/sessions/p${url}` }), 'MESSAGE_NOT_FOUND');
    }
  });

  test('a message over MSB_PARSE_MAX_BYTES is truncated in the detail, still whole in raw; the session unharmed', async (t) => {
    // a short command timeout: an answer that made the socket pause for its reader must not hold back the next one
    const { app, get, deliver } = await setup(t, 'limits', { MSB_PARSE_MAX_BYTES: '65536', MSB_COMMAND_TIMEOUT_MS: '5000' });
    for (let i = 0; i < 3; i++) await deliver(await message(`bulky ${i}`, { text: `${i} ${'a line of bulky text\n'.repeat(15_000)}` }));
    const bulky = (await get('/messages?include=text&subject=bulky&order=oldest')).messages as Summary[];
    assert.deepEqual(bulky.map((m) => m.text?.slice(0, 21)), ['0 a line of bulky tex', '1 a line of bulky tex', '2 a line of bulky tex']);
    assert.ok(bulky.every((m) => (m.text?.length ?? 0) > 32 * 1024), 'each TOP answer is larger than the stream buffers (16 KiB)');
    await deliver(await message('long', { text: 'a line of text\n'.repeat(30_000), attachments: [{ filename: 'late.pdf', content: 'x' }] }));
    const [m] = (await get('/messages?subject=long')).messages as Summary[];
    const d = await get(`/messages/${m!.id}`);
    assert.equal(d.truncated, true);
    assert.ok(d.text.length > 30_000 && d.text.length < 65_536);
    assert.deepEqual(d.attachments, [], 'the attachment lies beyond the limit');
    assertProblem(await app.inject({ url: `/v1/sessions/p/messages/${m!.id}/attachments/2` }), 'ATTACHMENT_NOT_FOUND');
    const raw = await app.inject({ url: `/v1/sessions/p/messages/${m!.id}/raw` });
    assert.ok(raw.rawPayload.length > 400_000);
    assert.equal((await get('')).state, 'connected');
    assert.equal((await get('/messages')).messages.length, 4);
  });
});
