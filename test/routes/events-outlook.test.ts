import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { onSseFrames } from '../harness/sse-client.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeId } from '../../src/domain/mail.js';
import { build, type TestApp } from '../helper.js';
import type { FakeMailbox } from '../harness/fake-graph-mailbox.js';
import { compose, seedInbox } from '../harness/graph-mail-seed.js';
import { USERS, startGraphWorld, type GraphWorld } from '../harness/graph-world.js';

type App = TestApp['app'];
interface Received {
  id: string;
  type: string;
  body: { id: string; type: string; session: string; data: Record<string, any> };
}

/** An SSE client on a real socket: parses frames as they arrive. */
function openStream(port: number, path: string) {
  const events: Received[] = [];
  let response: IncomingMessage | undefined;
  const ready = new Promise<IncomingMessage>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      response = res;
      onSseFrames(res, (frame) => {
        if (frame.data) events.push({ id: frame.id!, type: frame.event!, body: JSON.parse(frame.data) });
      });
      resolve(res);
    });
    req.on('error', reject);
    req.end();
  });
  return { ready, events, close: () => response?.destroy() };
}

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = fn();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A webhook receiver on loopback that keeps what it got. */
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
  return { deliveries, url: `http://127.0.0.1:${port}/hook`, close: () => new Promise((r) => server.close(r)) };
}

describe('new mail and work claims on outlook sessions (Graph delta query, categories)', () => {
  let world: GraphWorld;
  let app: App;
  let port: number;
  let mb: FakeMailbox;
  let hook: Awaited<ReturnType<typeof receiver>>;
  const closers: (() => unknown)[] = [];
  const mailbox = USERS.alice.name;
  const secret = 'outlook-webhook-secret-0123456789';
  const env = () => ({ ...world.env, MSB_WATCH_INTERVAL_MS: '150', MSB_EVENTS_HEARTBEAT_MS: '1000', MSB_WEBHOOK_RETRY_DELAYS_MS: '50,50', MSB_RECONNECT_BASE_MS: '20' });

  before(async () => {
    world = await startGraphWorld();
    mb = world.graph.mailbox(mailbox);
    await seedInbox(mb);
    mb.addFolder('inbox', 'Invoices');
    hook = await receiver();
    ({ app } = await build({ after: (fn: () => unknown) => void closers.push(fn) } as never, env()));
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as { port: number }).port;
  });
  after(async () => {
    for (const close of closers) await close();
    await hook?.close();
    await world?.close();
  });

  const deltas = () => world.graph.requests.filter((r) => r.path.endsWith('/messages/delta'));
  const add = async (folder: string, subject: string) =>
    mb.addMessage(folder, await compose({ from: 'supplier@acme.test', to: mailbox, subject, text: 'new mail' }));

  test('message.new on SSE and on a webhook for mail added to a watched folder; changes are not new; removals and resets are told', async () => {
    const stream = openStream(port, '/v1/events?session=watch');
    assert.equal((await stream.ready).statusCode, 200);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { name: 'watch', type: 'outlook', mailbox, watch: ['INBOX', 'Inbox/Invoices'], webhook: { url: hook.url, secret } },
    });
    assert.equal(res.statusCode, 201, res.body);
    const baseline = await until('the two baselines', () => (deltas().length >= 2 ? deltas().slice(0, 2) : undefined));
    for (const r of baseline) {
      assert.match(r.query.$filter!, /^receivedDateTime ge \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      assert.equal(r.query.$select, 'id,receivedDateTime');
      assert.match(r.prefer!, /IdType="ImmutableId"/);
      assert.match(r.prefer!, /odata\.maxpagesize=100/);
    }
    await until('a check with the delta link', () => deltas().some((r) => r.query.$deltatoken));

    const fresh = await add('inbox', 'Fresh invoice');
    const event = await until('message.new', () => stream.events.find((e) => e.type === 'message.new'));
    assert.equal(event.body.session, 'watch');
    assert.equal(event.body.data.id, encodeId(fresh.immutableId));
    assert.equal(event.body.data.subject, 'Fresh invoice');
    assert.equal(event.body.data.folder, 'Inbox');
    assert.deepEqual(event.body.data.from, { name: null, address: 'supplier@acme.test' });
    const delivered = await until('the webhook delivery', () => hook.deliveries.find((d) => JSON.parse(d.body).type === 'message.new'));
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(delivered.signature)!;
    assert.equal(createHmac('sha256', secret).update(`${t}.${delivered.body}`).digest('hex'), v1, 'the webhook signature verifies');
    assert.equal(JSON.parse(delivered.body).data.id, event.body.data.id);

    // a change to a message (read, flagged) is not new mail; neither is anything that was there before
    fresh.flagged = true;
    mb.touch(fresh);
    const checks = deltas().length;
    await until('two more checks', () => deltas().length >= checks + 2);
    assert.equal(stream.events.filter((e) => e.type === 'message.new').length, 1, 'only the new message was reported');

    const filed = await add('Inbox/Invoices', 'Filed by a rule');
    const second = await until('message.new in the other folder', () => stream.events.find((e) => e.type === 'message.new' && e.body.data.subject === 'Filed by a rule'));
    assert.equal(second.body.data.folder, 'Inbox/Invoices');
    assert.equal(second.body.data.id, encodeId(filed.immutableId));

    mb.move(fresh.immutableId, 'archive');
    const deleted = await until('message.deleted', () => stream.events.find((e) => e.type === 'message.deleted'));
    assert.deepEqual(deleted.body.data, { id: encodeId(fresh.immutableId), folder: 'Inbox' });

    world.graph.expireDeltaTokens();
    const resets = await until('mailbox.reset for both folders', () => {
      const r = stream.events.filter((e) => e.type === 'mailbox.reset');
      return r.length >= 2 ? r : undefined;
    });
    assert.deepEqual(resets.map((e) => e.body.data.folder).sort(), ['Inbox', 'Inbox/Invoices']);
    const later = await add('inbox', 'After the reset');
    await until('message.new after the reset', () => stream.events.find((e) => e.type === 'message.new' && e.body.data.id === encodeId(later.immutableId)));
    assert.equal(stream.events.filter((e) => e.type === 'message.new').length, 3, 'the new baseline reported nothing old');
    stream.close();
    assert.equal((await app.inject({ method: 'DELETE', url: '/v1/sessions/watch' })).statusCode, 204);
  });

  test('a delta link to another host is not followed nor kept: the check fails, the session reconnects, the watch goes on', async () => {
    const stream = openStream(port, '/v1/events?session=hostile');
    await stream.ready;
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'hostile', type: 'outlook', mailbox } })).statusCode, 201);
    await until('a check with the delta link', () => deltas().some((r) => r.query.$deltatoken));
    world.graph.script.push({ match: /\/messages\/delta\?\$deltatoken=/, rewrite: (body) => ({ ...body, '@odata.deltaLink': 'https://evil.test/v1.0/me/mailFolders/x/messages/delta?$deltatoken=stolen' }) });
    const state = await until('reconnecting', () => stream.events.find((e) => e.type === 'session.state' && e.body.data.state === 'reconnecting'));
    assert.equal(state.body.data.code, 'MAIL_PROTOCOL_ERROR');
    await until('connected again', () => stream.events.filter((e) => e.type === 'session.state' && e.body.data.state === 'connected').length >= 2 || undefined);
    const after = await add('inbox', 'After the hostile answer');
    const event = await until('message.new', () => stream.events.find((e) => e.type === 'message.new'));
    assert.equal(event.body.data.id, encodeId(after.immutableId));
    stream.close();
    assert.equal((await app.inject({ method: 'DELETE', url: '/v1/sessions/hostile' })).statusCode, 204);
  });

  test('claims tag the message with a category (kept beside the others); a second claim, even in another process, does not get it', async () => {
    const blue = await mb.addMessage('inbox', await compose({ from: 'a@acme.test', to: mailbox, subject: 'Claim me 1', text: 'x' }), { categories: ['Blue category'] });
    const plain = await mb.addMessage('inbox', await compose({ from: 'a@acme.test', to: mailbox, subject: 'Claim me 2', text: 'x' }));
    const done = await mb.addMessage('inbox', await compose({ from: 'a@acme.test', to: mailbox, subject: 'Claim me 3', text: 'x' }), { categories: ['$Processed'] });
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'claims', type: 'outlook', mailbox, watch: [] } })).statusCode, 201);
    const claim = (body: unknown, target: App = app) => target.inject({ method: 'POST', url: '/v1/sessions/claims/claims', payload: body as object });

    const from = world.graph.requests.length;
    const first = await claim({ where: { subject: 'claim me' }, max: 10, leaseSeconds: 60 });
    assert.equal(first.statusCode, 201, first.body);
    const got = first.json();
    assert.deepEqual(got.messages.map((m: { id: string }) => m.id).sort(), [blue, plain].map((m) => encodeId(m.immutableId)).sort(), 'one done before is not handed out');
    const list = world.graph.requests.slice(from).find((r) => r.path.endsWith('/messages'))!;
    assert.equal(list.query.$filter, "receivedDateTime ge 1900-01-01T00:00:00Z and contains(subject,'claim me') and not(categories/any(c:c eq '$Processed'))");
    assert.equal(list.query.$orderby, 'receivedDateTime asc', 'Graph takes the lambda with the rest of the filter and the order');
    assert.deepEqual((await claim({ where: { subject: 'claim me' } })).json().messages, [], 'leased to the first claim');

    const ackFrom = world.graph.requests.length;
    const ack = await app.inject({ method: 'POST', url: `/v1/sessions/claims/claims/${got.claim}/ack`, payload: {} });
    assert.equal(ack.statusCode, 200, ack.body);
    assert.equal(ack.json().acknowledged.length, 2);
    assert.deepEqual(blue.categories, ['Blue category', '$Processed']);
    assert.deepEqual(plain.categories, ['$Processed']);
    assert.deepEqual(done.categories, ['$Processed']);
    const patches = world.graph.requests.slice(ackFrom).filter((r) => r.method === 'PATCH');
    assert.deepEqual(patches.map((r) => r.body).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))), [
      { categories: ['$Processed'] },
      { categories: ['Blue category', '$Processed'] },
    ]);
    assert.deepEqual((await claim({ where: { subject: 'claim me' } })).json().messages, [], 'done is never handed out again');

    // another process (no leases, no memory): the category on the server keeps them done
    const other = await build({ after: (fn: () => unknown) => void closers.push(fn) } as never, env());
    assert.equal((await other.app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'claims', type: 'outlook', mailbox, watch: [] } })).statusCode, 201);
    const fresh = await claim({ where: { subject: 'claim me' } }, other.app);
    assert.equal(fresh.statusCode, 201, fresh.body);
    assert.deepEqual(fresh.json().messages, []);
  });
});
