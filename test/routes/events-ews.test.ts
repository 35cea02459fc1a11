import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { build, type TestApp } from '../helper.js';
import { compose } from '../harness/compose.js';
import { USERS, startEwsWorld, type EwsWorld } from '../harness/ews-world.js';
import { attr, first, parseSoap, textOf } from '../harness/fake-ews-mail.js';
import type { FakeFolder, FakeMailbox } from '../harness/fake-ews-store.js';
import { openEventStream, type SseEvent } from '../harness/sse-client.js';
import { encodeId } from '../../src/domain/mail.js';

/** A webhook receiver on loopback that keeps what it was sent. */
async function receiver() {
  const deliveries: { body: string; signature: string }[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      deliveries.push({ body, signature: String(req.headers['x-msb-signature']) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { deliveries, url: `http://127.0.0.1:${port}/hooks/mail`, close: () => new Promise((r) => server.close(r)) };
}

function verified(secret: string, d: { body: string; signature: string }): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(d.signature);
  return m !== null && createHmac('sha256', secret).update(`${m[1]}.${d.body}`).digest('hex') === m[2];
}

/** New mail through EWS sessions: SyncFolderItems polled at MSB_WATCH_INTERVAL_MS, as SSE events and webhooks. */
describe('EWS sessions: events from SyncFolderItems', () => {
  let world: EwsWorld;
  let box: FakeMailbox;
  let invoices: FakeFolder;
  let app: TestApp['app'];
  let port: number;
  let hook: Awaited<ReturnType<typeof receiver>>;
  let stream: ReturnType<typeof openEventStream>;
  const secret = 'an-ews-webhook-secret-0123456789';
  const closers: (() => Promise<void>)[] = [];
  const of = (type: string) => stream.events.filter((e) => e.type === type);
  const arrive = async (folder: FakeFolder | string, subject: string) =>
    box.addMessage(folder, await compose({ from: 'Vendor <vendor@example.test>', to: USERS.alice.name, subject, text: 'x' }));
  const syncs = (from: number) => world.ews.requests.slice(from).map((r) => parseSoap(r.body)).filter((s) => s?.operation === 'SyncFolderItems').map((s) => s!.node);

  before(async () => {
    world = await startEwsWorld();
    box = world.ews.store(USERS.alice.name);
    invoices = box.addFolder('inbox', 'Invoices');
    // more than one SyncFolderItems page (512) is there already: the baseline, never reported
    for (let i = 0; i < 600; i += 1) await arrive('inbox', `old ${i}`);
    hook = await receiver();
    ({ app } = await build({ after: (fn) => void closers.push(fn as () => Promise<void>) }, { ...world.env, MSB_WATCH_INTERVAL_MS: '150' }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as { port: number }).port;
    stream = openEventStream(port, '/v1/events?session=ews-watch');
    assert.equal((await stream.ready).statusCode, 200);
  });
  after(async () => {
    stream?.close();
    for (const close of closers) await close();
    await hook?.close();
    await world?.close();
  });

  test('the baseline at start reports nothing of what is there; new mail is message.new (SSE and webhook) with its summary', async () => {
    const from = world.ews.requests.length;
    const res = await app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: {
        name: 'ews-watch', type: 'ews', url: world.ews.url, username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'basic' },
        watch: ['INBOX', 'Inbox/Invoices'], webhook: { url: hook.url, secret },
      },
    });
    assert.equal(res.statusCode, 201, res.body);
    await stream.waitFor('connected', (e) => e.some((x) => x.type === 'session.state' && x.body.data.state === 'connected'));
    // a few polls go by with nothing new
    await sleep(600);
    assert.equal(of('message.new').length, 0, 'what was there before is not new');
    const calls = syncs(from);
    const folderOf = (s: Record<string, unknown>) => attr(first(first(s, 'SyncFolderId'), 'FolderId'), 'Id');
    for (const folder of [box.folder('inbox'), invoices]) {
      const mine = calls.filter((s) => folderOf(s) === folder.id);
      assert.ok(mine.length >= 2, `${folder.name}: the baseline, then polls`);
      assert.equal(first(mine[0], 'SyncState'), undefined, `${folder.name}: the first call has no SyncState`);
      assert.ok(mine.slice(1).every((s) => textOf(first(s, 'SyncState')).length > 0), `${folder.name}: later calls continue from the SyncState`);
    }
    assert.equal(textOf(first(calls[0], 'MaxChangesReturned')), '512');
    // 600 messages: the Inbox baseline takes two pages, both at start, before the first poll
    const inbox = calls.filter((s) => folderOf(s) === box.folder('inbox').id);
    assert.equal(calls.indexOf(inbox[1]!) < calls.findIndex((s) => folderOf(s) === invoices.id), true, 'the Inbox baseline is done before the next folder');

    const m = await arrive('inbox', 'Invoice 9001');
    await stream.waitFor('message.new', (e) => e.some((x) => x.type === 'message.new' && x.body.data.subject === 'Invoice 9001'));
    const event = of('message.new').find((x) => x.body.data.subject === 'Invoice 9001')!;
    assert.equal(event.body.session, 'ews-watch');
    assert.equal(event.id, event.body.id);
    assert.deepEqual(
      [event.body.data.id, event.body.data.folder, event.body.data.from, event.body.data.seen],
      [encodeId(m.id), 'Inbox', { name: 'Vendor', address: 'vendor@example.test' }, false],
    );
    const filed = await arrive(invoices, 'Filed invoice');
    await stream.waitFor('message.new in the second folder', (e) => e.some((x) => x.type === 'message.new' && x.body.data.id === encodeId(filed.id)));
    assert.equal(of('message.new').find((x) => x.body.data.id === encodeId(filed.id))!.body.data.folder, 'Inbox/Invoices');
    assert.equal(of('message.new').length, 2, 'each new message once, none of the old ones');

    const delivered = await until(() => hook.deliveries.find((d) => JSON.parse(d.body).type === 'message.new' && JSON.parse(d.body).data.subject === 'Invoice 9001'));
    assert.ok(verified(secret, delivered), 'the webhook delivery is signed');
    assert.equal(JSON.parse(delivered.body).data.id, encodeId(m.id));
  });

  test('a message deleted or moved away is message.deleted with its id and folder', async () => {
    const m = await arrive('inbox', 'short-lived');
    await stream.waitFor('new', (e) => e.some((x) => x.type === 'message.new' && x.body.data.id === encodeId(m.id)));
    const id = encodeId(m.id);
    box.remove(m);
    await stream.waitFor('message.deleted', (e) => e.some((x) => x.type === 'message.deleted' && x.body.data.id === id));
    assert.deepEqual(of('message.deleted').find((x) => x.body.data.id === id)!.body.data, { id, folder: 'Inbox' });

    const moving = await arrive('inbox', 'moving away');
    await stream.waitFor('new', (e) => e.some((x) => x.type === 'message.new' && x.body.data.id === encodeId(moving.id)));
    const movedId = encodeId(moving.id);
    // moved by the service itself: the watcher sees it leave the Inbox
    const moved = await app.inject({ method: 'POST', url: `/v1/sessions/ews-watch/messages/${movedId}/move`, payload: { to: 'Archive' } });
    assert.equal(moved.statusCode, 200, moved.body);
    await stream.waitFor('message.deleted of the moved one', (e) => e.some((x) => x.type === 'message.deleted' && x.body.data.id === movedId));
    assert.ok(!of('message.new').some((x) => x.body.data.id === moved.json().id), 'Archive is not watched');
  });

  test('a SyncState Exchange refuses (ErrorInvalidSyncStateData): mailbox.reset, a new baseline, and new mail is reported again', async () => {
    const before = of('message.new').length;
    box.syncEpoch += 1;
    await stream.waitFor('mailbox.reset', (e) => e.some((x) => x.type === 'mailbox.reset' && x.body.data.folder === 'Inbox'));
    await stream.waitFor('mailbox.reset of the second folder', (e) => e.some((x) => x.type === 'mailbox.reset' && x.body.data.folder === 'Inbox/Invoices'));
    await sleep(500);
    assert.equal(of('message.new').length, before, 'the new baseline reports nothing');
    await arrive('inbox', 'after the reset');
    await stream.waitFor('message.new after the reset', (e: SseEvent[]) => e.some((x) => x.type === 'message.new' && x.body.data.subject === 'after the reset'));
    assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions/ews-watch' })).json().state, 'connected');
  });

  test('GET /messages?wait= answers as soon as new mail arrives', async () => {
    const waiting = app.inject({ method: 'GET', url: '/v1/sessions/ews-watch/messages?wait=20&subject=waited%20for' });
    await sleep(300);
    const m = await arrive('inbox', 'waited for');
    const res = await waiting;
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().messages.map((x: { id: string }) => x.id), [encodeId(m.id)]);
  });
});

async function until<T>(fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail('timed out waiting for a webhook delivery');
    await sleep(25);
  }
}
