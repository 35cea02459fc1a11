import assert from 'node:assert/strict';
import { test } from 'node:test';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';

const valid = { name: 'v1', type: 'imap', host: '127.0.0.1', port: 1, username: 'u', password: 'p' };

test('invalid create bodies get VALIDATION_ERROR naming the field', async (t) => {
  const { app } = await build(t);
  const cases: [unknown, string][] = [
    [{}, '/body/type'],
    [{ ...valid, type: 'smtp' }, '/body/type'],
    [{ ...valid, name: 'has space' }, '/body/name'],
    [{ ...valid, name: 'x'.repeat(65) }, '/body/name'],
    [{ ...valid, port: 70000 }, '/body/port'],
    [{ ...valid, port: 'imap' }, '/body/port'],
    // a JSON body is validated as sent: no coercion of "993" to 993, of null to false, of "true" to true
    [{ ...valid, port: '993' }, '/body/port'],
    [{ ...valid, secure: null }, '/body/secure'],
    [{ ...valid, secure: 'true' }, '/body/secure'],
    [{ ...valid, host: 'bad host!' }, '/body/host'],
    [{ ...valid, password: '' }, '/body/password'],
    [{ ...valid, pasword: 'typo' }, '/body/pasword'],
    [{ ...valid, tls: { starttls: 'sometimes' } }, '/body/tls/starttls'],
    [{ ...valid, tls: { ca: 'not a pem' } }, '/body/tls/ca'],
    [{ ...valid, timeouts: { connectMs: 1 } }, '/body/timeouts/connectMs'],
    [{ name: 'x', type: 'imap' }, '/body/host'],
  ];
  for (const [payload, path] of cases) {
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: payload as object });
    const body = assertProblem(res, 'VALIDATION_ERROR');
    const paths = (body.errors as { path: string }[]).map((e) => e.path);
    assert.ok(paths.includes(path), `${JSON.stringify(payload)}: ${paths.join(', ')}`);
  }
});

test('unreadable bodies: malformed JSON, wrong media type, too large', async (t) => {
  const { app } = await build(t, { MSB_BODY_LIMIT_BYTES: '2048' });
  const json = { 'content-type': 'application/json' };
  assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: '{"name":', headers: json }), 'MALFORMED_REQUEST');
  assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: 'name=x', headers: { 'content-type': 'text/plain' } }), 'UNSUPPORTED_MEDIA_TYPE');
  assertProblem(
    await app.inject({ method: 'POST', url: '/v1/sessions', payload: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
    'UNSUPPORTED_MEDIA_TYPE',
  );
  const big = JSON.stringify({ ...valid, password: 'x'.repeat(4000) });
  assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: big, headers: json }), 'PAYLOAD_TOO_LARGE');
  assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: 'null', headers: json }), 'VALIDATION_ERROR');
  assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: '[1,2]', headers: json }), 'VALIDATION_ERROR');
});

test('unknown sessions and routes', async (t) => {
  const { app } = await build(t);
  assertProblem(await app.inject({ method: 'GET', url: '/v1/sessions/nobody' }), 'SESSION_NOT_FOUND');
  assertProblem(await app.inject({ method: 'DELETE', url: '/v1/sessions/nobody' }), 'SESSION_NOT_FOUND');
  assertProblem(await app.inject({ method: 'GET', url: '/v1/sessions/bad%20name' }), 'VALIDATION_ERROR');
  assertProblem(await app.inject({ method: 'GET', url: '/v2/anything' }), 'ROUTE_NOT_FOUND');
  const wrongMethod = await app.inject({ method: 'PUT', url: '/v1/sessions/someone' });
  assertProblem(wrongMethod, 'METHOD_NOT_ALLOWED');
  assert.equal(wrongMethod.headers.allow, 'DELETE, GET, HEAD');
  // the methods of the path's own route, although GET /messages/:id would also take "move" as an id
  const bulkMove = await app.inject({ method: 'OPTIONS', url: '/v1/sessions/someone/messages/move' });
  assertProblem(bulkMove, 'METHOD_NOT_ALLOWED');
  assert.equal(bulkMove.headers.allow, 'POST');
  assertProblem(await app.inject({ method: 'TRACE', url: '/health' }), 'METHOD_NOT_ALLOWED');
  assertProblem(await app.inject({ method: 'GET', url: '/v1/sessions/%' }), 'MALFORMED_REQUEST');
  assertProblem(await app.inject({ method: 'GET', url: `/v1/sessions/${'n'.repeat(300)}` }), 'VALIDATION_ERROR');
  const list = await app.inject({ method: 'GET', url: '/v1/sessions' });
  assert.deepEqual(list.json(), { sessions: [] });
});

test('options the service refuses before connecting (certificate verification stays on by default)', async (t) => {
  // the default, not the test harness's MSB_ALLOW_INSECURE_TLS=true
  const { app } = await build(t, { MSB_ALLOW_INSECURE_TLS: '' });
  const pop3Plain = { ...valid, type: 'pop3', secure: false };
  const body = assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: pop3Plain }), 'UNSUPPORTED_OPTION');
  assert.match(String(body.detail), /secure: true/);
  const insecure = { ...valid, tls: { verifyCertificate: false } };
  assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: insecure }), 'INSECURE_TLS_FORBIDDEN');
});

test('a caller request id is echoed; a hostile one is replaced', async (t) => {
  const { app } = await build(t);
  const ok = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'bot-42.run-7' } });
  assert.equal(ok.headers['x-request-id'], 'bot-42.run-7');
  const hostile = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'a b\u0007'.repeat(50) } });
  assert.match(String(hostile.headers['x-request-id']), /^[0-9a-f-]{36}$/);
});

test('change bodies: a bulk update needs seen or flagged, and null is not false', async (t) => {
  const { app } = await build(t);
  const update = assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions/s/messages/update', payload: { where: {} } }), 'VALIDATION_ERROR');
  assert.match(JSON.stringify(update.errors), /seen|flagged/);
  const nullFlag = assertProblem(await app.inject({ method: 'PATCH', url: '/v1/sessions/s/messages/m1', payload: { seen: false, flagged: null } }), 'VALIDATION_ERROR');
  assert.ok((nullFlag.errors as { path: string }[]).some((e) => e.path === '/body/flagged'), JSON.stringify(nullFlag.errors));
});
