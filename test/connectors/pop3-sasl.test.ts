import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import Pop3Command from 'node-pop3';
import { isAppError } from '../../src/errors.js';
import { loginXoauth2, xoauth2Payload } from '../../src/connectors/pop3/sasl.js';

test('the XOAUTH2 payload is the SASL string in base64; control characters are refused', () => {
  assert.equal(Buffer.from(xoauth2Payload('u@x.test', 'tok'), 'base64').toString(), 'user=u@x.test\x01auth=Bearer tok\x01\x01');
  for (const [user, token] of [['u\x01auth=Bearer evil', 't'], ['u', 't\r\nDELE 1']]) {
    assert.throws(() => xoauth2Payload(user!, token!), (e: unknown) => isAppError(e) && e.code === 'MAIL_AUTH_FAILED');
  }
});

/** A POP3 server that greets and answers AUTH with `reply`, then -ERR to the empty line. */
async function pop3Server(t: { after(fn: () => unknown): void }, reply: string | undefined): Promise<number> {
  const server = net.createServer((socket) => {
    socket.write('+OK ready\r\n');
    socket.on('data', (chunk) => {
      for (const line of chunk.toString('latin1').split('\r\n').filter((l, i, all) => i < all.length - 1)) {
        if (line.startsWith('AUTH')) {
          if (reply === undefined) socket.destroy();
          else socket.write(`${reply}\r\n`);
        } else if (line === '') socket.write('-ERR [AUTH] refused\r\n');
        else if (line === 'QUIT') socket.end('+OK bye\r\n');
        else socket.write('-ERR unknown\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { server.close(resolve); }));
  return (server.address() as net.AddressInfo).port;
}

const login = (port: number) => loginXoauth2(new Pop3Command({ host: '127.0.0.1', port, timeout: 3000, user: 'u@x.test', password: '' }), 'u@x.test', 'tok', 'POP3 test');
const refusal = async (port: number) => {
  try {
    await login(port);
  } catch (err) {
    assert.ok(isAppError(err) && err.code === 'MAIL_AUTH_FAILED', String(err));
    return err.message;
  }
  assert.fail('the login was not refused');
};

test('XOAUTH2 over POP3: +OK logs in; a "+ <base64 JSON>" challenge is a refusal with its status, answered by an empty line', async (t) => {
  await login(await pop3Server(t, '+OK logged in'));
  assert.match(await refusal(await pop3Server(t, `+ ${Buffer.from('{"status":"401","schemes":"bearer"}').toString('base64')}`)), /status 401\)/);
  assert.match(await refusal(await pop3Server(t, `+ ${Buffer.from('{"status":400}').toString('base64')}`)), /status 400\)/);
  // a challenge that is not JSON, or JSON without a status: refused, no status quoted
  assert.match(await refusal(await pop3Server(t, '+ bm90IGpzb24=')), /XOAUTH2\)$/);
  assert.match(await refusal(await pop3Server(t, `+ ${Buffer.from('{"status":{"x":1}}').toString('base64')}`)), /XOAUTH2\)$/);
});
