import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { build, type TestApp } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { compose } from '../harness/mail.js';
import { freePort } from '../harness/ports.js';

/**
 * What an SMTP server's refusals and failures make of a send, against smtp-server (nodemailer's project) as
 * the peer, with Dovecot as the mailbox (IMAP and POP3): a recipient refused, every one refused, a temporary
 * refusal, a connection dropped in the middle of DATA, a server that echoes the password, and an SMTP port the
 * service does not vouch for.
 */

const USER = 'alice@example.test';
const SMTP_PASSWORD = `smtp-${randomBytes(6).toString('hex')}`;

interface Received {
  from: string;
  to: string[];
  raw: Buffer;
}

function refusal(message: string, responseCode: number): Error {
  return Object.assign(new Error(message), { responseCode });
}

describe('sending over SMTP: what the server refused or broke (smtp-server)', () => {
  let dovecot: DovecotServer;
  let server: SMTPServer;
  let port: number;
  let app: TestApp['app'];
  let logs: string[];
  const received: Received[] = [];
  const closers: (() => Promise<void>)[] = [];

  /** Drops the connection of `session` from the server's side. */
  const drop = (session: SMTPServerSession) => {
    for (const connection of (server as unknown as { connections: Set<{ id: string; _socket: { destroy(): void } }> }).connections) {
      if (connection.id === session.id) connection._socket.destroy();
    }
  };

  const smtp = (extra: Record<string, unknown> = {}) => ({ host: '127.0.0.1', port, secure: false, tls: { starttls: 'off' }, password: SMTP_PASSWORD, ...extra });
  const create = (name: string, type: 'imap' | 'pop3', extra: Record<string, unknown> = {}, target: TestApp['app'] = app) =>
    target.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { name, type, host: dovecot.host, port: type === 'imap' ? dovecot.ports.imaps : dovecot.ports.pop3s, username: USER, password: 'alice-Secret-1', tls: { ca: dovecot.caPem }, smtp: smtp(), ...extra },
    });
  const send = (session: string, payload: Record<string, unknown>, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: `/v1/sessions/${session}/send`, payload, headers });

  before(async () => {
    dovecot = await startDovecot();
    server = new SMTPServer({
      secure: false,
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      logger: false,
      onAuth(auth, _session, callback) {
        if (auth.username === USER && auth.password === SMTP_PASSWORD) return callback(null, { user: USER });
        // a careless server that quotes what it was given
        callback(refusal(`Authentication failed for ${auth.username} with ${auth.password}`, 535));
      },
      onRcptTo(address, _session, callback) {
        if (address.address.startsWith('nobody')) return callback(refusal(`<${address.address}>: no such user here`, 550));
        if (address.address.startsWith('later@')) return callback(refusal(`<${address.address}>: mailbox busy, try later`, 451));
        callback();
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          if (Buffer.concat(chunks).includes('DROP-MID-DATA')) drop(session);
        });
        stream.on('end', () => {
          received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks) });
          callback();
        });
      },
    });
    server.on('error', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.server.address() as AddressInfo).port;
    ({ app, logs } = await build({ after: (fn) => void closers.push(fn as () => Promise<void>) }, { MSB_WATCH_INTERVAL_MS: '0' }));
    const res = await create('s', 'imap');
    assert.equal(res.statusCode, 201, res.body);
  });
  after(async () => {
    for (const close of closers) await close();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await dovecot?.close();
  });

  test('one recipient refused: sent to the others, the answer says which was refused', async () => {
    const tag = randomBytes(4).toString('hex');
    const res = await send('s', { to: ['ok@example.test', 'nobody@example.test'], subject: `partial ${tag}`, text: 'x' });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().accepted, ['ok@example.test']);
    assert.deepEqual(res.json().rejected, ['nobody@example.test']);
    const got = received.find((r) => r.raw.includes(tag));
    assert.deepEqual(got?.to, ['ok@example.test']);
    assert.equal(got?.from, USER);
  });

  test('every recipient refused: 422 SMTP_REJECTED with the reply code and the refused addresses; nothing sent; no address in the log', async () => {
    const before = received.length;
    const res = await send('s', { to: 'nobody@example.test', cc: 'nobody2@example.test', subject: 'none', text: 'x' });
    const problem = assertProblem(res, 'SMTP_REJECTED');
    assert.equal(problem.smtpCode, 550);
    assert.deepEqual(problem.rejected, ['nobody@example.test', 'nobody2@example.test']);
    assert.ok(!String(problem.detail).includes('nobody@'), 'the server text is quoted without addresses');
    assert.equal(received.length, before);
    assert.ok(!logs.some((l) => l.includes('nobody@example.test')), 'no address in the log');
    // the session is fine: the failure was this message's
    assert.equal((await app.inject({ url: '/v1/sessions/s' })).json().state, 'connected');
  });

  test('a temporary refusal (4xx) is 502 SMTP_UNAVAILABLE with the reply code; a retry with the same Idempotency-Key tries again', async () => {
    const body = { to: 'later@example.test', subject: 'later', text: 'x' };
    const first = assertProblem(await send('s', body, { 'idempotency-key': 'later-1' }), 'SMTP_UNAVAILABLE');
    assert.equal(first.smtpCode, 451);
    assert.deepEqual(first.rejected, ['later@example.test']);
    const again = await send('s', body, { 'idempotency-key': 'later-1' });
    assertProblem(again, 'SMTP_UNAVAILABLE');
    assert.equal(again.headers['idempotent-replayed'], undefined, 'a failure is not replayed');
  });

  test('the connection dropped in the middle of DATA: 502 SMTP_UNAVAILABLE, not reported sent; the next send works', async () => {
    const before = received.length;
    const res = await send('s', { to: 'ok@example.test', subject: 'drop', text: `DROP-MID-DATA ${'x'.repeat(200_000)}` });
    assertProblem(res, 'SMTP_UNAVAILABLE');
    assert.equal(received.length, before);
    const tag = randomBytes(4).toString('hex');
    const next = await send('s', { to: 'ok@example.test', subject: `after ${tag}`, text: 'x' });
    assert.equal(next.statusCode, 201, next.body);
    assert.ok(received.some((r) => r.raw.includes(tag)));
  });

  test('a wrong SMTP password fails the create, and a server that echoes it does not make it appear anywhere', async () => {
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    const res = await create('wrong', 'imap', { smtp: smtp({ password: wrong }) });
    const problem = assertProblem(res, 'SMTP_AUTH_FAILED');
    assert.equal(problem.smtpCode, 535);
    assert.ok(!res.body.includes(wrong), res.body);
    assert.match(String(problem.detail), /\[redacted\]/);
    assert.ok(!logs.some((l) => l.includes(wrong) || l.includes(SMTP_PASSWORD)));
  });

  test('POP3: a reply threads and quotes the original read over POP3', async () => {
    const tag = randomBytes(4).toString('hex');
    await dovecot.deliver(USER, (await compose({ from: 'Supplier <supplier@example.test>', to: USER, subject: `Order ${tag}`, messageId: `<order-${tag}@example.test>`, text: `Please confirm ${tag}` })).toString());
    assert.equal((await create('pop', 'pop3')).statusCode, 201);
    const [message] = (await app.inject({ url: `/v1/sessions/pop/messages?subject=${tag}` })).json().messages;
    const res = await app.inject({ method: 'POST', url: `/v1/sessions/pop/messages/${message.id}/reply`, payload: { text: 'Confirmed.' } });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().accepted, ['supplier@example.test']);
    const got = received.find((r) => r.raw.includes(`Re: Order ${tag}`));
    assert.ok(got);
    const mail = await simpleParser(got.raw);
    assert.equal(mail.inReplyTo, `<order-${tag}@example.test>`);
    assert.match(mail.text ?? '', new RegExp(`^Confirmed\\.\\n\\n.*Supplier <supplier@example\\.test> wrote:\\n> Please confirm ${tag}`, 's'));
  });

  test('an SMTP port the service does not vouch for (MSB_OUTBOUND_PORTS=*, no allow list) tells nothing at create', async (t) => {
    const { app: open } = await build(t, { MSB_OUTBOUND_ALLOW: '', MSB_WATCH_INTERVAL_MS: '0' });
    const closed = await freePort();
    const refused = assertProblem(await create('scan', 'imap', { smtp: smtp({ port: closed }) }, open), 'SMTP_UNAVAILABLE');
    assert.match(String(refused.detail), /connection closed by server$/);
    const auth = assertProblem(await create('scan2', 'imap', { smtp: smtp({ password: 'wrong-password' }) }, open), 'SMTP_AUTH_FAILED');
    assert.match(String(auth.detail), /the server rejected the credentials$/);
    assert.equal(auth.smtpCode, undefined);
  });
});
