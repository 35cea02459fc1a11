import assert from 'node:assert/strict';
import { test } from 'node:test';
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
