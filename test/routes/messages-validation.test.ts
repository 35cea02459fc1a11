import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ErrorCode } from '../../src/errors.js';
import { contentDisposition } from '../../src/routes/content-disposition.js';
import { toFilter } from '../../src/routes/messages.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';

test('list queries that do not match the contract are VALIDATION_ERROR naming the field', async (t) => {
  const { app } = await build(t);
  const cases: [string, string][] = [
    ['limit=1001', '/querystring/limit'],
    ['limit=0', '/querystring/limit'],
    ['status=unseen', '/querystring/status'],
    ['order=random', '/querystring/order'],
    ['since=yesterday', '/querystring/since'],
    ['before=2026-13', '/querystring/before'],
    ['include=html', '/querystring/include'],
    ['wait=61', '/querystring/wait'],
    ['cursor=a%2Fb', '/querystring/cursor'],
    ['folder=INBOX%0D%0ALOGOUT', '/querystring/folder'],
    ['subject=a%0Ab', '/querystring/subject'],
    ['unknown=1', '/querystring/unknown'],
  ];
  for (const [query, path] of cases) {
    const res = await app.inject({ method: 'GET', url: `/v1/sessions/s1/messages?${query}` });
    const body = assertProblem(res, 'VALIDATION_ERROR');
    const paths = (body.errors as { path: string }[]).map((e) => e.path);
    assert.ok(paths.some((p) => p.startsWith(path)), `${query}: ${paths.join(', ')}`);
  }
  assertProblem(await app.inject({ method: 'GET', url: '/v1/sessions/s1/messages/a%2Fb' }), 'VALIDATION_ERROR');
  assertProblem(await app.inject({ method: 'GET', url: `/v1/sessions/s1/messages/${'a'.repeat(1025)}` }), 'VALIDATION_ERROR');
});

test('mail routes on a session that does not exist answer SESSION_NOT_FOUND', async (t) => {
  const { app } = await build(t);
  for (const url of ['/folders', '/messages', '/messages/abc', '/messages/abc/raw', '/messages/abc/attachments/2']) {
    assertProblem(await app.inject({ method: 'GET', url: `/v1/sessions/nope${url}` }), 'SESSION_NOT_FOUND');
  }
});

test('filters: ";" separates alternatives; a date means its start in UTC', () => {
  const f = toFilter({ subject: 'Invoice; facture ;;', from: 'billing@', since: '2026-11-01', before: '2026-11-02T10:30:00+01:00' });
  assert.deepEqual(f.subject, ['Invoice', 'facture']);
  assert.deepEqual(f.from, ['billing@']);
  assert.equal(f.since?.toISOString(), '2026-11-01T00:00:00.000Z');
  assert.equal(f.before?.toISOString(), '2026-11-02T09:30:00.000Z');
  assert.equal(f.status, 'all');
});

test('Content-Disposition carries any file name safely (RFC 6266 / 8187)', () => {
  assert.equal(contentDisposition('attachment', 'invoice.pdf'), 'attachment; filename="invoice.pdf"');
  assert.equal(contentDisposition('attachment', 'Rechnung März.pdf'), `attachment; filename="Rechnung M_rz.pdf"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf`);
  const hostile = contentDisposition('attachment', '../../etc/"passwd"\r\nX-Evil: 1');
  assert.doesNotMatch(hostile, /[\r\n]/);
  assert.doesNotMatch(hostile, /\.\.\//);
  assert.match(hostile, /^attachment; filename="[^"]*"; filename\*=UTF-8''[A-Za-z0-9%._~!-]+$/);
  assert.equal(contentDisposition('inline', ''), 'inline; filename="download"');
});

test('change requests that do not match the contract are VALIDATION_ERROR; unknown sessions SESSION_NOT_FOUND', async (t) => {
  const { app } = await build(t);
  const base = '/v1/sessions/s1/messages';
  const cases: [string, string, unknown][] = [
    ['PATCH', `${base}/abc`, {}],
    ['PATCH', `${base}/abc`, { seen: 'yes' }],
    ['PATCH', `${base}/abc`, { seen: true, deleted: true }],
    ['POST', `${base}/abc/move`, {}],
    ['POST', `${base}/abc/move`, { to: 'Archive\r\nA1 LOGOUT' }],
    ['POST', `${base}/move`, { to: 'Archive' }],
    ['POST', `${base}/move`, { where: { status: 'seen' }, to: 'Archive' }],
    ['POST', `${base}/delete`, { where: {}, permanent: 'yes' }],
    ['POST', `${base}/update`, { where: {} }],
    ['POST', `${base}/update`, { where: { since: 'last week' }, seen: true }],
  ];
  for (const [method, url, payload] of cases) {
    assertProblem(await app.inject({ method: method as 'POST', url, payload: payload as object }), 'VALIDATION_ERROR');
  }
  assertProblem(await app.inject({ method: 'DELETE', url: `${base}/abc?permanent=maybe` }), 'VALIDATION_ERROR');
  assertProblem(await app.inject({ method: 'DELETE', url: `${base}/abc` }), 'SESSION_NOT_FOUND');
  assertProblem(await app.inject({ method: 'POST', url: `${base}/move`, payload: { where: {}, to: 'Archive' } }), 'SESSION_NOT_FOUND');
  assertProblem(await app.inject({ method: 'PATCH', url: `${base}/abc`, payload: { seen: true } }), 'SESSION_NOT_FOUND');
});

test('send requests: addresses are parsed, limits hold, header injection is refused', async (t) => {
  const { app } = await build(t, { MSB_SEND_MAX_RECIPIENTS: '2', MSB_SEND_MAX_BYTES: '2048' });
  const url = '/v1/sessions/s1/send';
  const ok = { to: 'A <a@example.test>', subject: 'hi', text: 'x' };
  const refused: [unknown, ErrorCode][] = [
    [{ ...ok, to: 'not an address' }, 'VALIDATION_ERROR'],
    [{ ...ok, to: ['a@example.test', 'b@example.test', 'c@example.test'] }, 'VALIDATION_ERROR'],
    [{ ...ok, subject: 'hi\r\nBcc: victim@example.test' }, 'VALIDATION_ERROR'],
    [{ ...ok, to: 'a@example.test\r\nBcc: victim@example.test' }, 'VALIDATION_ERROR'],
    [{ ...ok, attachments: [{ filename: '../x', content: 'AAAA' }] }, 'VALIDATION_ERROR'],
    [{ ...ok, attachments: [{ filename: 'x.bin', content: 'not base64!' }] }, 'VALIDATION_ERROR'],
    [{ ...ok, attachments: [{ filename: 'x.bin', content: Buffer.alloc(4096).toString('base64') }] }, 'MESSAGE_TOO_LARGE'],
    [ok, 'SESSION_NOT_FOUND'],
  ];
  for (const [payload, code] of refused) assertProblem(await app.inject({ method: 'POST', url, payload: payload as object }), code);
  assertProblem(await app.inject({ method: 'POST', url, payload: ok, headers: { 'idempotency-key': 'has space' } }), 'VALIDATION_ERROR');
  assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions/s1/messages/abc/forward', payload: { to: 'x' } }), 'VALIDATION_ERROR');
  assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions/s1/messages/abc/reply', payload: { replyAll: 'yes' } }), 'VALIDATION_ERROR');
});

test('claim requests out of bounds are VALIDATION_ERROR', async (t) => {
  const { app } = await build(t);
  const base = '/v1/sessions/s1/claims';
  for (const payload of [{ max: 0 }, { max: 1001 }, { leaseSeconds: 4 }, { leaseSeconds: 3601 }, { where: { status: 'new' } }, { folder: 'a\nb' }]) {
    assertProblem(await app.inject({ method: 'POST', url: base, payload }), 'VALIDATION_ERROR');
  }
  assertProblem(await app.inject({ method: 'POST', url: `${base}/c1/ack`, payload: { then: { moveTo: '' } } }), 'VALIDATION_ERROR');
  assertProblem(await app.inject({ method: 'POST', url: `${base}/c1/extend`, payload: {} }), 'VALIDATION_ERROR');
  assertProblem(await app.inject({ method: 'POST', url: base, payload: {} }), 'SESSION_NOT_FOUND');
});
