import assert from 'node:assert/strict';
import { test } from 'node:test';
import { graphError, retryAfterMs } from '../../src/connectors/graph/http.js';
import { xoauth2Payload } from '../../src/connectors/pop3/sasl.js';

test('Retry-After: delay-seconds, an HTTP date, or nothing usable', () => {
  assert.equal(retryAfterMs('7'), 7000);
  assert.equal(retryAfterMs(' 0 '), 0);
  assert.equal(retryAfterMs(['3', '9']), 3000);
  const now = Date.parse('2026-11-26T10:00:00Z');
  assert.equal(retryAfterMs('Thu, 26 Nov 2026 10:00:05 GMT', now), 5000);
  assert.equal(retryAfterMs('Thu, 26 Nov 2026 09:59:00 GMT', now), 0, 'a date in the past means now');
  for (const bad of [undefined, '', 'soon', '-1', '1.5', '9999999999']) assert.equal(retryAfterMs(bad), undefined, String(bad));
});

test("Graph's error object is read defensively", () => {
  assert.deepEqual(graphError({ error: { code: 'ErrorAccessDenied', message: 'Access is denied.' } }), { code: 'ErrorAccessDenied', message: 'Access is denied.' });
  assert.deepEqual(graphError({ error: { code: 42 } }), {});
  assert.deepEqual(graphError(undefined), {});
  assert.deepEqual(graphError('<html>'), {});
});

test('the XOAUTH2 initial response is base64("user=" u ^A "auth=Bearer " t ^A ^A); control characters are refused', () => {
  const payload = Buffer.from(xoauth2Payload('bot@contoso.test', 'tok.en'), 'base64').toString('utf8');
  assert.equal(payload, 'user=bot@contoso.test\x01auth=Bearer tok.en\x01\x01');
  assert.throws(() => xoauth2Payload('bot@contoso.test\x01auth=Bearer other', 't'), /control characters/);
  assert.throws(() => xoauth2Payload('bot@contoso.test', 't\r\nQUIT'), /control characters/);
});
