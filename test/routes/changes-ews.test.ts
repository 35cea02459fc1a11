import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { build, type TestApp } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { compose } from '../harness/compose.js';
import { USERS, assertNoSecrets, startEwsWorld, type EwsWorld } from '../harness/ews-world.js';
import { all, attr, first, parseSoap, textOf } from '../harness/fake-ews-mail.js';
import type { FakeFolder, FakeMailbox, FakeMessage } from '../harness/fake-ews-store.js';
import { encodeId } from '../../src/domain/mail.js';

type Node = Record<string, unknown>;

/** Changing mail through EWS sessions (flags, moves, deletes, one and in bulk), over HTTP, against the fake's SOAP. */
describe('EWS sessions: changing mail', () => {
  let world: EwsWorld;
  let box: FakeMailbox;
  let app: TestApp['app'];
  let logs: string[];
  const SUBJECT_MARKER = `subject-marker-${randomBytes(6).toString('hex')}`;
  const closers: (() => Promise<void>)[] = [];

  const call = (method: 'GET' | 'PATCH' | 'POST' | 'DELETE', url: string, payload?: unknown, session = 'ews-change') =>
    app.inject({ method, url: `/v1/sessions/${session}${url}`, ...(payload !== undefined ? { payload: payload as object } : {}) });
  /** The SOAP requests of one operation the library sent since `from`, parsed. */
  const sent = (from: number, operation: string) =>
    world.ews.requests.slice(from).map((r) => ({ record: r, soap: parseSoap(r.body) })).filter((r) => r.soap?.operation === operation).map((r) => ({ xml: r.record.body, node: r.soap!.node }));
  const inFolder = (f: FakeFolder | string) => box.messages.filter((m) => m.folderId === (typeof f === 'string' ? box.folder(f) : f).id);
  let n = 0;
  const seed = async (folder: FakeFolder | string, subject: string, options: { from?: string; isRead?: boolean } = {}) =>
    box.addMessage(folder, await compose({ from: options.from ?? 'vendor@example.test', to: USERS.alice.name, subject, text: `body ${SUBJECT_MARKER}` }), {
      received: Date.UTC(2026, 5, 1) + (n += 1) * 1000,
      isRead: options.isRead ?? false,
    });
  /** The one Updates element of an UpdateItem's first ItemChange. */
  const updatesOf = (node: Node) => first(first(first(node, 'ItemChanges'), 'ItemChange'), 'Updates');
  const createSession = async (name: string, exchangeVersion?: string) => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { name, type: 'ews', url: world.ews.url, username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'basic' }, ...(exchangeVersion ? { exchangeVersion } : {}) },
    });
    assert.equal(res.statusCode, 201, res.body);
  };

  before(async () => {
    world = await startEwsWorld();
    box = world.ews.store(USERS.alice.name);
    ({ app, logs } = await build({ after: (fn) => void closers.push(fn as () => Promise<void>) }, { ...world.env, MSB_WATCH_INTERVAL_MS: '0' }));
    await createSession('ews-change');
    await createSession('e2010', 'Exchange2010');
  });
  after(async () => {
    for (const close of closers) await close();
    await world?.close();
  });

  test('PATCH seen and flagged: one UpdateItem with IsRead and the Flag (Exchange 2013+), no read receipt; the fake holds it', async () => {
    const m = await seed('inbox', 'flag me');
    const from = world.ews.requests.length;
    const res = await call('PATCH', `/messages/${encodeId(m.id)}`, { seen: true, flagged: true });
    assert.equal(res.statusCode, 200, res.body);
    const summary = res.json();
    assert.deepEqual([summary.id, summary.folder, summary.seen, summary.flagged, summary.subject], [encodeId(m.id), 'Inbox', true, true, 'flag me']);
    assert.deepEqual([m.isRead, m.flagStatus], [true, 2], 'the server state changed');

    const [update, ...more] = sent(from, 'UpdateItem');
    assert.equal(more.length, 0, 'one UpdateItem');
    assert.equal(attr(update!.node, 'ConflictResolution'), 'AlwaysOverwrite');
    assert.equal(attr(update!.node, 'SuppressReadReceipts'), 'true');
    assert.equal(attr(update!.node, 'MessageDisposition'), 'SaveOnly');
    const sets = all(updatesOf(update!.node), 'SetItemField');
    const byUri = new Map(sets.map((s) => [attr(first(s, 'FieldURI'), 'FieldURI'), s]));
    assert.equal(textOf(first(first(byUri.get('message:IsRead'), 'Message'), 'IsRead')), 'true');
    assert.equal(textOf(first(first(first(byUri.get('item:Flag'), 'Message'), 'Flag'), 'FlagStatus')), 'Flagged');

    const back = await call('PATCH', `/messages/${encodeId(m.id)}`, { flagged: false, seen: false });
    assert.deepEqual([back.json().seen, back.json().flagged, m.isRead, m.flagStatus], [false, false, false, null]);
    const got = await call('GET', `/messages/${encodeId(m.id)}`);
    assert.deepEqual([got.json().seen, got.json().flagged], [false, false], 'reading again shows what the server holds');
  });

  test('Exchange 2010: the flag is PidTagFlagStatus (0x1090) set to 2, and removed to unflag; no SuppressReadReceipts', async () => {
    const m = await seed('inbox', 'old server flag');
    const from = world.ews.requests.length;
    const res = await call('PATCH', `/messages/${encodeId(m.id)}`, { flagged: true }, 'e2010');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(m.flagStatus, 2);
    const set = first(updatesOf(sent(from, 'UpdateItem')[0]!.node), 'SetItemField');
    assert.equal(attr(first(set, 'ExtendedFieldURI'), 'PropertyTag'), String(0x1090));
    assert.equal(textOf(first(first(first(set, 'Message'), 'ExtendedProperty'), 'Value')), '2');
    assert.equal(attr(sent(from, 'UpdateItem')[0]!.node, 'SuppressReadReceipts'), undefined);

    const unflag = world.ews.requests.length;
    assert.equal((await call('PATCH', `/messages/${encodeId(m.id)}`, { flagged: false }, 'e2010')).json().flagged, false);
    const del = first(updatesOf(sent(unflag, 'UpdateItem')[0]!.node), 'DeleteItemField');
    assert.equal(attr(first(del, 'ExtendedFieldURI'), 'PropertyTag'), String(0x1090));
    assert.equal(m.flagStatus, null);
  });

  test('move: MoveItem answers the new ItemId; the new id resolves, the old one is MESSAGE_NOT_FOUND (also when the move is repeated)', async () => {
    const target = box.addFolder('inbox', 'Processed');
    const m = await seed('inbox', 'move me');
    const oldId = encodeId(m.id);
    const from = world.ews.requests.length;
    const res = await call('POST', `/messages/${oldId}/move`, { to: 'Inbox/Processed' });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { id: encodeId(m.id), folder: 'Inbox/Processed' });
    assert.notEqual(res.json().id, oldId, 'Exchange gives a moved message a new ItemId');
    assert.equal(m.folderId, target.id, 'the fake holds it in the target folder');

    const move = sent(from, 'MoveItem')[0]!.node;
    assert.equal(attr(first(first(move, 'ToFolderId'), 'FolderId'), 'Id'), target.id);
    assert.equal(textOf(first(move, 'ReturnNewItemIds')), 'true');
    assert.equal(all(first(move, 'ItemIds'), 'ItemId').length, 1);

    const moved = await call('GET', `/messages/${res.json().id}`);
    assert.equal(moved.statusCode, 200, moved.body);
    assert.equal(moved.json().folder, 'Inbox/Processed');
    assertProblem(await call('GET', `/messages/${oldId}`), 'MESSAGE_NOT_FOUND');
    assertProblem(await call('POST', `/messages/${oldId}/move`, { to: 'Inbox/Processed' }), 'MESSAGE_NOT_FOUND');
    assertProblem(await call('POST', `/messages/${res.json().id}/move`, { to: 'Nowhere' }), 'FOLDER_NOT_FOUND');
    // the target folder is deleted between the service finding it and the MoveItem: ErrorToFolderNotFound
    const doomed = box.addFolder('inbox', 'Doomed target');
    world.ews.beforeAnswer = (operation, mailbox) => {
      if (operation === 'MoveItem') mailbox.folders.splice(mailbox.folders.indexOf(doomed), 1);
    };
    try {
      assertProblem(await call('POST', `/messages/${res.json().id}/move`, { to: 'Inbox/Doomed target' }), 'FOLDER_NOT_FOUND');
    } finally {
      world.ews.beforeAnswer = undefined;
    }
    assert.equal(m.folderId, target.id, 'nothing moved by the refused calls');
  });

  test('move on Exchange 2010 (before SP1): no ReturnNewItemIds (the schema has none), the new id is still answered', async () => {
    const m = await seed('inbox', 'move on 2010');
    const from = world.ews.requests.length;
    const res = await call('POST', `/messages/${encodeId(m.id)}/move`, { to: 'Archive' }, 'e2010');
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { id: encodeId(m.id), folder: 'Archive' });
    assert.equal(m.folderId, box.folder('archive').id);
    assert.equal(first(sent(from, 'MoveItem')[0]!.node, 'ReturnNewItemIds'), undefined);
  });

  test('delete: to Deleted Items (MoveToDeletedItems), from there for good (HardDelete), permanent=true for good; a retried delete is 404', async () => {
    const m = await seed('inbox', 'delete me');
    const oldId = encodeId(m.id);
    const from = world.ews.requests.length;
    const res = await call('DELETE', `/messages/${oldId}`);
    assert.equal(res.statusCode, 204, res.body);
    assert.equal(m.folderId, box.folder('deleteditems').id, 'in Deleted Items, with a new id');
    const del = sent(from, 'DeleteItem')[0]!.node;
    assert.equal(attr(del, 'DeleteType'), 'MoveToDeletedItems');
    assert.equal(attr(del, 'SuppressReadReceipts'), 'true', 'deleting unread mail sends no "not read" receipt');
    assertProblem(await call('DELETE', `/messages/${oldId}`), 'MESSAGE_NOT_FOUND');

    // already in Deleted Items: for good
    const inTrash = world.ews.requests.length;
    assert.equal((await call('DELETE', `/messages/${encodeId(m.id)}`)).statusCode, 204);
    assert.equal(attr(sent(inTrash, 'DeleteItem')[0]!.node, 'DeleteType'), 'HardDelete');
    assert.ok(!box.messages.includes(m), 'gone from the mailbox');

    const p = await seed('inbox', 'delete me for good');
    const perm = world.ews.requests.length;
    assert.equal((await call('DELETE', `/messages/${encodeId(p.id)}?permanent=true`)).statusCode, 204);
    assert.equal(attr(sent(perm, 'DeleteItem')[0]!.node, 'DeleteType'), 'HardDelete');
    assert.ok(!box.messages.includes(p));
    assert.equal(sent(perm, 'GetItem').length, 0, 'permanent needs no look at the folder first');
    assertProblem(await call('DELETE', `/messages/${encodeId(p.id)}?permanent=true`), 'MESSAGE_NOT_FOUND');
  });

  test('bulk move by subject: one FindItem with the restriction, MoveItem in batches of 100, exactly those moved with their new ids', async () => {
    const source = box.addFolder('inbox', 'Bulk');
    const target = box.addFolder('inbox', 'Bulk done');
    const wanted: FakeMessage[] = [];
    const others: FakeMessage[] = [];
    for (let i = 0; i < 260; i += 1) {
      if (i % 2 === 0) wanted.push(await seed(source, `Invoice ${i} ${SUBJECT_MARKER}`));
      else others.push(await seed(source, `Newsletter ${i}`));
    }
    const oldIds = new Map(wanted.map((m) => [m, encodeId(m.id)]));
    const from = world.ews.requests.length;
    const res = await call('POST', '/messages/move', { folder: 'Inbox/Bulk', where: { subject: 'invoice' }, to: 'Inbox/Bulk done' });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as { moved: number; messages: { id: string; newId: string }[] };
    assert.equal(body.moved, wanted.length);
    assert.deepEqual(new Set(inFolder(target)), new Set(wanted), 'exactly the matching messages moved');
    assert.deepEqual(new Set(inFolder(source)), new Set(others), 'the others stayed');
    assert.deepEqual(
      body.messages.map((x) => [x.id, x.newId]).sort(),
      wanted.map((m) => [oldIds.get(m), encodeId(m.id)]).sort(),
      'each message with its old and new id',
    );

    const finds = sent(from, 'FindItem');
    assert.equal(finds.length, 1, 'one FindItem');
    assert.match(finds[0]!.xml, /<t:Contains ContainmentMode="Substring" ContainmentComparison="IgnoreCase"><t:FieldURI FieldURI="item:Subject"><\/t:FieldURI><t:Constant Value="invoice">/);
    const moves = sent(from, 'MoveItem').map((m) => all(first(m.node, 'ItemIds'), 'ItemId').length);
    assert.deepEqual(moves, [100, 30], 'batches of 100 ids');
    const again = await call('POST', '/messages/move', { folder: 'Inbox/Bulk', where: { subject: 'invoice' }, to: 'Inbox/Bulk done' });
    assert.deepEqual(again.json(), { moved: 0, messages: [] }, 'a retried bulk call finds nothing left to do');
  });

  test('bulk update and delete: seen by status, flagged, deleted to Deleted Items by sender; the counts are what the fake shows', async () => {
    const folder = box.addFolder('inbox', 'Mixed');
    for (let i = 0; i < 200; i += 1) await seed(folder, `mixed ${i}`, { isRead: i % 3 === 0, from: i % 5 === 0 ? 'spam@junk.test' : 'friend@example.test' });
    const unread = inFolder(folder).filter((m) => !m.isRead);
    const from = world.ews.requests.length;
    const res = await call('POST', '/messages/update', { folder: 'Inbox/Mixed', where: { status: 'unread' }, seen: true });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { updated: unread.length });
    assert.ok(inFolder(folder).every((m) => m.isRead), 'all read now');
    const updates = sent(from, 'UpdateItem');
    assert.deepEqual(updates.map((u) => all(first(u.node, 'ItemChanges'), 'ItemChange').length), [100, unread.length - 100]);
    for (const u of updates) assert.equal(attr(u.node, 'SuppressReadReceipts'), 'true');

    const flag = await call('POST', '/messages/update', { folder: 'Inbox/Mixed', where: { from: 'spam@' }, flagged: true });
    assert.deepEqual(flag.json(), { updated: 40 });
    assert.deepEqual(inFolder(folder).filter((m) => m.flagStatus === 2).map((m) => m.from?.address), Array(40).fill('spam@junk.test'));

    const del = world.ews.requests.length;
    const gone = await call('POST', '/messages/delete', { folder: 'Inbox/Mixed', where: { from: 'spam@junk.test' } });
    assert.deepEqual(gone.json(), { deleted: 40 });
    assert.equal(inFolder(folder).length, 160);
    assert.equal(inFolder('deleteditems').filter((m) => m.from?.address === 'spam@junk.test').length, 40);
    assert.equal(attr(sent(del, 'DeleteItem')[0]!.node, 'DeleteType'), 'MoveToDeletedItems');
    const purge = world.ews.requests.length;
    const purged = await call('POST', '/messages/delete', { folder: 'Deleted Items', where: { from: 'spam@junk.test' } });
    assert.deepEqual(purged.json(), { deleted: 40 });
    assert.equal(attr(sent(purge, 'DeleteItem')[0]!.node, 'DeleteType'), 'HardDelete', 'from Deleted Items: for good');
  });

  test('a bulk move that stops midway says what it did (partial); per-item errors are reported; a message gone meanwhile is skipped', async () => {
    const folder = box.addFolder('inbox', 'Partial');
    const msgs: FakeMessage[] = [];
    for (let i = 0; i < 250; i += 1) msgs.push(await seed(folder, `partial ${i}`));
    // Exchange refuses one message of the second batch (its quota), inside an HTTP 200
    world.ews.itemErrors.set(msgs[150]!.id, 'ErrorQuotaExceeded');
    // another client deletes one of the first batch between the FindItem and the MoveItem
    const vanishing = msgs[10]!;
    world.ews.beforeAnswer = (operation, mailbox) => {
      if (operation === 'MoveItem' && mailbox.messages.includes(vanishing)) mailbox.remove(vanishing);
    };
    try {
      const res = await call('POST', '/messages/move', { folder: 'Inbox/Partial', where: {}, to: 'Archive' });
      const problem = assertProblem(res, 'MAIL_PROTOCOL_ERROR');
      assert.match(String(problem.detail), /ErrorQuotaExceeded/);
      const partial = problem.partial as { moved: number; messages: { id: string; newId: string }[] };
      // 99 of the first batch (one had vanished), 99 of the second (one refused); the third was not tried
      assert.equal(partial.moved, 198);
      assert.equal(partial.messages.length, 198);
      const archived = inFolder('archive').filter((m) => msgs.includes(m));
      assert.equal(archived.length, 198);
      assert.deepEqual(new Set(partial.messages.map((x) => x.newId)), new Set(archived.map((m) => encodeId(m.id))));
      assert.equal(msgs[150]!.folderId, folder.id, 'the refused one stayed');
    } finally {
      world.ews.itemErrors.clear();
      world.ews.beforeAnswer = undefined;
    }
    // retrying is safe: the filter selects what is left
    const retry = await call('POST', '/messages/move', { folder: 'Inbox/Partial', where: {}, to: 'Archive' });
    assert.deepEqual(retry.json().moved, 51);
    assert.equal(inFolder(folder).length, 0);

    // the connection fails after the first batch: the problem still says what was done
    for (let i = 0; i < 150; i += 1) await seed(folder, `partial again ${i}`);
    world.ews.mailHostility = { operation: 'MoveItem', after: 1, status: 502, body: '<html>Bad gateway</html>' };
    try {
      const res = await call('POST', '/messages/move', { folder: 'Inbox/Partial', where: {}, to: 'Archive' });
      assert.equal(res.statusCode, 502, res.body);
      assert.match(res.json().code, /^MAIL_/);
      assert.equal(res.json().partial.moved, 100);
      assert.equal(inFolder(folder).length, 50);
    } finally {
      world.ews.mailHostility = undefined;
    }
    const inspect = await app.inject({ method: 'GET', url: '/v1/sessions/ews-change' });
    assert.ok(['connected', 'reconnecting'].includes(inspect.json().state));
  });

  test('no password or message content in any log line; each change logged with its operation and count', () => {
    assertNoSecrets(logs, [...world.secrets(), SUBJECT_MARKER, 'Invoice 1', 'move me'], 'logs');
    const changes = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'mail changed');
    assert.ok(changes.some((l) => l.operation === 'moveMany' && l.count === 130));
    assert.ok(changes.some((l) => l.operation === 'delete' && l.count === 1));
  });
});
