import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import Pop3Command from 'node-pop3';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { compose } from '../harness/mail.js';
import { openEventStream } from '../harness/sse-client.js';

/**
 * Changes and events on POP3 sessions against Dovecot's POP3 (TLS), through HTTP. What the server holds is read
 * by a fresh, independent POP3 login (node-pop3): a delete counts only once another login no longer sees it.
 */

const users: Record<string, string> = Object.fromEntries(['delete', 'bulk', 'watch', 'unsupported'].map((u) => [`popc-${u}@example.test`, `popc-${u}-Secret-1`]));

describe('changing mail and events over POP3 (Dovecot), through the HTTP API', () => {
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot({ users });
  });
  after(async () => {
    await dovecot?.close();
  });

  const address = (name: string) => `popc-${name}@example.test`;

  /** The subjects a fresh POP3 login sees (TOP n 0 of each), in maildrop order. */
  async function maildrop(name: string): Promise<string[]> {
    const pop = new Pop3Command({ host: '127.0.0.1', port: dovecot.ports.pop3s, tls: true, user: address(name), password: users[address(name)]!, timeout: 5000, servername: 'localhost', tlsOptions: { ca: [dovecot.caPem] } } as ConstructorParameters<typeof Pop3Command>[0]);
    try {
      const [count] = (await pop.STAT()).split(' ').map(Number);
      const subjects: string[] = [];
      for (let n = 1; n <= count!; n++) subjects.push(/^Subject: (.*)$/m.exec(await pop.TOP(n, 0))?.[1]?.trim() ?? '');
      return subjects;
    } finally {
      await pop.QUIT().catch(() => undefined);
    }
  }

  async function setup(t: TestContext, name: string, env: Record<string, string> = {}) {
    const built = await build(t, env);
    const res = await built.app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { name: 'p', type: 'pop3', host: '127.0.0.1', port: dovecot.ports.pop3s, username: address(name), password: users[address(name)], tls: { ca: dovecot.caPem } },
    });
    assert.equal(res.statusCode, 201, res.body);
    const list = async (query = '') => (await built.app.inject({ url: `/v1/sessions/p/messages?order=oldest${query}` })).json().messages as { id: string; subject: string }[];
    return { ...built, list };
  }

  const deliver = async (name: string, subject: string) =>
    dovecot.deliver(address(name), (await compose({ from: 'Billing <billing@shop.test>', to: address(name), subject, text: `body of ${subject}` })).toString());

  test('DELETE is DELE + QUIT: answered once the server committed it, so a new login does not see the message; a repeat is MESSAGE_NOT_FOUND', async (t) => {
    for (const s of ['first', 'second', 'third']) await deliver('delete', s);
    const { app, list } = await setup(t, 'delete');
    const [, second] = await list();
    const res = await app.inject({ method: 'DELETE', url: `/v1/sessions/p/messages/${second!.id}` });
    assert.equal(res.statusCode, 204, res.body);
    assert.deepEqual(await maildrop('delete'), ['first', 'third'], 'a fresh login no longer sees it');
    assertProblem(await app.inject({ method: 'DELETE', url: `/v1/sessions/p/messages/${second!.id}` }), 'MESSAGE_NOT_FOUND');
    // permanent changes nothing: POP3 has no Trash
    const [first] = await list();
    assert.equal((await app.inject({ method: 'DELETE', url: `/v1/sessions/p/messages/${first!.id}?permanent=true` })).statusCode, 204);
    assert.deepEqual(await maildrop('delete'), ['third']);
  });

  test('bulk delete with where: exactly the matching messages, committed in one login', async (t) => {
    for (const s of ['invoice 1', 'newsletter', 'invoice 2', 'Invoice 3', 'lunch']) await deliver('bulk', s);
    const { app } = await setup(t, 'bulk');
    const res = await app.inject({ method: 'POST', url: '/v1/sessions/p/messages/delete', payload: { where: { subject: 'invoice' } } });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { deleted: 3 });
    assert.deepEqual(await maildrop('bulk'), ['newsletter', 'lunch']);
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions/p/messages/delete', payload: { folder: 'Archive', where: {} } }), 'FOLDER_NOT_FOUND');
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions/p/messages/delete', payload: { where: { status: 'read' } } }), 'OPERATION_NOT_SUPPORTED');
  });

  test('flags, moves and keywords answer OPERATION_NOT_SUPPORTED naming the types that can', async (t) => {
    await deliver('unsupported', 'only one');
    const { app, list } = await setup(t, 'unsupported');
    const [m] = await list();
    const patch = assertProblem(await app.inject({ method: 'PATCH', url: `/v1/sessions/p/messages/${m!.id}`, payload: { seen: true } }), 'OPERATION_NOT_SUPPORTED');
    assert.ok((patch.supportedBy as string[]).includes('imap'));
    assertProblem(await app.inject({ method: 'POST', url: `/v1/sessions/p/messages/${m!.id}/move`, payload: { to: 'Archive' } }), 'OPERATION_NOT_SUPPORTED');
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions/p/messages/move', payload: { where: {}, to: 'Archive' } }), 'OPERATION_NOT_SUPPORTED');
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions/p/messages/update', payload: { where: {}, seen: true } }), 'OPERATION_NOT_SUPPORTED');
    assert.deepEqual(await maildrop('unsupported'), ['only one']);
  });

  test('events: new mail found by the UIDL comparison at a watch poll is message.new, a message gone is message.deleted', async (t) => {
    await deliver('watch', 'already there');
    const { app } = await build(t, { MSB_WATCH_INTERVAL_MS: '300' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const stream = openEventStream((app.server.address() as { port: number }).port, '/v1/events?session=pw');
    await stream.ready;
    t.after(() => stream.close());
    const res = await app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { name: 'pw', type: 'pop3', host: '127.0.0.1', port: dovecot.ports.pop3s, username: address('watch'), password: users[address('watch')], tls: { ca: dovecot.caPem } },
    });
    assert.equal(res.statusCode, 201, res.body);
    await deliver('watch', 'arrives while watched');
    await stream.waitFor('message.new', (e) => e.some((x) => x.type === 'message.new' && x.body.data.subject === 'arrives while watched'));
    assert.ok(!stream.events.some((x) => x.type === 'message.new' && x.body.data.subject === 'already there'), 'what was there is the baseline');
    const event = stream.events.find((x) => x.type === 'message.new')!;
    assert.equal((await app.inject({ url: `/v1/sessions/pw/messages/${event.body.data.id}` })).json().subject, 'arrives while watched');
    assert.equal((await app.inject({ method: 'DELETE', url: `/v1/sessions/pw/messages/${event.body.data.id}` })).statusCode, 204);
    await stream.waitFor('message.deleted', (e) => e.some((x) => x.type === 'message.deleted' && x.body.data.id === event.body.data.id));
  });
});
