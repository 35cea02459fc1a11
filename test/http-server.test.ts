import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { build } from './helper.js';

/** How long a test waits at most for the server to act; a bound for a hang, not a timing assertion. */
const PATIENCE_MS = 30_000;

async function listening(t: Parameters<typeof build>[0], env: Record<string, string>): Promise<number> {
  const { app } = await build(t, env);
  await app.listen({ host: '127.0.0.1', port: 0 });
  return (app.server.address() as AddressInfo).port;
}

/** Resolves with what the server sent once it closed the socket; rejects when it is still open after PATIENCE_MS. */
function closedByServer(socket: Socket, what: string): Promise<string> {
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      // closed here, so that the app's close does not wait for it
      socket.destroy();
      reject(new Error(`${what}: the server kept the connection open for ${PATIENCE_MS} ms`));
    }, PATIENCE_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
  });
}

test('a client that sends its headers one line at a time is cut off with 408 REQUEST_TIMEOUT', { timeout: 60_000 }, async (t) => {
  const port = await listening(t, { MSB_HEADERS_TIMEOUT_MS: '1000', MSB_REQUEST_TIMEOUT_MS: '2000' });
  const socket = connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  const closed = closedByServer(socket, 'slow headers');
  socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\n');
  // a slowloris: one more header line every 200 ms, never the blank line that ends the headers
  let n = 0;
  const drip = setInterval(() => socket.writable && socket.write(`X-Slow-${n++}: 1\r\n`), 200);
  t.after(() => clearInterval(drip));
  const answer = await closed;
  clearInterval(drip);
  assert.match(answer, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  assert.match(answer, /"code":"REQUEST_TIMEOUT"/);
  assert.match(answer, /Connection: close/i);
});

test('a client that never finishes its body is cut off with 408 REQUEST_TIMEOUT', { timeout: 60_000 }, async (t) => {
  const port = await listening(t, { MSB_HEADERS_TIMEOUT_MS: '1000', MSB_REQUEST_TIMEOUT_MS: '1500' });
  const socket = connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  const closed = closedByServer(socket, 'slow body');
  socket.write('POST /v1/sessions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
  const drip = setInterval(() => socket.writable && socket.write(' '), 200);
  t.after(() => clearInterval(drip));
  const answer = await closed;
  clearInterval(drip);
  assert.match(answer, /^HTTP\/1\.1 408 Request Timeout\r\n/);
});

test('connections beyond MSB_MAX_CONNECTIONS are closed at once; the ones held keep working', { timeout: 60_000 }, async (t) => {
  const port = await listening(t, { MSB_MAX_CONNECTIONS: '2' });
  const held: Socket[] = [];
  t.after(() => held.forEach((s) => s.destroy()));
  for (let i = 0; i < 2; i++) {
    const s = connect(port, '127.0.0.1');
    held.push(s);
    await once(s, 'connect');
  }
  // the server counts a connection once it accepted it: a request on each held socket makes sure of that
  for (const s of held) {
    const answered = new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));
    s.write('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n');
    assert.match(await answered, /^HTTP\/1\.1 200/);
  }
  const third = connect(port, '127.0.0.1');
  held.push(third);
  third.on('error', () => {});
  const answer = await closedByServer(third, 'third connection');
  assert.equal(answer, '', 'a connection over the cap gets no answer, only a close');
  // the held connections are still served
  const again = new Promise<string>((resolve) => held[0]!.once('data', (d: Buffer) => resolve(d.toString())));
  held[0]!.write('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n');
  assert.match(await again, /^HTTP\/1\.1 200/);
});

test('an answer to an absolute-form request (GET http://host/v1/sessions) is not cached either', async (t) => {
  const port = await listening(t, {});
  for (const target of [`http://localhost:${port}/v1/sessions`, '/v1/sessions', '/health']) {
    const socket = connect(port, '127.0.0.1');
    t.after(() => socket.destroy());
    await once(socket, 'connect');
    const closed = closedByServer(socket, target);
    socket.end(`GET ${target} HTTP/1.1\r\nHost: localhost:${port}\r\nConnection: close\r\n\r\n`);
    const answer = await closed;
    assert.match(answer, /^HTTP\/1\.1 200 /, `${target}: ${answer.slice(0, 200)}`);
    assert.match(answer, /\r\ncache-control: no-store\r\n/i, `${target} is answered with Cache-Control: no-store`);
  }
});

test('an empty body with Content-Type: application/json is no body: DELETE works, a create says what is missing', async (t) => {
  const { app } = await build(t);
  const json = { 'content-type': 'application/json' };
  // a bot's HTTP tool sends the JSON content type on every method
  for (const method of ['DELETE', 'GET'] as const) {
    const res = await app.inject({ method, url: '/v1/sessions/nobody', headers: json, payload: '' });
    assert.equal(res.json().code, 'SESSION_NOT_FOUND', `${method}: ${res.body}`);
  }
  const listed = await app.inject({ method: 'GET', url: '/v1/sessions', headers: { ...json, 'content-length': '0' } });
  assert.equal(listed.statusCode, 200, listed.body);
  const create = await app.inject({ method: 'POST', url: '/v1/sessions', headers: json, payload: '' });
  assert.equal(create.statusCode, 400);
  assert.equal(create.json().code, 'VALIDATION_ERROR', create.body);
  // what is not JSON is still refused, and prototype poisoning too
  assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', headers: json, payload: '{' })).json().code, 'MALFORMED_REQUEST');
  assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', headers: json, payload: '{"__proto__": {"x": 1}}' })).statusCode, 400);
});
