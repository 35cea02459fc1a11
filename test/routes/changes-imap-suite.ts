// The change, claim and watch routes on IMAP sessions, as one suite run against several real servers
// (changes-imap-*.test.ts): through HTTP (app.inject; SSE on a real socket), every result checked with a second,
// independent imapflow client.
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { ImapFlow } from 'imapflow';
import { build, type TestApp } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { compose, flagsOf, imapPeer } from '../harness/mail.js';
import { openEventStream } from '../harness/sse-client.js';

export const SUITE_USERS = ['flags', 'move', 'delete', 'bulk', 'claims', 'watch'] as const;

export interface ImapServerUnderTest {
  port: number;
  caPem: string | undefined;
  /** user (login) -> password, for each of SUITE_USERS */
  user(name: (typeof SUITE_USERS)[number]): { user: string; pass: string };
  /** The folder with special use \Trash the server has (or that the suite creates: `createTrash`). */
  trash: string;
  createTrash: boolean;
  /** A folder path below the top level, in the server's hierarchy (Dovecot "Archive", Cyrus "INBOX/Archive"). */
  folder(name: string): string;
  /** How many messages the bulk move seeds (the issue's 2,000 where seeding is fast). */
  bulkCount: number;
  close(): Promise<void>;
}

interface Summary {
  id: string;
  folder: string;
  subject: string | null;
  seen: boolean | null;
  flagged: boolean | null;
}

export function imapChangeSuite(label: string, start: () => Promise<ImapServerUnderTest>): void {
  describe(`changing mail, claims and events over IMAP (${label}), through the HTTP API`, () => {
    let server: ImapServerUnderTest;
    before(async () => {
      server = await start();
    });
    after(async () => {
      await server?.close();
    });

    async function setup(t: TestContext, name: (typeof SUITE_USERS)[number], env: Record<string, string> = {}, extra: Record<string, unknown> = {}) {
      const built = await build(t, env);
      const { user, pass } = server.user(name);
      const tls = server.caPem ? { ca: server.caPem } : { verifyCertificate: false };
      const res = await built.app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 's', type: 'imap', host: '127.0.0.1', port: server.port, username: user, password: pass, tls, ...extra } });
      assert.equal(res.statusCode, 201, res.body);
      const peer = await imapPeer({ host: '127.0.0.1', port: server.port, secure: true, user, pass, ca: server.caPem });
      t.after(() => peer.logout().catch(() => undefined));
      if (server.createTrash) await peer.mailboxCreate(server.trash).catch(() => undefined);
      const call = (method: 'GET' | 'PATCH' | 'POST' | 'DELETE', url: string, payload?: unknown) =>
        built.app.inject({ method, url: `/v1/sessions/s${url}`, ...(payload !== undefined ? { payload: payload as object } : {}) });
      const ok = async (method: 'GET' | 'PATCH' | 'POST' | 'DELETE', url: string, payload?: unknown) => {
        const r = await call(method, url, payload);
        assert.ok(r.statusCode < 300, `${method} ${url}: ${r.statusCode} ${r.body}`);
        return r.statusCode === 204 ? undefined : r.json();
      };
      const list = async (folder: string, query = ''): Promise<Summary[]> => {
        const out: Summary[] = [];
        let cursor: string | null = null;
        do {
          const page: { messages: Summary[]; nextCursor: string | null } = await ok('GET', `/messages?folder=${encodeURIComponent(folder)}&order=oldest&limit=1000${query}${cursor ? `&cursor=${cursor}` : ''}`);
          out.push(...page.messages);
          cursor = page.nextCursor;
        } while (cursor);
        return out;
      };
      const seed = async (folder: string, subjects: string[], flags: string[] = []) => {
        for (const subject of subjects) await peer.append(folder, await compose({ from: 'Billing <billing@shop.test>', to: 'bot@example.test', subject, text: `body of ${subject}`, messageId: `<${subject.replace(/[^A-Za-z0-9]/g, '-')}.${Math.random().toString(36).slice(2)}@example.test>` }), flags);
      };
      return { ...built, peer, call, ok, list, seed };
    }

    /** The subjects in `folder` as the independent client sees them (oldest first). */
    async function subjectsOf(peer: ImapFlow, folder: string): Promise<string[]> {
      const lock = await peer.getMailboxLock(folder, { readOnly: true });
      try {
        // a folder the peer had open already: NOOP brings the changes made since (EXPUNGE, EXISTS)
        await peer.noop();
        if (!(peer.mailbox && peer.mailbox.exists)) return [];
        return (await peer.fetchAll('1:*', { uid: true, envelope: true })).sort((a, b) => a.uid - b.uid).map((r) => r.envelope?.subject ?? '');
      } finally {
        lock.release();
      }
    }

    test('PATCH seen and flagged, and the bulk update with where: UID STORE, what the server holds', async (t) => {
      const { ok, list, seed, peer } = await setup(t, 'flags');
      await seed('INBOX', ['invoice 1', 'invoice 2', 'newsletter', 'invoice 3']);
      const [first] = await list('INBOX');
      const patched = await ok('PATCH', `/messages/${first!.id}`, { seen: true, flagged: true });
      assert.deepEqual([patched.id, patched.seen, patched.flagged, patched.subject], [first!.id, true, true, 'invoice 1']);
      const uid = async (subject: string) => {
        const lock = await peer.getMailboxLock('INBOX', { readOnly: true });
        try {
          return (await peer.fetchAll('1:*', { uid: true, envelope: true })).find((r) => r.envelope?.subject === subject)!.uid;
        } finally {
          lock.release();
        }
      };
      let flags = await flagsOf(peer, 'INBOX', await uid('invoice 1'));
      assert.ok(flags.has('\\Seen') && flags.has('\\Flagged'), [...flags].join(' '));
      assert.equal((await ok('PATCH', `/messages/${first!.id}`, { flagged: false })).flagged, false);
      flags = await flagsOf(peer, 'INBOX', await uid('invoice 1'));
      assert.ok(flags.has('\\Seen') && !flags.has('\\Flagged'), 'only the flag named changes');

      assert.deepEqual(await ok('POST', '/messages/update', { folder: 'INBOX', where: { subject: 'invoice' }, flagged: true }), { updated: 3 });
      for (const s of ['invoice 1', 'invoice 2', 'invoice 3']) assert.ok((await flagsOf(peer, 'INBOX', await uid(s))).has('\\Flagged'), s);
      assert.ok(!(await flagsOf(peer, 'INBOX', await uid('newsletter'))).has('\\Flagged'), 'the filter chose');
      assert.deepEqual(await ok('POST', '/messages/update', { folder: 'INBOX', where: { status: 'unread' }, seen: true }), { updated: 3 });
      assert.deepEqual((await list('INBOX', '&status=unread')).length, 0);
    });

    test('move: the new id resolves, the old one (and a repeated move) is MESSAGE_NOT_FOUND; an unknown folder is FOLDER_NOT_FOUND; another client\'s \\Deleted message stays', async (t) => {
      const { ok, call, list, seed, peer } = await setup(t, 'move');
      const archive = server.folder('Archive');
      await peer.mailboxCreate(archive);
      await seed('INBOX', ['move me', 'someone else deleted me']);
      // another client marks a message \Deleted without expunging it (it may still undelete it)
      const lock = await peer.getMailboxLock('INBOX');
      try {
        const rows = await peer.fetchAll('1:*', { uid: true, envelope: true });
        await peer.messageFlagsAdd(String(rows.find((r) => r.envelope?.subject === 'someone else deleted me')!.uid), ['\\Deleted'], { uid: true });
      } finally {
        lock.release();
      }
      const [m] = (await list('INBOX')).filter((x) => x.subject === 'move me');
      assertProblem(await call('POST', `/messages/${m!.id}/move`, { to: server.folder('No Such Folder') }), 'FOLDER_NOT_FOUND');
      const moved = await ok('POST', `/messages/${m!.id}/move`, { to: archive });
      assert.equal(moved.folder, archive);
      assert.notEqual(moved.id, m!.id);
      const got = await ok('GET', `/messages/${moved.id}`);
      assert.deepEqual([got.subject, got.folder], ['move me', archive]);
      assertProblem(await call('GET', `/messages/${m!.id}`), 'MESSAGE_NOT_FOUND');
      assertProblem(await call('POST', `/messages/${m!.id}/move`, { to: archive }), 'MESSAGE_NOT_FOUND');
      assert.deepEqual(await subjectsOf(peer, archive), ['move me']);
      assert.deepEqual(await subjectsOf(peer, 'INBOX'), ['someone else deleted me'], 'the other client\'s \\Deleted message was not expunged');
      // moved back, the id changes again and still names the message
      const back = await ok('POST', `/messages/${moved.id}/move`, { to: 'INBOX' });
      assert.equal((await ok('GET', `/messages/${back.id}`)).subject, 'move me');
    });

    test('delete: to the Trash, from the Trash for good, permanent=true for good; a repeat is MESSAGE_NOT_FOUND; bulk delete with where', async (t) => {
      const { ok, call, list, seed, peer } = await setup(t, 'delete');
      await seed('INBOX', ['to trash', 'for good', 'keep', 'bulk a', 'bulk b', 'bulk c']);
      await seed('INBOX', ['someone else deleted me'], ['\\Deleted']);
      const byName = async () => Object.fromEntries((await list('INBOX')).map((m) => [m.subject, m]));
      const inbox = await byName();
      assert.equal(await ok('DELETE', `/messages/${inbox['to trash']!.id}`), undefined);
      assertProblem(await call('DELETE', `/messages/${inbox['to trash']!.id}`), 'MESSAGE_NOT_FOUND');
      assert.deepEqual(await subjectsOf(peer, server.trash), ['to trash']);
      const [inTrash] = await list(server.trash);
      await ok('DELETE', `/messages/${inTrash!.id}`);
      assert.deepEqual(await subjectsOf(peer, server.trash), [], 'deleted from the Trash: gone');

      await ok('DELETE', `/messages/${inbox['for good']!.id}?permanent=true`);
      assertProblem(await call('DELETE', `/messages/${inbox['for good']!.id}?permanent=true`), 'MESSAGE_NOT_FOUND');
      assert.deepEqual(await subjectsOf(peer, server.trash), [], 'permanent: not in the Trash');

      assert.deepEqual(await ok('POST', '/messages/delete', { folder: 'INBOX', where: { subject: 'bulk a;bulk b' } }), { deleted: 2 });
      assert.deepEqual((await subjectsOf(peer, server.trash)).sort(), ['bulk a', 'bulk b']);
      assert.deepEqual(await ok('POST', '/messages/delete', { folder: 'INBOX', where: { subject: 'bulk c' }, permanent: true }), { deleted: 1 });
      assert.deepEqual(await subjectsOf(peer, 'INBOX'), ['keep', 'someone else deleted me'], 'exactly those; the other client\'s \\Deleted message stays');
      assert.deepEqual((await subjectsOf(peer, server.trash)).sort(), ['bulk a', 'bulk b']);
    });

    test('bulk move by a subject filter (2,000 messages where seeding is fast) moves exactly those, each with its new id', async (t) => {
      const { ok, call, list, seed, peer } = await setup(t, 'bulk');
      const done = server.folder('Done');
      await peer.mailboxCreate(done);
      const n = server.bulkCount;
      const subjects = Array.from({ length: n }, (_, i) => (i % 5 === 4 ? `other ${i}` : `batch ${i}`));
      await seed('INBOX', subjects);
      const chosen = subjects.filter((s) => s.startsWith('batch'));
      const before = await list('INBOX', '&subject=batch');
      assert.equal(before.length, chosen.length);

      const res = await ok('POST', '/messages/move', { folder: 'INBOX', where: { subject: 'batch' }, to: done });
      assert.equal(res.moved, chosen.length);
      assert.deepEqual(new Set(res.messages.map((m: { id: string }) => m.id)), new Set(before.map((m) => m.id)), 'the answer names the moved ones');
      assert.deepEqual((await subjectsOf(peer, done)).sort(), [...chosen].sort());
      assert.deepEqual((await subjectsOf(peer, 'INBOX')).sort(), subjects.filter((s) => !s.startsWith('batch')).sort());
      // new ids resolve to their message, old ones are gone
      for (const k of [0, Math.floor(res.messages.length / 2), res.messages.length - 1]) {
        const m = res.messages[k] as { id: string; newId: string };
        const old = before.find((b) => b.id === m.id)!;
        assert.equal((await ok('GET', `/messages/${m.newId}`)).subject, old.subject);
        assertProblem(await call('GET', `/messages/${m.id}`), 'MESSAGE_NOT_FOUND');
      }
      // retried: nothing left matches
      assert.deepEqual(await ok('POST', '/messages/move', { folder: 'INBOX', where: { subject: 'batch' }, to: done }), { moved: 0, messages: [] });
    });

    test('work claims from 4 concurrent bots: every message acknowledged exactly once, each marked with the keyword on the server', async (t) => {
      const { app, ok, seed, peer } = await setup(t, 'claims');
      const total = 40;
      await seed('INBOX', Array.from({ length: total }, (_, i) => `claim ${i}`));
      const acked: string[] = [];
      const bot = async () => {
        for (;;) {
          const res = await app.inject({ method: 'POST', url: '/v1/sessions/s/claims', payload: { where: { subject: 'claim' }, max: 3, leaseSeconds: 60 } });
          assert.equal(res.statusCode, 201, res.body);
          const { claim, messages } = res.json();
          if (messages.length === 0) return;
          const ack = await app.inject({ method: 'POST', url: `/v1/sessions/s/claims/${claim}/ack`, payload: {} });
          assert.equal(ack.statusCode, 200, ack.body);
          assert.deepEqual(ack.json().failed, []);
          acked.push(...ack.json().acknowledged);
        }
      };
      await Promise.all([bot(), bot(), bot(), bot()]);
      assert.equal(acked.length, total);
      assert.equal(new Set(acked).size, total, 'none twice');
      const lock = await peer.getMailboxLock('INBOX', { readOnly: true });
      try {
        const rows = await peer.fetchAll('1:*', { uid: true, flags: true });
        assert.equal(rows.filter((r) => r.flags?.has('$Processed')).length, total, 'the keyword is on every message');
      } finally {
        lock.release();
      }
      // a new service (a restart: no leases, no finished ids in memory) claims none of them: the keyword says done
      const fresh = await build(t);
      const { user, pass } = server.user('claims');
      const tls = server.caPem ? { ca: server.caPem } : { verifyCertificate: false };
      assert.equal((await fresh.app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'again', type: 'imap', host: '127.0.0.1', port: server.port, username: user, password: pass, tls, watch: [] } })).statusCode, 201);
      const again = await fresh.app.inject({ method: 'POST', url: '/v1/sessions/again/claims', payload: { where: {}, max: 100, leaseSeconds: 60 } });
      assert.deepEqual(again.json().messages, []);
      await ok('GET', '');
    });

    test('events: message.new within a bounded wait of an APPEND by another client (IDLE), message.deleted when it is expunged', async (t) => {
      const built = await build(t);
      const { app } = built;
      await app.listen({ port: 0, host: '127.0.0.1' });
      const port = (app.server.address() as { port: number }).port;
      const stream = openEventStream(port, '/v1/events?session=w');
      await stream.ready;
      t.after(() => stream.close());
      const { user, pass } = server.user('watch');
      const tls = server.caPem ? { ca: server.caPem } : { verifyCertificate: false };
      const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'w', type: 'imap', host: '127.0.0.1', port: server.port, username: user, password: pass, tls } });
      assert.equal(res.statusCode, 201, res.body);
      const peer = await imapPeer({ host: '127.0.0.1', port: server.port, secure: true, user, pass, ca: server.caPem });
      t.after(() => peer.logout().catch(() => undefined));
      await peer.append('INBOX', await compose({ from: 'a@example.test', to: user, subject: 'arrives while watched', text: 'x' }));
      await stream.waitFor('message.new', (e) => e.some((x) => x.type === 'message.new' && x.body.data.subject === 'arrives while watched'));
      const event = stream.events.find((x) => x.type === 'message.new')!;
      assert.equal(event.body.session, 'w');
      assert.equal(event.body.data.folder, 'INBOX');
      const got = await app.inject({ url: `/v1/sessions/w/messages/${event.body.data.id}` });
      assert.equal(got.json().subject, 'arrives while watched', 'the event\'s id reads the message');

      const lock = await peer.getMailboxLock('INBOX');
      try {
        await peer.messageDelete('1:*');
      } finally {
        lock.release();
      }
      await stream.waitFor('message.deleted', (e) => e.some((x) => x.type === 'message.deleted' && x.body.data.id === event.body.data.id));
      assert.ok(!stream.events.some((x) => x.type === 'mailbox.reset'));
    });
  });
}
