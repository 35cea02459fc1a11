import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { ImapFlow } from 'imapflow';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import { build, type TestApp } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { startGreenMail, type GreenMailServer } from '../harness/greenmail.js';
import { compose, flagsOf, imapPeer } from '../harness/mail.js';
import { assertNoSecrets } from '../harness/ews-world.js';
import { decodeMessageId } from '../../src/connectors/imap/ids.js';

/**
 * Sending over SMTP from IMAP and POP3 sessions, end to end through GreenMail, which serves SMTP and IMAP in
 * one: what the service sends is read back from the recipient's INBOX by an independent IMAP client (and
 * through the service's own reader), and the copy from the sender's Sent folder.
 */

const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const CAROL = 'carol@example.test';

const addresses = (a: AddressObject | AddressObject[] | undefined) => (Array.isArray(a) ? a : a ? [a] : []).flatMap((x) => x.value.map((v) => v.address));

describe('IMAP and POP3 sessions: sending over SMTP (GreenMail)', () => {
  let greenmail: GreenMailServer;
  let app: TestApp['app'];
  let logs: string[];
  const peers: Record<string, ImapFlow> = {};
  /** An independent IMAP client of `user`, connected again when the last one was dropped. */
  async function peerOf(user: string): Promise<ImapFlow> {
    if (peers[user]?.usable) return peers[user];
    peers[user] = await imapPeer({ host: greenmail.host, port: greenmail.ports.imaps, secure: true, user, pass: greenmail.users[user]!, ca: greenmail.caPem });
    return peers[user];
  }
  const closers: (() => Promise<void>)[] = [];
  const BODY_MARKER = `body-marker-${randomBytes(6).toString('hex')}`;

  const tls = () => (greenmail.caPem ? { ca: greenmail.caPem } : { verifyCertificate: false });
  const smtp = (extra: Record<string, unknown> = {}) => ({ host: greenmail.host, port: greenmail.ports.smtps, secure: true, tls: tls(), ...extra });
  const createSession = (name: string, user: string, extra: Record<string, unknown> = {}, type: 'imap' | 'pop3' = 'imap') =>
    app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { name, type, host: greenmail.host, port: type === 'imap' ? greenmail.ports.imaps : greenmail.ports.pop3s, username: user, password: greenmail.users[user], tls: tls(), smtp: smtp(), ...extra },
    });
  const post = (session: string, url: string, payload: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: `/v1/sessions/${session}${url}`, payload: payload as object, headers });

  /** The messages of `user`'s `folder` whose subject contains `tag`, parsed, waiting a little for delivery. */
  async function received(user: string, tag: string, folder = 'INBOX', count = 1): Promise<{ uid: number; mail: ParsedMail }[]> {
    const peer = await peerOf(user);
    for (let attempt = 0; ; attempt++) {
      const lock = await peer.getMailboxLock(folder, { readOnly: true });
      let found: { uid: number; mail: ParsedMail }[] = [];
      try {
        const uids = (await peer.search({ subject: tag }, { uid: true })) || [];
        for (const uid of uids) {
          const row = await peer.fetchOne(String(uid), { source: true, uid: true }, { uid: true });
          if (row && row.source) found.push({ uid, mail: await simpleParser(row.source) });
        }
      } finally {
        lock.release();
      }
      found = found.filter((f) => (f.mail.subject ?? '').includes(tag));
      if (found.length >= count || attempt >= 50) return found;
      await sleep(100);
    }
  }

  before(async () => {
    greenmail = await startGreenMail();
    // GreenMail makes INBOX only: alice's mailbox gets a Sent folder (found by its well-known name), bob's none
    await (await peerOf(ALICE)).mailboxCreate('Sent').catch(() => undefined);
    ({ app, logs } = await build({ after: (fn) => void closers.push(fn as () => Promise<void>) }, { MSB_WATCH_INTERVAL_MS: '0' }));
    assert.equal((await createSession('alice', ALICE, { smtp: smtp({ from: 'Alice Accounts <alice@example.test>' }) })).statusCode, 201);
    assert.equal((await createSession('bob', BOB)).statusCode, 201);
  });
  after(async () => {
    for (const close of closers) await close();
    for (const peer of Object.values(peers)) await peer.logout().catch(() => undefined);
    await greenmail?.close();
  });

  test('create: inspect shows the SMTP settings, never the password; a wrong SMTP password fails the create (nothing kept)', async () => {
    const view = (await app.inject({ url: '/v1/sessions/alice' })).json();
    assert.deepEqual(
      { ...view.smtp, tls: undefined },
      { host: greenmail.host, port: greenmail.ports.smtps, secure: true, username: ALICE, from: ALICE, saveToSent: true, auth: 'password', tls: undefined },
    );
    assert.equal(view.smtp.tls.mode, 'implicit');
    assert.ok(!JSON.stringify(view).includes(greenmail.users[ALICE]!));

    const wrong = await createSession('wrong-smtp', ALICE, { smtp: smtp({ password: 'not-the-password' }) });
    const problem = assertProblem(wrong, 'SMTP_AUTH_FAILED');
    assert.match(String(problem.detail), new RegExp(`SMTP ${greenmail.host}:${greenmail.ports.smtps}`));
    assert.ok(!wrong.body.includes('not-the-password'));
    assertProblem(await app.inject({ url: '/v1/sessions/wrong-smtp' }), 'SESSION_NOT_FOUND');

    // POP3 has no Sent folder to keep a copy in
    assertProblem(await createSession('pop-sent', BOB, { smtp: smtp({ saveToSent: true }) }, 'pop3'), 'UNSUPPORTED_OPTION');
  });

  test('send: a 5 MB attachment, a UTF-8 subject, text and HTML, to/cc/bcc; read back intact by another client and by the service; the copy in Sent with \\Seen', async () => {
    const tag = randomBytes(4).toString('hex');
    const file = randomBytes(5 * 1024 * 1024);
    const subject = `Rechnung März ✓ ${tag}`;
    const res = await post('alice', '/send', {
      to: '"Doe, Bob" <bob@example.test>',
      cc: [`Carol Ünal <${CAROL}>`],
      bcc: ALICE,
      subject,
      text: `Grüße, see attached. ${BODY_MARKER}`,
      html: `<p>Grüße, see <b>attached</b>. ${BODY_MARKER}</p>`,
      attachments: [{ filename: 'Bericht März.bin', contentType: 'application/octet-stream', content: file.toString('base64') }],
    });
    assert.equal(res.statusCode, 201, res.body);
    const result = res.json();
    assert.deepEqual(result.accepted.sort(), [ALICE, BOB, CAROL].sort());
    assert.deepEqual(result.rejected, []);
    assert.equal(result.warnings, undefined);
    assert.match(result.messageId, /^<[^@>]+@example\.test>$/);

    const [got] = await received(BOB, tag);
    assert.ok(got, 'bob received the message');
    const mail = got.mail;
    assert.equal(mail.subject, subject);
    assert.equal(mail.messageId, result.messageId);
    assert.deepEqual(mail.from?.value.map((v) => [v.name, v.address]), [['Alice Accounts', ALICE]]);
    assert.deepEqual((mail.to as AddressObject).value.map((v) => [v.name, v.address]), [['Doe, Bob', BOB]]);
    assert.deepEqual((mail.cc as AddressObject).value.map((v) => [v.name, v.address]), [['Carol Ünal', CAROL]]);
    assert.equal(mail.bcc, undefined, 'no Bcc header in what recipients get');
    assert.equal(mail.text?.trim(), `Grüße, see attached. ${BODY_MARKER}`);
    assert.equal(mail.html, `<p>Grüße, see <b>attached</b>. ${BODY_MARKER}</p>`);
    assert.equal(mail.attachments.length, 1);
    assert.equal(mail.attachments[0]!.filename, 'Bericht März.bin');
    assert.ok(mail.attachments[0]!.content.equals(file), 'attachment bytes intact');

    // through the service's own reader, on bob's session
    const list = (await app.inject({ url: `/v1/sessions/bob/messages?subject=${tag}` })).json();
    assert.equal(list.messages.length, 1);
    const [summary] = list.messages;
    assert.deepEqual(summary.attachments.map((a: { filename: string }) => a.filename), ['Bericht März.bin']);
    const download = await app.inject({ url: `/v1/sessions/bob/messages/${summary.id}/attachments/${summary.attachments[0].id}` });
    assert.ok(download.rawPayload.equals(file));

    // bcc: alice got it too; and her Sent folder has the copy, \Seen, with the Bcc kept
    assert.equal((await received(ALICE, tag)).length, 1);
    const [copy] = await received(ALICE, tag, 'Sent');
    assert.ok(copy, 'the copy in Sent');
    assert.equal(copy.mail.messageId, result.messageId);
    assert.deepEqual(addresses(copy.mail.bcc), [ALICE]);
    assert.ok(copy.mail.attachments[0]!.content.equals(file));
    assert.ok((await flagsOf(await peerOf(ALICE), 'Sent', copy.uid)).has('\\Seen'));
  });

  test('reply and reply all: threading headers, "Re:" once, the original quoted, this mailbox left out, \\Answered; no Sent folder is a warning, not a failure', async () => {
    const tag = randomBytes(4).toString('hex');
    const originalId = `<original-${tag}@example.test>`;
    await greenmail.deliver(
      BOB,
      (await compose({ from: `Alice <${ALICE}>`, to: [BOB, `Carol <${CAROL}>`], cc: 'Dave <dave@example.test>', subject: `Order ${tag}`, messageId: originalId, references: ['<root@example.test>'], text: `Line one\nLine two ${tag}` })).toString(),
    );
    const [original] = (await app.inject({ url: `/v1/sessions/bob/messages?subject=${tag}` })).json().messages;
    const res = await post('bob', `/messages/${original.id}/reply`, { text: 'Thanks, confirmed.', replyAll: true });
    assert.equal(res.statusCode, 201, res.body);
    const result = res.json();
    assert.deepEqual(result.accepted.sort(), [ALICE, CAROL, 'dave@example.test'].sort());
    // bob's mailbox has no Sent folder: sent all the same, with a warning
    assert.equal(result.warnings.length, 1);
    assert.match(result.warnings[0], /Sent folder.*FOLDER_NOT_FOUND/);

    const [reply] = await received(ALICE, `Re: Order ${tag}`);
    assert.ok(reply);
    assert.equal(reply.mail.subject, `Re: Order ${tag}`);
    assert.equal(reply.mail.inReplyTo, originalId);
    assert.deepEqual(reply.mail.references, ['<root@example.test>', originalId]);
    assert.deepEqual(addresses(reply.mail.to), [ALICE]);
    assert.deepEqual(addresses(reply.mail.cc).sort(), [CAROL, 'dave@example.test'].sort(), 'reply all without bob himself');
    assert.match(reply.mail.text ?? '', /^Thanks, confirmed\.\n\n.*Alice <alice@example\.test> wrote:\n> Line one\n> Line two/s);
    const uid = decodeMessageId(original.id)!.uid;
    assert.ok((await flagsOf(await peerOf(BOB), 'INBOX', uid)).has('\\Answered'), 'the original is marked answered');

    // answering the reply: "Re:" is not stacked, the thread grows
    const [replyInAlice] = (await app.inject({ url: `/v1/sessions/alice/messages?subject=${encodeURIComponent(`Re: Order ${tag}`)}` })).json().messages;
    const second = await post('alice', `/messages/${replyInAlice.id}/reply`, { html: '<p>Good.</p>' });
    assert.equal(second.statusCode, 201, second.body);
    assert.deepEqual(second.json().accepted, [BOB]);
    const [again] = await received(BOB, `Re: Order ${tag}`);
    assert.ok(again);
    assert.equal(again.mail.subject, `Re: Order ${tag}`);
    assert.deepEqual(again.mail.references, ['<root@example.test>', originalId, reply.mail.messageId]);
    assert.match(String(again.mail.html), /^<p>Good\.<\/p>[\s\S]*<blockquote type="cite"[^>]*>[\s\S]*Thanks, confirmed\./);
  });

  test('forward: "Fw:", the original below the new text, its attachment and the new one; from a POP3 session too', async () => {
    const tag = randomBytes(4).toString('hex');
    const pdf = randomBytes(100_000);
    await greenmail.deliver(
      ALICE,
      (await compose({ from: `Supplier <supplier@example.test>`, to: ALICE, subject: `Invoice ${tag}`, text: `Invoice attached ${tag}`, attachments: [{ filename: 'invoice.pdf', content: pdf, contentType: 'application/pdf' }] })).toString(),
    );
    const [original] = (await app.inject({ url: `/v1/sessions/alice/messages?subject=${tag}` })).json().messages;
    const res = await post('alice', `/messages/${original.id}/forward`, {
      to: BOB,
      text: 'For approval.',
      attachments: [{ filename: 'note.txt', contentType: 'text/plain', content: Buffer.from('approve by Friday').toString('base64') }],
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().accepted, [BOB]);
    const [fwd] = await received(BOB, `Fw: Invoice ${tag}`);
    assert.ok(fwd);
    assert.equal(fwd.mail.subject, `Fw: Invoice ${tag}`);
    assert.match(fwd.mail.text ?? '', /^For approval\.\n\n-+ Forwarded message -+\nFrom: Supplier <supplier@example\.test>\n[\s\S]*Subject: Invoice [0-9a-f]+\n[\s\S]*Invoice attached/);
    assert.deepEqual(fwd.mail.attachments.map((a) => a.filename).sort(), ['invoice.pdf', 'note.txt']);
    assert.ok(fwd.mail.attachments.find((a) => a.filename === 'invoice.pdf')!.content.equals(pdf));

    // a POP3 session forwards the same way (the original read through POP3)
    assert.equal((await createSession('bob-pop', BOB, {}, 'pop3')).statusCode, 201);
    const [popMessage] = (await app.inject({ url: `/v1/sessions/bob-pop/messages?subject=${encodeURIComponent(`Fw: Invoice ${tag}`)}` })).json().messages;
    const popRes = await post('bob-pop', `/messages/${popMessage.id}/forward`, { to: ALICE, text: 'Approved.' });
    assert.equal(popRes.statusCode, 201, popRes.body);
    assert.equal(popRes.json().warnings, undefined, 'POP3 keeps no copy, and says nothing about it');
    const [back] = await received(ALICE, `Fw: Invoice ${tag}`);
    assert.ok(back);
    assert.equal(back.mail.subject, `Fw: Invoice ${tag}`, '"Fw:" not stacked');
    assert.ok(back.mail.attachments.find((a) => a.filename === 'invoice.pdf')!.content.equals(pdf));
  });

  test('Idempotency-Key: the same key and body twice delivers once; the same key with another body is a 409', async () => {
    const tag = randomBytes(4).toString('hex');
    const body = { to: BOB, subject: `Once ${tag}`, text: 'only once' };
    const first = await post('alice', '/send', body, { 'idempotency-key': `k-${tag}` });
    const second = await post('alice', '/send', body, { 'idempotency-key': `k-${tag}` });
    assert.equal(first.statusCode, 201);
    assert.equal(second.statusCode, 201);
    assert.equal(second.headers['idempotent-replayed'], 'true');
    assert.deepEqual(second.json(), first.json());
    assertProblem(await post('alice', '/send', { ...body, text: 'another' }, { 'idempotency-key': `k-${tag}` }), 'IDEMPOTENCY_KEY_REUSED');
    // wait until the one delivery is in, then make sure no second one follows it
    assert.equal((await received(BOB, `Once ${tag}`)).length, 1);
    await sleep(300);
    assert.equal((await received(BOB, `Once ${tag}`, 'INBOX', 2)).length, 1);
  });

  test('bad input is a 400 before anything is sent; a session without smtp answers 409 SMTP_NOT_CONFIGURED', async () => {
    assertProblem(await post('alice', '/send', { to: BOB, subject: 'a\r\nBcc: evil@example.test', text: 'x' }), 'VALIDATION_ERROR');
    assertProblem(await post('alice', '/send', { to: 'not an address', subject: 's', text: 'x' }), 'VALIDATION_ERROR');
    assertProblem(await post('alice', '/send', { to: `Bob <${BOB}>\r\nX: y`, subject: 's', text: 'x' }), 'VALIDATION_ERROR');
    assertProblem(await post('alice', '/send', { to: BOB, subject: 's', attachments: [{ filename: 'a/b', content: 'AA==' }] }), 'VALIDATION_ERROR');
    assertProblem(await post('alice', '/messages/bm9wZQ/reply', { text: 'x' }), 'MESSAGE_NOT_FOUND');
    assertProblem(
      await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'bad-from', type: 'imap', host: greenmail.host, port: greenmail.ports.imaps, username: ALICE, password: 'x', tls: tls(), smtp: smtp({ from: 'a@b\r\nX: y' }) } }),
      'VALIDATION_ERROR',
    );
    const plain = await app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { name: 'no-smtp', type: 'imap', host: greenmail.host, port: greenmail.ports.imaps, username: ALICE, password: greenmail.users[ALICE], tls: tls() },
    });
    assert.equal(plain.statusCode, 201, plain.body);
    assertProblem(await post('no-smtp', '/send', { to: BOB, subject: 's', text: 'x' }), 'SMTP_NOT_CONFIGURED');
  });

  test('the logs carry neither a password nor a message body', () => {
    assertNoSecrets(logs, [greenmail.users[ALICE]!, greenmail.users[BOB]!, 'not-the-password', BODY_MARKER, 'approve by Friday', 'Line two'], 'the service log');
    assert.ok(logs.some((l) => /"operation":"send"/.test(l)), 'sends are audited (by count)');
  });
});
