import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { startGreenMail, type GreenMailServer } from '../harness/greenmail.js';

const USER = 'alice@example.test';

describe('IMAP and POP3 sessions against GreenMail, through the HTTP API', () => {
  let greenmail: GreenMailServer;
  before(async () => {
    greenmail = await startGreenMail();
  });
  after(async () => {
    await greenmail?.close();
  });

  /** Our CA when GreenMail serves our certificate; the explicit opt-out for an external GreenMail's own self-signed one. */
  const tlsTrust = () => (greenmail.caPem ? { ca: greenmail.caPem } : { verifyCertificate: false });

  test('create, inspect, see new mail, close: IMAP and POP3, plain and TLS', async (t) => {
    const { app } = await build(t);
    const password = greenmail.users[USER]!;
    await greenmail.deliver(USER, `From: a@example.test\r\nTo: ${USER}\r\nSubject: gm-1\r\n\r\nbody\r\n`);
    const variants = [
      { type: 'imap', port: greenmail.ports.imap, secure: false, tls: { starttls: 'off' } },
      { type: 'imap', port: greenmail.ports.imaps, secure: true, tls: tlsTrust() },
      { type: 'pop3', port: greenmail.ports.pop3, secure: false, tls: { starttls: 'off' } },
      { type: 'pop3', port: greenmail.ports.pop3s, secure: true, tls: tlsTrust() },
    ];
    for (const v of variants) {
      const name = `gm-${v.type}-${v.secure ? 'tls' : 'plain'}`;
      const body = { name, type: v.type, host: greenmail.host, port: v.port, secure: v.secure, username: USER, password, tls: v.tls };
      const created = await app.inject({ method: 'POST', url: '/v1/sessions', payload: body });
      assert.equal(created.statusCode, 201, `${name}: ${created.body}`);
      const before = created.json();
      assert.equal(before.state, 'connected');
      assert.ok(before.mailbox.messages >= 1, `${name}: ${JSON.stringify(before.mailbox)}`);
      assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: body })).statusCode, 200);

      await greenmail.deliver(USER, `From: a@example.test\r\nTo: ${USER}\r\nSubject: ${name}\r\n\r\nbody\r\n`);
      const after = (await app.inject({ method: 'GET', url: `/v1/sessions/${name}?refresh=true` })).json();
      assert.equal(after.mailbox.messages, before.mailbox.messages + 1, `${name}: new mail is visible`);

      assert.equal((await app.inject({ method: 'DELETE', url: `/v1/sessions/${name}` })).statusCode, 204);
      assertProblem(await app.inject({ method: 'GET', url: `/v1/sessions/${name}` }), 'SESSION_NOT_FOUND');
    }
  });

  test('wrong password: MAIL_AUTH_FAILED for IMAP and POP3', async (t) => {
    const { app } = await build(t);
    for (const [type, port] of [['imap', greenmail.ports.imap], ['pop3', greenmail.ports.pop3]] as const) {
      const body = { name: `gm-bad-${type}`, type, host: greenmail.host, port, secure: false, username: USER, password: 'not-the-Password', tls: { starttls: 'off' } };
      assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: body }), 'MAIL_AUTH_FAILED');
    }
  });

  test('STARTTLS required on a server that does not offer it: MAIL_STARTTLS_UNAVAILABLE', async (t) => {
    const { app } = await build(t);
    const body = { name: 'gm-starttls', type: 'imap', host: greenmail.host, port: greenmail.ports.imap, secure: false, username: USER, password: greenmail.users[USER] };
    const problem = assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: body }), 'MAIL_STARTTLS_UNAVAILABLE');
    assert.match(String(problem.detail), /starttls/);
  });
});
