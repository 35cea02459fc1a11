import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { App } from '../../src/app.js';
import { build } from '../helper.js';
import { startDovecot, type DovecotServer } from '../harness/dovecot.js';

async function waitForSession(app: App, name: string, predicate: (s: Record<string, any>) => boolean, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const res = await app.inject({ method: 'GET', url: `/v1/sessions/${name}` });
    last = res.statusCode === 200 ? res.json() : `${res.statusCode} ${res.body}`;
    if (res.statusCode === 200 && predicate(res.json())) return res.json();
    await sleep(25);
  }
  assert.fail(`session ${name} did not reach the expected state in ${timeoutMs} ms; last seen: ${JSON.stringify(last)}`);
}

describe('sessions survive a restart with the file session store (Dovecot)', () => {
  let dovecot: DovecotServer;
  let dir: string;
  before(async () => {
    dovecot = await startDovecot();
    dir = mkdtempSync(path.join(os.tmpdir(), 'msb-store-'));
  });
  after(async () => {
    await dovecot?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const body = (name: string, type: 'imap' | 'pop3', extra: Record<string, unknown> = {}) => ({
    name, type, host: '127.0.0.1', port: type === 'imap' ? dovecot.ports.imaps : dovecot.ports.pop3s,
    username: 'alice@example.test', password: 'alice-Secret-1', tls: { ca: dovecot.caPem }, ...extra,
  });

  test('IMAP and POP3 sessions come back by themselves, connecting meanwhile; a closed one does not; the file holds no plain secret', async (t) => {
    const env = { MSB_SESSION_STORE_FILE: path.join(dir, 'sessions.sealed'), MSB_SESSION_STORE_KEY: randomBytes(32).toString('base64') };
    const { app: first } = await build({ after: () => {} }, env, { MSB_SECRET_ALICE_PW: 'alice-Secret-1' });
    for (const b of [body('kept-imap', 'imap'), body('kept-pop3', 'pop3', { idleTimeoutMs: 0 }), body('by-ref', 'imap', { password: { secret: 'alice_pw' } }), body('gone', 'imap')]) {
      const res = await first.inject({ method: 'POST', url: '/v1/sessions', payload: b });
      assert.equal(res.statusCode, 201, res.body);
    }
    assert.equal((await first.inject({ method: 'DELETE', url: '/v1/sessions/gone' })).statusCode, 204);
    await first.close();
    const sealed = readFileSync(env.MSB_SESSION_STORE_FILE);
    assert.ok(!sealed.includes('alice-Secret-1') && !sealed.includes('alice@example.test'), 'encrypted at rest');

    // Dovecot slowed down at restore: the sessions show connecting, never 404
    const { app: second } = await build(t, { ...env, MSB_CONNECT_TIMEOUT_MS: '5000' }, { MSB_SECRET_ALICE_PW: 'alice-Secret-1' });
    const listed = (await second.inject({ method: 'GET', url: '/v1/sessions' })).json().sessions.map((s: { name: string }) => s.name).sort();
    assert.deepEqual(listed, ['by-ref', 'kept-imap', 'kept-pop3']);
    for (const name of listed) {
      const s = await waitForSession(second, name, (v) => v.state === 'connected');
      assert.equal(s.mailbox.name, 'INBOX');
    }
    assert.equal((await second.inject({ method: 'GET', url: '/v1/sessions/by-ref' })).json().password, undefined);
    assert.equal((await second.inject({ method: 'GET', url: '/v1/sessions/gone' })).statusCode, 404);
  });

  test('a wrong key stops the start instead of losing the stored sessions', async () => {
    const env = { MSB_SESSION_STORE_FILE: path.join(dir, 'sessions.sealed'), MSB_SESSION_STORE_KEY: randomBytes(32).toString('base64') };
    await assert.rejects(build({ after: () => {} }, env), /sealed|decrypt|auth/i);
  });

  test('a restored session whose server is down reconnects when it comes back, without failing', async (t) => {
    const env = { MSB_SESSION_STORE_FILE: path.join(dir, 'down.sealed'), MSB_SESSION_STORE_KEY: randomBytes(32).toString('base64'), MSB_RECONNECT_BASE_MS: '100', MSB_RECONNECT_MAX_MS: '300', MSB_CONNECT_TIMEOUT_MS: '1000' };
    const { app: first } = await build({ after: () => {} }, env);
    assert.equal((await first.inject({ method: 'POST', url: '/v1/sessions', payload: body('waits', 'imap') })).statusCode, 201);
    await first.close();
    await dovecot.stop();
    const { app: second } = await build(t, env);
    await waitForSession(second, 'waits', (s) => s.state === 'reconnecting');
    await dovecot.start();
    await waitForSession(second, 'waits', (s) => s.state === 'connected');
  });
});
