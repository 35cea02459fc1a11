import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { TEST_ENV } from './helper.js';
import { defaultUsers, logPatterns, startDovecot, type DovecotServer } from './harness/dovecot.js';
import { freePort, waitForPort } from './harness/ports.js';

const USER = 'bob@example.test';
const SERVER = new URL('../src/server.ts', import.meta.url).pathname;

/** Runs src/server.ts as the real process, the way `npm start` does (through tsx instead of dist/). */
function startServer(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    env: { ...process.env, ...TEST_ENV, HOST: '127.0.0.1', LOG_LEVEL: 'info', MSB_MAIL_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { child, output: () => text };
}

describe('the service as a process', () => {
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot();
  });
  after(async () => {
    await dovecot?.close();
  });

  test('SIGTERM logs out of every session and exits 0', async (t) => {
    const port = await freePort();
    const { child, output } = startServer({ PORT: String(port), MSB_SHUTDOWN_TIMEOUT_MS: '8000' });
    t.after(() => child.kill('SIGKILL'));
    await waitForPort(port, '127.0.0.1', 20_000);
    const logoutsBefore = await dovecot.countLog(logPatterns.imapLogout(USER));
    for (const name of ['one', 'two', 'three']) {
      const res = await fetch(`http://127.0.0.1:${port}/v1/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name, type: 'imap', host: '127.0.0.1', port: dovecot.ports.imaps, username: USER, password: defaultUsers[USER], tls: { ca: dovecot.caPem } }),
      });
      assert.equal(res.status, 201, await res.text());
    }
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await Promise.race([exited, new Promise((_, reject) => setTimeout(() => reject(new Error(`no exit within 15 s:\n${output()}`)), 15_000))])) as [number];
    assert.equal(code, 0, output());
    // the server saw the three LOGOUTs
    await dovecot.waitForLog(logPatterns.imapLogout(USER), logoutsBefore + 3);
    assert.match(output(), /shut down cleanly/);
    assert.doesNotMatch(output(), new RegExp(defaultUsers[USER]!));
  });

  test('a bad setting stops the start with a message naming the variable', async () => {
    const { child, output } = startServer({ PORT: 'not-a-port' });
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 78);
    assert.match(output(), /PORT="not-a-port"/);
  });
});
