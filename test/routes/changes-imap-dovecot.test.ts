import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { compose, imapPeer } from '../harness/mail.js';
import { openEventStream } from '../harness/sse-client.js';
import { SUITE_USERS, imapChangeSuite } from './changes-imap-suite.js';

/** Dovecot's capabilities after login (2.3.19), for taking MOVE and UIDPLUS away (imap_capability). */
const DOVECOT_CAPABILITIES =
  'IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SPECIAL-USE LITERAL+';
const without = (...caps: string[]) => DOVECOT_CAPABILITIES.split(' ').filter((c) => !caps.includes(c)).join(' ');

function dovecotUnderTest(prefix: string, imapCapability?: string) {
  return async () => {
    const users = Object.fromEntries(SUITE_USERS.map((u) => [`${prefix}-${u}@example.test`, `${prefix}-${u}-Secret-1`]));
    const dovecot = await startDovecot({ users, specialUse: { Trash: '\\Trash' }, ...(imapCapability ? { imapCapability } : {}) });
    return {
      port: dovecot.ports.imaps,
      caPem: dovecot.caPem,
      user: (name: string) => ({ user: `${prefix}-${name}@example.test`, pass: users[`${prefix}-${name}@example.test`]! }),
      trash: 'Trash',
      createTrash: false,
      folder: (name: string) => name,
      bulkCount: 2000,
      close: () => dovecot.close(),
    };
  };
}

imapChangeSuite('Dovecot', dovecotUnderTest('dc'));
// COPY + STORE \Deleted + UID EXPUNGE, the new id from COPYUID
imapChangeSuite('Dovecot without MOVE', dovecotUnderTest('nomove', without('MOVE')));

describe('IMAP changes on a server without MOVE and UIDPLUS (Dovecot with both taken away), and mailbox.reset', () => {
  const users = { 'plain@example.test': 'plain-Secret-1', 'reset@example.test': 'reset-Secret-1' };
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot({ users, specialUse: { Trash: '\\Trash' }, imapCapability: without('MOVE', 'UIDPLUS') });
  });
  after(async () => {
    await dovecot?.close();
  });

  test('a move answers the new id found by Message-ID; removing messages never expunges another client\'s \\Deleted message: refused until it is gone', async (t) => {
    const { app } = await build(t);
    const user = 'plain@example.test';
    const session = { name: 'p', type: 'imap', host: '127.0.0.1', port: dovecot.ports.imaps, username: user, password: users[user], tls: { ca: dovecot.caPem }, watch: [] };
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: session })).statusCode, 201);
    const peer = await imapPeer({ host: '127.0.0.1', port: dovecot.ports.imaps, secure: true, user, pass: users[user], ca: dovecot.caPem });
    t.after(() => peer.logout().catch(() => undefined));
    await peer.mailboxCreate('Archive');
    for (const subject of ['move me', 'delete me']) await peer.append('INBOX', await compose({ from: 'a@example.test', subject, text: 'x', messageId: `<${subject.replace(/ /g, '-')}@example.test>` }));
    const list = async (folder: string) => (await app.inject({ url: `/v1/sessions/p/messages?folder=${folder}&order=oldest` })).json().messages as { id: string; subject: string }[];
    const [moveMe, deleteMe] = await list('INBOX');

    const moved = await app.inject({ method: 'POST', url: `/v1/sessions/p/messages/${moveMe!.id}/move`, payload: { to: 'Archive' } });
    assert.equal(moved.statusCode, 200, moved.body);
    assert.equal((await app.inject({ url: `/v1/sessions/p/messages/${moved.json().id}` })).json().subject, 'move me', 'found by its Message-ID');
    assertProblem(await app.inject({ url: `/v1/sessions/p/messages/${moveMe!.id}` }), 'MESSAGE_NOT_FOUND');

    await peer.append('INBOX', await compose({ from: 'a@example.test', subject: 'theirs', text: 'x' }), ['\\Deleted']);
    const refused = assertProblem(await app.inject({ method: 'DELETE', url: `/v1/sessions/p/messages/${deleteMe!.id}?permanent=true` }), 'MAIL_TEMPORARILY_UNAVAILABLE');
    assert.match(String(refused.detail), /UIDPLUS/);
    assert.equal((await list('INBOX')).length, 2, 'nothing changed');
    // the other client expunges its own: now ours can go
    const lock = await peer.getMailboxLock('INBOX');
    try {
      await peer.mailboxClose();
    } finally {
      lock.release();
    }
    assert.equal((await app.inject({ method: 'DELETE', url: `/v1/sessions/p/messages/${deleteMe!.id}?permanent=true` })).statusCode, 204);
    assert.deepEqual(await list('INBOX'), []);
  });

  test('a watched folder deleted and created again (new UIDVALIDITY) gives mailbox.reset, then new mail in it message.new', async (t) => {
    // the keepalive also checks the watched folders' UIDVALIDITY (Dovecot does not always drop the IDLE of a deleted folder)
    const { app } = await build(t, { MSB_KEEPALIVE_INTERVAL_MS: '500' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const stream = openEventStream((app.server.address() as { port: number }).port, '/v1/events?session=r');
    await stream.ready;
    t.after(() => stream.close());
    const user = 'reset@example.test';
    const peer = await imapPeer({ host: '127.0.0.1', port: dovecot.ports.imaps, secure: true, user, pass: users[user], ca: dovecot.caPem });
    t.after(() => peer.logout().catch(() => undefined));
    await peer.mailboxCreate('Watched');
    const session = { name: 'r', type: 'imap', host: '127.0.0.1', port: dovecot.ports.imaps, username: user, password: users[user], tls: { ca: dovecot.caPem }, watch: ['Watched'] };
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: session })).statusCode, 201);
    await peer.mailboxDelete('Watched');
    await peer.mailboxCreate('Watched');
    await stream.waitFor('mailbox.reset', (e) => e.some((x) => x.type === 'mailbox.reset' && x.body.data.folder === 'Watched'), 20_000);
    assert.ok(!stream.events.some((x) => x.type === 'session.state' && x.body.data.state === 'reconnecting'), 'only the watch connection was lost');
    // Dovecot (maildir) may answer this client's first APPEND into the re-created folder with "NO Mailbox was
    // deleted under us" while it still holds the old folder's index (docs/protocol-facts.md): asked again, it takes it
    for (let attempt = 1; ; attempt += 1) {
      try {
        await peer.append('Watched', await compose({ from: 'a@example.test', subject: 'after the reset', text: 'x' }));
        break;
      } catch (err) {
        // (seen once under load with another NO text: any NO is retried, what matters here is the events)
        if (attempt >= 5 || (err as { responseStatus?: unknown }).responseStatus !== 'NO') throw err;
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
    await stream.waitFor('message.new', (e) => e.some((x) => x.type === 'message.new' && x.body.data.subject === 'after the reset'));
  });
});
