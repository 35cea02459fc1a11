import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { hashApiKey } from '../../src/security/api-keys.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';

test('keys are compared exactly: a mixed-case base64url key (as npm run api-key makes) is refused in any other case', async (t) => {
  let key = '';
  // base64url of random bytes, with at least one upper- and one lower-case letter so that case matters
  while (!/[A-Z]/.test(key) || !/[a-z]/.test(key)) key = `msb_${randomBytes(32).toString('base64url')}`;
  const { app } = await build(t, { MSB_AUTH: 'keys', MSB_API_KEYS: `bot-a:bot:${hashApiKey(key)}` });
  const list = (k: string) => app.inject({ method: 'GET', url: '/v1/sessions', headers: { authorization: `Bearer ${k}` } });
  assert.equal((await list(key)).statusCode, 200);
  for (const variant of [key.toLowerCase(), key.toUpperCase(), `${key} `, key.slice(0, -1)]) {
    if (variant === key) continue;
    assertProblem(await list(variant), 'UNAUTHENTICATED');
  }
});
