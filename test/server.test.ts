import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { TEST_ENV } from './helper.js';
import { defaultUsers, logPatterns, startDovecot, type DovecotServer } from './harness/dovecot.js';
import { canConnect, freePort, waitForPort } from './harness/ports.js';
import { startSilentServer, type SilentServer } from './harness/tcp-tools.js';

const USER = 'bob@example.test';
const SERVER = new URL('../src/server.ts', import.meta.url).pathname;

/** Runs src/server.ts as the real process, the way `npm start` does (through tsx instead of dist/). */
function startServer(
  env: Record<string, string>,
  options: { readStdout?: boolean; stdout?: number | undefined } = {},
): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    env: { ...process.env, ...TEST_ENV, HOST: '127.0.0.1', LOG_LEVEL: 'info', MSB_MAIL_LOG_LEVEL: 'warn', ...env },
    // Node's 'pipe' is a socket pair; a container's log is a real pipe, which `stdout` can pass
    stdio: ['ignore', options.stdout ?? 'pipe', 'pipe'],
  });
  // the child holds the write end now: the reader alone decides whether the pipe is broken
  if (options.stdout !== undefined) closeSync(options.stdout);
  let text = '';
  if (options.readStdout !== false) child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { child, output: () => text };
}

/** The exit code, or a failure naming what the process printed when it has not exited within `ms`. */
async function exitWithin(child: ChildProcess, ms: number, output: () => string): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no exit within ${ms} ms:\n${output()}`)), ms).unref());
  const [code] = await Promise.race([exited, timer]);
  return code;
}

/** Starts a create that hangs in the handler (a server that accepts and never greets), so shutdown has to wait. */
async function hangingCreate(port: number, silentPort: number): Promise<void> {
  const before = silent.accepted();
  void fetch(`http://127.0.0.1:${port}/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'hangs', type: 'imap', host: '127.0.0.1', port: silentPort, secure: false, tls: { starttls: 'off' }, username: 'u', password: 'p', timeouts: { connectMs: 120_000 } }),
  }).catch(() => {});
  // the server has the request once the mail server saw the connection
  for (let i = 0; i < 200 && silent.accepted() === before; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(silent.accepted() > before, 'the create reached the silent server');
}

let silent: SilentServer;

/** A real pipe (a FIFO) for a child's stdout: `fd` is its write end, the test holds the read end and never reads. */
function fifoStdout(t: { after: (fn: () => void) => void }): { fd: number; closeReader: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'msb-stdout-'));
  const path = join(dir, 'stdout');
  execFileSync('mkfifo', [path]);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const fd = openSync(path, constants.O_WRONLY);
  let open = true;
  const closeReader = () => {
    if (open) closeSync(reader);
    open = false;
  };
  t.after(() => {
    closeReader();
    rmSync(dir, { recursive: true, force: true });
  });
  return { fd, closeReader };
}

describe('the service as a process', () => {
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot();
    silent = await startSilentServer();
  });
  after(async () => {
    await dovecot?.close();
    await silent?.close();
  });

  test('SIGTERM logs out of every session and exits 0', async (t) => {
    const port = await freePort();
    const { child, output } = startServer({ PORT: String(port), MSB_SHUTDOWN_TIMEOUT_MS: '8000' });
    t.after(() => child.kill('SIGKILL'));
    await waitForPort(port, '127.0.0.1', 60_000);
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

  test('MSB_AUTH=none with MSB_API_KEYS stops the start (exit 78), naming both', async (t) => {
    const { child, output } = startServer({ PORT: String(await freePort()), MSB_AUTH: 'none', MSB_API_KEYS: `bot-a:bot:${'0'.repeat(64)}` });
    t.after(() => child.kill('SIGKILL'));
    assert.equal(await exitWithin(child, 60_000, output), 78);
    assert.match(output(), /MSB_AUTH=none and MSB_API_KEYS are both set/);
  });

  test('without API keys the service listens on loopback only, unless HOST is set, which it warns about loudly', async (t) => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
    assert.ok(external, 'this test needs a non-loopback IPv4 address on this machine to show that nothing listens there');
    const port = await freePort();
    const local = startServer({ PORT: String(port), HOST: '' });
    t.after(() => local.child.kill('SIGKILL'));
    await waitForPort(port, '127.0.0.1', 60_000);
    assert.equal(await canConnect(port, external), false, `MSB_AUTH=none answered on ${external}`);
    assert.doesNotMatch(local.output(), /NO AUTHENTICATION ON/);
    local.child.kill('SIGTERM');
    assert.equal(await exitWithin(local.child, 15_000, local.output), 0);

    const open = startServer({ PORT: String(port), HOST: '0.0.0.0' });
    t.after(() => open.child.kill('SIGKILL'));
    await waitForPort(port, external, 60_000);
    assert.match(open.output(), /NO AUTHENTICATION ON 0\.0\.0\.0/);
    open.child.kill('SIGTERM');
    assert.equal(await exitWithin(open.child, 15_000, open.output), 0);
  });

  test('with its log reader gone, the service keeps serving and SIGTERM still exits 0', async (t) => {
    const port = await freePort();
    const { child, output } = startServer({ PORT: String(port) });
    t.after(() => child.kill('SIGKILL'));
    await waitForPort(port, '127.0.0.1', 60_000);
    // like `node dist/server.js | head -3`: the reader exits, every later write gets EPIPE
    child.stdout!.destroy();
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
    child.kill('SIGTERM');
    assert.equal(await exitWithin(child, 15_000, output), 0);
  });

  for (const kind of ['socket', 'pipe'] as const) {
    test(`two SIGTERMs right after the log reader went (stdout a ${kind}): the process exits`, async (t) => {
      const port = await freePort();
      const out = kind === 'pipe' ? fifoStdout(t) : undefined;
      const { child, output } = startServer({ PORT: String(port) }, { stdout: out?.fd });
      t.after(() => child.kill('SIGKILL'));
      await waitForPort(port, '127.0.0.1', 60_000);
      if (out) out.closeReader();
      else child.stdout!.destroy();
      // the first signal's log line is still on its way when the second one exits: a final flush that
      // retries EPIPE (pino's default destination) would never return
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGTERM'), 2);
      assert.ok([0, 1].includes((await exitWithin(child, 15_000, output))!));
    });

    test(`with a log reader that stopped reading (stdout a ${kind}), the service keeps serving and SIGTERM exits`, async (t) => {
      const port = await freePort();
      const out = kind === 'pipe' ? fifoStdout(t) : undefined;
      const { child, output } = startServer({ PORT: String(port), LOG_LEVEL: 'trace' }, { stdout: out?.fd, readStdout: false });
      t.after(() => child.kill('SIGKILL'));
      // nobody reads: once the pipe (and the parent's buffer) is full, a blocking write would stop the process
      child.stdout?.pause();
      await waitForPort(port, '127.0.0.1', 60_000);
      for (let i = 0; i < 1500; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/health?pad=${'x'.repeat(400)}`, { signal: AbortSignal.timeout(10_000) }).catch((err: unknown) => {
          throw new Error(`request ${i} got no answer with the log pipe full (${String(err)}):\n${output()}`);
        });
        assert.equal(res.status, 200);
      }
      child.kill('SIGTERM');
      assert.equal(await exitWithin(child, 15_000, output), 0);
    });
  }

  test('the shutdown deadline holds with the log reader gone: exit 1 when logging out takes too long', async (t) => {
    const port = await freePort();
    const { child, output } = startServer({ PORT: String(port), MSB_SHUTDOWN_TIMEOUT_MS: '1500' });
    t.after(() => child.kill('SIGKILL'));
    await waitForPort(port, '127.0.0.1', 60_000);
    await hangingCreate(port, silent.port);
    child.stdout!.destroy();
    child.kill('SIGTERM');
    assert.equal(await exitWithin(child, 15_000, output), 1);
  });

  test('a second SIGTERM exits at once, also with the log reader gone', async (t) => {
    const port = await freePort();
    const { child, output } = startServer({ PORT: String(port), MSB_SHUTDOWN_TIMEOUT_MS: '600000' });
    t.after(() => child.kill('SIGKILL'));
    await waitForPort(port, '127.0.0.1', 60_000);
    await hangingCreate(port, silent.port);
    child.stdout!.destroy();
    child.kill('SIGTERM');
    // the first signal has started a shutdown that waits for the hanging create
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(child.exitCode, null, `the first SIGTERM alone should still wait:\n${output()}`);
    child.kill('SIGTERM');
    assert.equal(await exitWithin(child, 15_000, output), 1);
  });
});
