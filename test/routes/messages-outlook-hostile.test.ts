import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeId } from '../../src/domain/mail.js';
import { build, type TestApp } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { startFakeGraph } from '../harness/fake-graph.js';
import { BODY_MARKERS, seedFolders, seedInbox, type PlainSeed, type RichSeed } from '../harness/graph-mail-seed.js';
import { INBOXES, USERS, assertNoSecrets, startGraphWorld, type GraphWorld } from '../harness/graph-world.js';

type App = TestApp['app'];

/** Throttling and hostile answers while reading through Graph: honoured, bounded, answered with a documented problem. */
describe('outlook reading under throttling and hostile Graph answers', () => {
  let world: GraphWorld;
  let app: App;
  let logs: string[];
  let inbox: PlainSeed[];
  let rich: RichSeed;
  const closers: (() => unknown)[] = [];
  const mailbox = USERS.alice.name;
  const MESSAGES = /^GET \/v1\.0\/users\/[^/]+\/mailFolders\/[^/]+\/messages\?/;

  before(async () => {
    world = await startGraphWorld();
    inbox = await seedInbox(world.graph.mailbox(mailbox));
    rich = await seedFolders(world.graph.mailbox(mailbox));
    const built = await build({ after: (fn: () => unknown) => void closers.push(fn) } as never, { ...world.env, MSB_RECONNECT_BASE_MS: '10', MSB_COMMAND_TIMEOUT_MS: '5000' });
    ({ app, logs } = built);
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'mail', type: 'outlook', mailbox } });
    assert.equal(res.statusCode, 201, res.body);
  });
  after(async () => {
    for (const close of closers) await close();
    await world?.close();
  });

  const get = (url: string, name = 'mail') => app.inject({ method: 'GET', url: `/v1/sessions/${name}${url}` });
  const since = (from: number) => world.graph.requests.slice(from);
  async function connected(name = 'mail'): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if ((await get('')).json().state === 'connected') return;
      await sleep(25);
    }
    assert.fail(`session ${name} did not connect again`);
  }

  test('429 with Retry-After on a page and on a download: the retry waits at least that long', async () => {
    let from = world.graph.requests.length;
    world.graph.script.push({ match: MESSAGES, status: 429, retryAfter: '1', code: 'ApplicationThrottled', message: 'Application is over its MailboxConcurrency limit.' });
    const page = await get('/messages?limit=3');
    assert.equal(page.statusCode, 200, page.body);
    assert.equal(page.json().messages.length, 3);
    let seen = since(from);
    assert.deepEqual(seen.map((r) => r.status), [429, 200]);
    assert.equal(seen[0]!.retryAfter, '1');
    assert.ok(seen[1]!.at - seen[0]!.at >= 1000, `the retry came ${(seen[1]!.at - seen[0]!.at).toFixed(1)} ms after Retry-After: 1`);

    from = world.graph.requests.length;
    world.graph.script.push({ match: /\/\$value$/, status: 429, retryAfter: '1' });
    const raw = await get(`/messages/${encodeId(rich.message.immutableId)}/raw`);
    assert.equal(raw.statusCode, 200);
    assert.ok(raw.rawPayload.equals(rich.mime));
    seen = since(from);
    assert.deepEqual(seen.map((r) => r.status), [429, 200]);
    assert.ok(seen[1]!.at - seen[0]!.at >= 1000);
  });

  test('a Retry-After beyond the budget is answered at once with GRAPH_THROTTLED; the session stays connected', async () => {
    const from = world.graph.requests.length;
    world.graph.script.push({ match: MESSAGES, status: 429, retryAfter: '90', code: 'ApplicationThrottled' });
    const res = await get('/messages');
    const problem = assertProblem(res, 'GRAPH_THROTTLED');
    assert.equal(problem.retryAfterSeconds, 90);
    assert.equal(res.headers['retry-after'], '90');
    assert.equal(since(from).length, 1);
    assert.equal((await get('')).json().state, 'connected');
  });

  test('hostile answers: not JSON, no value, truncated, a nextLink elsewhere or without paging state, header injection', async () => {
    const other = await startFakeGraph({ verifyToken: (t) => world.idp.principal(t), mailboxes: INBOXES });
    try {
      world.graph.script.push({ match: MESSAGES, raw: '<html>It works!</html>' });
      assert.match(String(assertProblem(await get('/messages'), 'MAIL_PROTOCOL_ERROR').detail), /not JSON with a value array/);
      world.graph.script.push({ match: MESSAGES, raw: '{"value": {"not": "an array"}}' });
      assertProblem(await get('/messages'), 'MAIL_PROTOCOL_ERROR');
      world.graph.script.push({ match: /^GET \/v1\.0\/users\/[^/]+\/messages\//, raw: '"just a string"' });
      assertProblem(await get(`/messages/${encodeId(rich.message.immutableId)}`), 'MAIL_PROTOCOL_ERROR');

      world.graph.script.push({ match: MESSAGES, rewrite: (b) => ({ ...b, '@odata.nextLink': `${other.origin}/v1.0/users/${mailbox}/mailFolders/inbox/messages?$skip=3` }) });
      assert.match(String(assertProblem(await get('/messages?limit=3'), 'MAIL_PROTOCOL_ERROR').detail), /nextLink points to another host/);
      world.graph.script.push({ match: MESSAGES, rewrite: (b) => ({ ...b, '@odata.nextLink': `${world.graph.origin}/v1.0/users/${mailbox}/mailFolders/inbox/messages?$top=3` }) });
      assert.match(String(assertProblem(await get('/messages?limit=3'), 'MAIL_PROTOCOL_ERROR').detail), /no usable paging state/);
      world.graph.script.push({ match: /^GET \/v1\.0\/users\/[^/]+\/mailFolders\?/, rewrite: (b) => ({ ...b, '@odata.nextLink': 'https://elsewhere.invalid/v1.0/me/mailFolders?$skip=10' }) });
      assertProblem(await get('/folders'), 'MAIL_PROTOCOL_ERROR');
      assert.equal(other.requests.length, 0, 'nothing went to the other host');

      // junk in the fields of a message: null where the type is wrong, never a crash
      world.graph.script.push({
        match: MESSAGES,
        rewrite: (b) => ({ value: [{ ...(b.value as object[])[0], from: 'someone', toRecipients: [42, null], isRead: 'yes', receivedDateTime: 'soon', attachments: [{ id: 7 }, { id: 'x', contentType: 'text/html\r\nX-Evil: 1', size: -3 }] }] }),
      });
      const junk = await get('/messages?limit=1');
      assert.equal(junk.statusCode, 200, junk.body);
      const m = junk.json().messages[0];
      assert.deepEqual([m.from, m.to, m.seen, m.receivedAt], [null, [], null, null]);
      assert.deepEqual(m.attachments.map((a: { contentType: string; size: unknown }) => [a.contentType, a.size]), [['application/octet-stream', null]]);

      // an attachment whose type would inject a header is sent as application/octet-stream
      const detail = (await get(`/messages/${encodeId(rich.message.immutableId)}`)).json();
      const pdf = detail.attachments.find((a: { filename: string }) => a.filename.endsWith('.pdf'));
      world.graph.script.push({ match: /\/attachments\/[^/?]+\?/, rewrite: (b) => ({ ...b, contentType: 'text/html\r\nSet-Cookie: x=1' }) });
      const download = await get(`/messages/${encodeId(rich.message.immutableId)}/attachments/${pdf.id}`);
      assert.equal(download.statusCode, 200);
      assert.equal(download.headers['content-type'], 'application/octet-stream');
      assert.equal(download.headers['set-cookie'], undefined);

      // an answer cut short: the network error is answered and the session checks its connection again
      world.graph.script.push({ match: MESSAGES, truncate: true });
      assertProblem(await get('/messages'), 'MAIL_NETWORK_ERROR');
      await connected();
      assert.equal((await get('/messages?limit=2')).statusCode, 200);
    } finally {
      world.graph.script.length = 0;
      await other.close();
    }
  });

  test('sessions on one mailbox share Graph\'s 4 concurrent requests', async () => {
    const names = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7'];
    for (const name of names) {
      const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name, type: 'outlook', mailbox: USERS.bob.name } });
      assert.equal(res.statusCode, 201, res.body);
    }
    const seed = await seedInbox(world.graph.mailbox(USERS.bob.name));
    world.graph.maxInFlight.clear();
    world.graph.latencyMs = 150;
    const from = world.graph.requests.length;
    try {
      const pages = await Promise.all(names.flatMap((name) => [get('/messages?limit=2', name), get('/folders', name)]));
      for (const page of pages) assert.equal(page.statusCode, 200, page.body);
    } finally {
      world.graph.latencyMs = 0;
    }
    assert.equal(world.graph.maxInFlight.get(USERS.bob.name), 4, 'as many as Graph allows, never more');
    assert.deepEqual(since(from).filter((r) => r.status === 429), [], 'Graph never had to refuse one');
    assert.ok(seed.length > 0);
  });

  test('markAsRead refused for lack of Mail.ReadWrite is GRAPH_ACCESS_DENIED; a delegated session reads and marks /me', async () => {
    const target = inbox.find((s) => !s.isRead)!;
    world.graph.script.push({ match: /^PATCH /, status: 403, code: 'ErrorAccessDenied', message: 'Access is denied. Check credentials and try again.' });
    const denied = assertProblem(await get(`/messages/${encodeId(target.message.immutableId)}?markAsRead=true`), 'GRAPH_ACCESS_DENIED');
    assert.match(String(denied.detail), /Mail\.ReadWrite/);
    assert.equal(target.message.isRead, false);
    assert.equal((await get('')).json().state, 'connected');

    const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'own', type: 'outlook', username: USERS.alice.name, password: USERS.alice.password } });
    assert.equal(res.statusCode, 201, res.body);
    const from = world.graph.requests.length;
    const page = (await get('/messages?status=unread&limit=1', 'own')).json();
    assert.equal(page.messages[0].subject, inbox.filter((s) => !s.isRead).at(-1)!.subject);
    const marked = await get(`/messages/${page.messages[0].id}?markAsRead=true`, 'own');
    assert.equal(marked.json().seen, true);
    const wire = since(from);
    assert.ok(wire.every((r) => r.path.startsWith('/v1.0/me/') && r.principal === USERS.alice.name && /\/Mail\.ReadWrite( |$)/.test(r.scope ?? '')));
    assert.equal(wire.at(-1)!.method, 'PATCH');
  });

  test('no token or message body in any log line', () => {
    assertNoSecrets(logs, [...world.secrets(), ...BODY_MARKERS], 'log');
  });
});
