import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encodeId } from '../../src/domain/mail.js';
import { build, type TestApp } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import type { GraphRequestRecord } from '../harness/fake-graph.js';
import type { FakeMailbox, FakeMessage } from '../harness/fake-graph-mailbox.js';
import { BODY_MARKERS, compose, seedFolders, seedInbox, type PlainSeed } from '../harness/graph-mail-seed.js';
import { USERS, assertNoSecrets, startGraphWorld, type GraphWorld } from '../harness/graph-world.js';

type App = TestApp['app'];

/** Changing mail of outlook sessions through the HTTP API: every wire request asserted, and the fake's state after. */
describe('changing mail of outlook sessions (Microsoft Graph)', () => {
  let world: GraphWorld;
  let app: App;
  let logs: string[];
  let mb: FakeMailbox;
  let inbox: PlainSeed[];
  const closers: (() => unknown)[] = [];
  const mailbox = USERS.alice.name;
  const base = `/v1.0/users/${mailbox}`;

  before(async () => {
    world = await startGraphWorld();
    mb = world.graph.mailbox(mailbox);
    inbox = await seedInbox(mb);
    await seedFolders(mb);
    const built = await build({ after: (fn: () => unknown) => void closers.push(fn) } as never, { ...world.env, MSB_COMMAND_TIMEOUT_MS: '8000' });
    ({ app, logs } = built);
    for (const name of ['mail', 'mail2']) {
      const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name, type: 'outlook', mailbox } });
      assert.equal(res.statusCode, 201, res.body);
    }
  });
  after(async () => {
    for (const close of closers) await close();
    await world?.close();
  });

  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, name = 'mail') =>
    app.inject({ method, url: `/v1/sessions/${name}${url}`, ...(payload !== undefined ? { payload: payload as object } : {}) });
  const since = (from: number) => world.graph.requests.slice(from);
  const folderOf = (m: FakeMessage) => mb.folders.get(m.folderId)!.displayName;
  const wire = (records: GraphRequestRecord[]) => records.map((r) => [r.method, r.path.replace(base, ''), r.body]);

  async function seed(folder: string, subject: string, count: number, at = Date.UTC(2026, 10, 10)): Promise<FakeMessage[]> {
    const out: FakeMessage[] = [];
    for (let i = 0; i < count; i++) {
      const mime = await compose({ from: 'bulk@acme.test', to: mailbox, subject: `${subject} ${i}`, text: `${BODY_MARKERS[0]} ${i}` });
      out.push(await mb.addMessage(folder, mime, { receivedDateTime: new Date(at + i * 1000).toISOString().replace('.000Z', 'Z') }));
    }
    return out;
  }

  test('PATCH seen and flagged: the wire body, the fake\'s state, the updated summary', async () => {
    const target = inbox.find((s) => !s.isRead)!.message;
    const id = encodeId(target.immutableId);
    const from = world.graph.requests.length;
    const res = await call('PATCH', `/messages/${id}`, { seen: true, flagged: true });
    assert.equal(res.statusCode, 200, res.body);
    const summary = res.json();
    assert.deepEqual([summary.id, summary.seen, summary.flagged, summary.folder], [id, true, true, 'Inbox']);
    assert.deepEqual([target.isRead, target.flagged], [true, true]);
    const seen = since(from);
    assert.deepEqual(seen[0]!.method, 'PATCH');
    assert.equal(seen[0]!.path, `${base}/messages/${target.immutableId}`);
    assert.deepEqual(seen[0]!.body, { isRead: true, flag: { flagStatus: 'flagged' } });
    assert.match(seen[0]!.prefer!, /IdType="ImmutableId"/);
    assert.equal(seen[1]!.method, 'GET', 'the summary is read back as the list shows it');

    const off = await call('PATCH', `/messages/${id}`, { flagged: false });
    assert.equal(off.json().flagged, false);
    assert.deepEqual(since(from).filter((r) => r.method === 'PATCH').at(-1)!.body, { flag: { flagStatus: 'notFlagged' } });
    assert.equal(target.isRead, true, 'a field not given stays as it is');
    assertProblem(await call('PATCH', `/messages/${encodeId('AAkALgAAnotThere=')}`, { seen: true }), 'MESSAGE_NOT_FOUND');
  });

  test('move to a folder path: POST .../move with the folder\'s id; the immutable id stays; unknown folders send nothing', async () => {
    const target = inbox[1]!.message;
    const id = encodeId(target.immutableId);
    const from = world.graph.requests.length;
    const res = await call('POST', `/messages/${id}/move`, { to: 'inbox/invoices/2026' });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { id, folder: 'Inbox/Invoices/2026' }, 'Prefer: IdType="ImmutableId": the id survives the move');
    const destination = mb.folder('Inbox/Invoices/2026')!;
    assert.equal(target.folderId, destination.id);
    const move = since(from).find((r) => r.method === 'POST')!;
    assert.equal(move.path, `${base}/messages/${target.immutableId}/move`);
    assert.deepEqual(move.body, { destinationId: destination.id });
    assert.equal((await call('GET', `/messages/${id}`)).json().folder, 'Inbox/Invoices/2026', 'the id resolves in its new folder');

    const again = await call('POST', `/messages/${id}/move`, { to: 'Inbox' });
    assert.deepEqual(again.json(), { id, folder: 'Inbox' });
    assert.equal(folderOf(target), 'Inbox');
    const before = world.graph.requests.filter((r) => r.method === 'POST').length;
    assertProblem(await call('POST', `/messages/${id}/move`, { to: 'Nowhere/At all' }), 'FOLDER_NOT_FOUND');
    assert.equal(world.graph.requests.filter((r) => r.method === 'POST').length, before, 'nothing was moved');
    assertProblem(await call('POST', `/messages/${encodeId('AAkALgAAnotThere=')}/move`, { to: 'Archive' }), 'MESSAGE_NOT_FOUND');
  });

  test('delete: a move to Deleted Items; a retried delete answers 404; permanent goes through permanentDelete', async () => {
    const [victim, inTrash] = await seed('inbox', 'Delete me', 2);
    const trash = mb.folder('deleteditems')!;
    const id = encodeId(victim!.immutableId);
    let from = world.graph.requests.length;
    const res = await call('DELETE', `/messages/${id}`);
    assert.equal(res.statusCode, 204, res.body);
    assert.equal(victim!.folderId, trash.id, 'in Deleted Items, not gone');
    const writes = since(from).filter((r) => r.method !== 'GET');
    assert.deepEqual(wire(writes), [['POST', `/messages/${victim!.immutableId}/move`, { destinationId: trash.id }]]);

    from = world.graph.requests.length;
    assertProblem(await call('DELETE', `/messages/${id}`), 'MESSAGE_NOT_FOUND');
    assert.deepEqual(since(from), [], 'a retried delete sends nothing, and never deletes it for good');
    assert.equal(victim!.folderId, trash.id);

    from = world.graph.requests.length;
    assert.equal((await call('DELETE', `/messages/${id}?permanent=true`)).statusCode, 204);
    assert.deepEqual(wire(since(from)), [['POST', `/messages/${victim!.immutableId}/permanentDelete`, undefined]]);
    assert.equal(mb.find(victim!.immutableId), undefined, 'removed for good');
    assertProblem(await call('DELETE', `/messages/${id}?permanent=true`), 'MESSAGE_NOT_FOUND');

    // a message that is in Deleted Items already (put there by someone else) is removed for good
    mb.move(inTrash!.immutableId, 'deleteditems');
    from = world.graph.requests.length;
    assert.equal((await call('DELETE', `/messages/${encodeId(inTrash!.immutableId)}`)).statusCode, 204);
    assert.deepEqual(wire(since(from).filter((r) => r.method !== 'GET')), [['POST', `/messages/${inTrash!.immutableId}/permanentDelete`, undefined]]);
    assert.equal(mb.find(inTrash!.immutableId), undefined);
  });

  test('bulk move by subject filter moves exactly those: ids listed over all pages, then JSON batches of 20', async () => {
    const matching = await seed('inbox', 'Quarterly statement', 1030);
    const others = await seed('inbox', 'Quarterly meeting', 5);
    const archive = mb.folder('archive')!;
    const from = world.graph.requests.length;
    const res = await call('POST', '/messages/move', { where: { subject: 'quarterly statement' }, to: 'Archive' });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.moved, matching.length);
    assert.deepEqual(new Set(body.messages.map((m: { id: string }) => m.id)), new Set(matching.map((m) => encodeId(m.immutableId))));
    assert.ok(body.messages.every((m: { id: string; newId: string }) => m.newId === m.id), 'immutable ids: the new id is the old one');
    assert.ok(matching.every((m) => m.folderId === archive.id), 'every matching message is in Archive');
    assert.ok(others.every((m) => folderOf(m) === 'Inbox') && inbox.every((s) => folderOf(s.message) !== 'Archive'), 'no other message moved');

    const seen = since(from);
    const listings = seen.filter((r) => r.method === 'GET' && r.path.endsWith('/messages'));
    assert.equal(listings.length, 2, 'two pages of ids');
    assert.deepEqual([listings[0]!.query.$select, listings[0]!.query.$top, listings[0]!.query.$orderby], ['id', '1000', 'receivedDateTime asc']);
    assert.equal(listings[0]!.query.$filter, "receivedDateTime ge 1900-01-01T00:00:00Z and contains(subject,'quarterly statement')");
    assert.equal(listings[1]!.query.$skip, '1000');
    const batches = seen.filter((r) => r.path === '/v1.0/$batch');
    assert.equal(batches.length, Math.ceil(matching.length / 20));
    const firstListed = seen.indexOf(listings[1]!);
    assert.ok(seen.indexOf(batches[0]!) > firstListed, 'every id is listed before anything moves');
    for (const b of batches) {
      const requests = (b.body as { requests: { id: string; method: string; url: string; headers: Record<string, string>; body: unknown }[] }).requests;
      assert.ok(requests.length <= 20);
      for (const r of requests) {
        assert.equal(r.method, 'POST');
        assert.match(decodeURIComponent(r.url), new RegExp(`^/users/${mailbox.replace('.', '\\.')}/messages/[^/]+/move$`));
        assert.deepEqual(r.body, { destinationId: archive.id });
        assert.deepEqual(r.headers, { Prefer: 'IdType="ImmutableId"', 'Content-Type': 'application/json' });
      }
    }
    assert.equal(seen.filter((r) => r.inBatch && r.status === 201).length, matching.length);
    assert.ok(seen.every((r) => r.status !== 429), 'Graph never had to refuse one');
    const done = logs.filter((l) => l.includes('"operation":"moveMany"'));
    assert.ok(done.some((l) => l.includes(`"count":${matching.length}`)), 'the change is logged with its count');
  });

  test('a batch with one 429 inside: that request alone is sent again after its Retry-After, and the answer counts it', async () => {
    const messages = await seed('inbox', 'Throttled update', 7);
    const victim = messages[3]!;
    world.graph.script.push({ match: new RegExp(`^PATCH .*/messages/${victim.immutableId}$`), status: 429, retryAfter: '1', code: 'ApplicationThrottled', message: 'Application is over its MailboxConcurrency limit.' });
    const from = world.graph.requests.length;
    const res = await call('POST', '/messages/update', { where: { subject: 'throttled update', status: 'unread' }, seen: true });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { updated: 7 });
    assert.ok(messages.every((m) => m.isRead));
    const batches = since(from).filter((r) => r.path === '/v1.0/$batch');
    assert.equal(batches.length, 2);
    const second = (batches[1]!.body as { requests: { url: string; body: unknown }[] }).requests;
    assert.deepEqual(second.map((r) => [decodeURIComponent(r.url), r.body]), [[`/users/${mailbox}/messages/${victim.immutableId}`, { isRead: true }]]);
    const inner = since(from).filter((r) => r.inBatch && r.path.endsWith(victim.immutableId));
    assert.deepEqual(inner.map((r) => [r.status, r.retryAfter]), [[429, '1'], [200, undefined]]);
    assert.ok(batches[1]!.at - inner[0]!.at >= 1000, `sent again ${(batches[1]!.at - inner[0]!.at).toFixed(0)} ms after Retry-After: 1`);
  });

  test('a bulk call that stops midway answers with what was done (partial); retrying does the rest', async () => {
    const messages = await seed('inbox', 'Partial delete', 25);
    const trash = mb.folder('deleteditems')!;
    // the 23rd (in the second batch) stays throttled longer than the call may wait
    world.graph.script.push({ match: new RegExp(`^POST .*/messages/${messages[22]!.immutableId}/move$`), status: 429, retryAfter: '120' });
    const res = await call('POST', '/messages/delete', { where: { subject: 'partial delete' } });
    const problem = assertProblem(res, 'GRAPH_THROTTLED');
    assert.equal(problem.retryAfterSeconds, 120);
    const partial = problem.partial as { deleted: number };
    assert.equal(partial.deleted, 24, 'the first batch and the rest of the second were done');
    assert.equal(messages.filter((m) => m.folderId === trash.id).length, 24);
    assert.equal(messages[22]!.folderId, mb.folder('inbox')!.id);

    const retry = await call('POST', '/messages/delete', { where: { subject: 'partial delete' } });
    assert.deepEqual(retry.json(), { deleted: 1 }, 'the filter selects what is left');
    assert.ok(messages.every((m) => m.folderId === trash.id));

    const from = world.graph.requests.length;
    const forGood = await call('POST', '/messages/delete', { folder: 'Deleted Items', where: { subject: 'partial delete' } });
    assert.deepEqual(forGood.json(), { deleted: 25 }, 'in Deleted Items, a delete is for good');
    assert.ok(messages.every((m) => mb.find(m.immutableId) === undefined));
    const urls = since(from).filter((r) => r.inBatch).map((r) => r.path);
    assert.ok(urls.length === 25 && urls.every((u) => u.endsWith('/permanentDelete')));
  });

  test('bulk calls share the mailbox\'s 4 concurrent requests with other sessions: a batch holds 4, nothing is refused', async () => {
    await seed('inbox', 'Concurrent flag', 60);
    world.graph.latencyMs = 15;
    world.graph.maxInFlight.clear();
    const from = world.graph.requests.length;
    try {
      const [bulk, ...reads] = await Promise.all([
        call('POST', '/messages/update', { where: { subject: 'concurrent flag' }, flagged: true }),
        ...Array.from({ length: 6 }, () => call('GET', '/messages?limit=5', undefined, 'mail2')),
      ]);
      assert.deepEqual(bulk!.json(), { updated: 60 });
      for (const r of reads) assert.equal(r.statusCode, 200, r.body);
    } finally {
      world.graph.latencyMs = 0;
    }
    assert.ok((world.graph.maxInFlight.get(mailbox) ?? 0) <= 4, `at most 4 at once, saw ${world.graph.maxInFlight.get(mailbox)}`);
    assert.deepEqual(since(from).filter((r) => r.status === 429), []);
  });

  test('hostile batch answers: not JSON, or a response left out, stop the call with what was done; nothing crashes', async () => {
    const messages = await seed('inbox', 'Hostile batch', 3);
    world.graph.script.push({ match: /^POST \/v1\.0\/\$batch/, status: 200, raw: '<html>gateway</html>' });
    const notJson = assertProblem(await call('POST', '/messages/update', { where: { subject: 'hostile batch' }, seen: true }), 'MAIL_PROTOCOL_ERROR');
    assert.deepEqual(notJson.partial, { updated: 0 });
    world.graph.script.push({ match: /^POST \/v1\.0\/\$batch/, rewrite: (body) => ({ responses: (body.responses as unknown[]).slice(1) }) });
    const leftOut = assertProblem(await call('POST', '/messages/update', { where: { subject: 'hostile batch' }, seen: true }), 'MAIL_PROTOCOL_ERROR');
    assert.match(String(leftOut.detail), /left out request/);
    assert.deepEqual((await call('POST', '/messages/update', { where: { subject: 'hostile batch' }, seen: true })).json(), { updated: 3 }, 'a retry does it');
    assert.ok(messages.every((m) => m.isRead));
    assert.equal((await call('GET', '')).json().state, 'connected');
  });

  test('no token, subject or body in any log line', () => {
    assertNoSecrets(logs, [...world.secrets(), ...BODY_MARKERS, 'Quarterly statement', 'Partial delete'], 'log');
  });
});
