// Self-test of the integration-test harness: the servers it starts must really serve IMAP and
// POP3, and its helpers must do what they promise. Checked with real clients (imapflow,
// node-pop3) rather than with the service, so a failure here points at the harness.
//
// A server that cannot start (not installed, no jar) makes every test that needs it FAIL with
// the start error: the servers are started lazily and each test awaits them.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import Pop3Command from 'node-pop3';
import { canConnect } from './ports.js';
import { defaultUsers, logPatterns, startDovecot, type DovecotServer } from './dovecot.js';
import { startGreenMail, type GreenMailServer } from './greenmail.js';
import { startSilentServer, startTcpProxy } from './tcp-tools.js';

const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const pw = (user: string): string => {
  const p = defaultUsers[user];
  assert.ok(p, `no default password for ${user}`);
  return p;
};

// ---------------------------------------------------------------- lazily started servers
const startTimes: Record<string, number> = {};
function lazy<T extends { close(): Promise<void> }>(name: string, start: () => Promise<T>): { get(): Promise<T>; close(): Promise<void> } {
  let promise: Promise<T> | undefined;
  return {
    get() {
      if (!promise) {
        const t0 = performance.now();
        promise = start().then((server) => {
          startTimes[name] = Math.round(performance.now() - t0);
          return server;
        });
      }
      return promise;
    },
    async close() {
      const server = await promise?.catch(() => undefined);
      await server?.close();
    },
  };
}
const dovecot = lazy('dovecot', () => startDovecot());
const greenmail = lazy('greenmail', () => startGreenMail());
after(async () => {
  await dovecot.close();
  await greenmail.close();
  // Shown by the test runner: how long each server took to come up (incl. test certs once).
  console.log(`harness start times (ms): ${JSON.stringify(startTimes)}`);
});

// ---------------------------------------------------------------- client helpers
interface ImapTarget { host: string; port: number; secure: boolean; ca?: string | undefined; insecure?: boolean }

/** Logs in with imapflow, returns INBOX's message count and whether the session was TLS. */
async function imapCheck(t: ImapTarget, user: string, pass: string): Promise<{ messages: number; secure: boolean }> {
  const client = new ImapFlow({
    host: t.host, port: t.port, secure: t.secure, auth: { user, pass }, logger: false,
    greetingTimeout: 5000, connectionTimeout: 5000, socketTimeout: 10000,
    tls: t.insecure ? { rejectUnauthorized: false } : { ca: t.ca ? [t.ca] : undefined },
  });
  client.on('error', () => { /* surfaced through the rejected promise */ });
  try {
    await client.connect();
    const status = await client.status('INBOX', { messages: true });
    const secure = client.secureConnection;
    await client.logout();
    assert.ok(status, 'STATUS INBOX returned nothing');
    return { messages: status.messages ?? -1, secure };
  } finally {
    client.close();
  }
}

interface Pop3Target { host: string; port: number; tls: boolean; ca?: string | undefined; insecure?: boolean }

/** Logs in with node-pop3 and returns the message count from STAT. */
async function pop3Count(t: Pop3Target, user: string, password: string): Promise<number> {
  const pop = new Pop3Command({
    host: t.host, port: t.port, tls: t.tls, user, password, timeout: 5000, servername: 'localhost',
    tlsOptions: t.insecure ? { rejectUnauthorized: false } : { ca: t.ca ? [t.ca] : undefined },
  });
  try {
    const stat = await pop.STAT(); // e.g. "3 852811"
    await pop.QUIT();
    return Number(stat.split(' ')[0]);
  } catch (err) {
    await pop.QUIT().catch(() => undefined);
    throw err;
  }
}

const message = (subject: string, body = 'Hello from the harness self-test.\n'): string =>
  `From: sender@example.test\r\nTo: someone@example.test\r\nSubject: ${subject}\r\nMessage-ID: <${Date.now()}.${Math.random()}@example.test>\r\n\r\n${body}`;

/** Collects data from a raw socket until `re` matches or the time is up. */
function readUntil(socket: net.Socket, re: RegExp, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      if (re.test(text)) { cleanup(); resolve(text); }
    };
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no ${re} within ${timeoutMs} ms; got ${JSON.stringify(text)}`)); }, timeoutMs);
    const cleanup = (): void => { clearTimeout(timer); socket.off('data', onData); };
    socket.on('data', onData);
  });
}

/** Resolves with whatever arrives within `ms` ('' if nothing). */
function collectFor(socket: net.Socket, ms: number): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer): void => { text += chunk.toString('utf8'); };
    socket.on('data', onData);
    setTimeout(() => { socket.off('data', onData); resolve(text); }, ms);
  });
}

function connectRaw(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

// ---------------------------------------------------------------- Dovecot
describe('dovecot', () => {
  const target = (d: DovecotServer, which: 'imap' | 'imaps'): ImapTarget =>
    ({ host: d.host, port: d.ports[which], secure: which === 'imaps', ca: d.caPem });

  test('IMAP login on the plain port (upgraded by STARTTLS, cert verified with the test CA)', async () => {
    const d = await dovecot.get();
    const r = await imapCheck(target(d, 'imap'), ALICE, pw(ALICE));
    assert.equal(r.secure, true, 'imapflow should have upgraded with STARTTLS (ssl = yes offers it)');
  });

  test('IMAPS login, cert verified with the test CA; rejected without it', async () => {
    const d = await dovecot.get();
    const r = await imapCheck(target(d, 'imaps'), BOB, pw(BOB));
    assert.equal(r.secure, true);
    await assert.rejects(
      imapCheck({ host: d.host, port: d.ports.imaps, secure: true }, BOB, pw(BOB)),
      (err: NodeJS.ErrnoException) => /certificate|UNABLE_TO|SELF_SIGNED/i.test(`${err.code} ${err.message}`),
      'without the test CA the certificate must not verify',
    );
  });

  test('POP3 login on the plain and the TLS port', async () => {
    const d = await dovecot.get();
    assert.equal(typeof await pop3Count({ host: d.host, port: d.ports.pop3, tls: false }, ALICE, pw(ALICE)), 'number');
    assert.equal(typeof await pop3Count({ host: d.host, port: d.ports.pop3s, tls: true, ca: d.caPem }, ALICE, pw(ALICE)), 'number');
  });

  test('a wrong password fails on IMAP and POP3, and the log says so', async () => {
    const d = await dovecot.get();
    const before = await d.countLog(logPatterns.authFailed(BOB));
    const beforeDisconnect = await d.countLog(logPatterns.authFailedDisconnect(BOB));
    await assert.rejects(imapCheck(target(d, 'imap'), BOB, 'not-the-password'),
      (err: { authenticationFailed?: boolean }) => err.authenticationFailed === true);
    await assert.rejects(pop3Count({ host: d.host, port: d.ports.pop3, tls: false }, BOB, 'not-the-password'),
      /Authentication failed/);
    await d.waitForLog(logPatterns.authFailed(BOB), before + 2);
    await d.waitForLog(logPatterns.authFailedDisconnect(BOB), beforeDisconnect + 2);
    // An unknown user is an auth failure too.
    await assert.rejects(imapCheck(target(d, 'imap'), 'ghost@example.test', 'x'),
      (err: { authenticationFailed?: boolean }) => err.authenticationFailed === true);
    await d.waitForLog(logPatterns.authFailed('ghost@example.test'));
  });

  test('log patterns match logins and logouts', async () => {
    const d = await dovecot.get();
    const count = async () => ({
      imapLogin: await d.countLog(logPatterns.imapLogin(ALICE)),
      imapLogout: await d.countLog(logPatterns.imapLogout(ALICE)),
      pop3Login: await d.countLog(logPatterns.pop3Login(ALICE)),
      pop3Logout: await d.countLog(logPatterns.pop3Logout(ALICE)),
    });
    const before = await count();
    await imapCheck(target(d, 'imaps'), ALICE, pw(ALICE));
    await pop3Count({ host: d.host, port: d.ports.pop3s, tls: true, ca: d.caPem }, ALICE, pw(ALICE));
    await d.waitForLog(logPatterns.imapLogin(ALICE), before.imapLogin + 1);
    await d.waitForLog(logPatterns.imapLogout(ALICE), before.imapLogout + 1);
    await d.waitForLog(logPatterns.pop3Login(ALICE), before.pop3Login + 1);
    await d.waitForLog(logPatterns.pop3Logout(ALICE), before.pop3Logout + 1);
    // Patterns are per user: bob's lines must not count for alice.
    assert.equal(await d.countLog(logPatterns.imapLogin('nobody@example.test')), 0);
    await assert.rejects(d.waitForLog(/never-in-the-log/, 1, 100), /never-in-the-log.*within 100 ms/s);
  });

  test('deliver() makes a message visible over IMAP and POP3', async () => {
    const d = await dovecot.get();
    const imapBefore = (await imapCheck(target(d, 'imap'), BOB, pw(BOB))).messages;
    const popBefore = await pop3Count({ host: d.host, port: d.ports.pop3, tls: false }, BOB, pw(BOB));
    await d.deliver(BOB, message('dovecot delivery'));
    assert.equal((await imapCheck(target(d, 'imap'), BOB, pw(BOB))).messages, imapBefore + 1);
    assert.equal(await pop3Count({ host: d.host, port: d.ports.pop3, tls: false }, BOB, pw(BOB)), popBefore + 1);
    // A user who never logged in gets a Maildir created on delivery.
    await d.setPassword('fresh@example.test', 'fresh-Secret-3');
    await d.deliver('fresh@example.test', message('first mail'));
    assert.equal((await imapCheck(target(d, 'imap'), 'fresh@example.test', 'fresh-Secret-3')).messages, 1);
  });

  test('setPassword() adds a user and changes a password for the next login', async () => {
    const d = await dovecot.get();
    const user = 'carol@example.test';
    await assert.rejects(imapCheck(target(d, 'imap'), user, 'carol-1'), (err: { authenticationFailed?: boolean }) => err.authenticationFailed === true);
    await d.setPassword(user, 'carol-1');
    await imapCheck(target(d, 'imap'), user, 'carol-1');
    await d.setPassword(user, 'carol-2'); // same length: only the mtime tells Dovecot it changed
    await assert.rejects(imapCheck(target(d, 'imap'), user, 'carol-1'), (err: { authenticationFailed?: boolean }) => err.authenticationFailed === true);
    await imapCheck(target(d, 'imap'), user, 'carol-2');
    assert.equal(await pop3Count({ host: d.host, port: d.ports.pop3, tls: false }, user, 'carol-2'), 0);
  });

  test('stop() frees the ports; start() serves the same ports, users and mail again', async () => {
    const d = await dovecot.get();
    const ports = { ...d.ports };
    const before = (await imapCheck(target(d, 'imap'), BOB, pw(BOB))).messages;
    await d.stop();
    for (const [name, port] of Object.entries(ports)) {
      assert.equal(await canConnect(port), false, `${name} port ${port} should refuse connections after stop()`);
    }
    await d.stop(); // idempotent
    const t0 = performance.now();
    await d.start();
    const restartMs = Math.round(performance.now() - t0);
    assert.deepEqual(d.ports, ports);
    assert.equal((await imapCheck(target(d, 'imaps'), BOB, pw(BOB))).messages, before);
    assert.equal(typeof await pop3Count({ host: d.host, port: d.ports.pop3s, tls: true, ca: d.caPem }, ALICE, pw(ALICE)), 'number');
    startTimes['dovecot restart'] = restartMs;
  });
});

// ---------------------------------------------------------------- GreenMail
describe('greenmail', () => {
  const tlsOf = (g: GreenMailServer) => (g.caPem ? { ca: g.caPem } : { insecure: true }); // external: own self-signed cert

  test('IMAP and POP3 login on the plain ports', async () => {
    const g = await greenmail.get();
    const r = await imapCheck({ host: g.host, port: g.ports.imap, secure: false }, ALICE, pw(ALICE));
    assert.equal(r.secure, false, 'GreenMail offers no STARTTLS');
    assert.equal(typeof await pop3Count({ host: g.host, port: g.ports.pop3, tls: false }, ALICE, pw(ALICE)), 'number');
  });

  test('IMAPS and POP3S login (cert verified with the test CA when GreenMail runs locally)', async () => {
    const g = await greenmail.get();
    const r = await imapCheck({ host: g.host, port: g.ports.imaps, secure: true, ...tlsOf(g) }, BOB, pw(BOB));
    assert.equal(r.secure, true);
    assert.equal(typeof await pop3Count({ host: g.host, port: g.ports.pop3s, tls: true, ...tlsOf(g) }, BOB, pw(BOB)), 'number');
  });

  test('a wrong password fails on IMAP and POP3', async () => {
    const g = await greenmail.get();
    await assert.rejects(imapCheck({ host: g.host, port: g.ports.imap, secure: false }, ALICE, 'not-the-password'),
      (err: { authenticationFailed?: boolean }) => err.authenticationFailed === true);
    await assert.rejects(pop3Count({ host: g.host, port: g.ports.pop3, tls: false }, ALICE, 'not-the-password'),
      /Authentication failed/);
  });

  test('deliver() (over SMTP) makes a message visible, dot-stuffing intact', async () => {
    const g = await greenmail.get();
    const before = (await imapCheck({ host: g.host, port: g.ports.imap, secure: false }, BOB, pw(BOB))).messages;
    const subject = `greenmail delivery ${Date.now()}`;
    await g.deliver(BOB, message(subject, 'first line\n.a line starting with a dot\n..two dots\n'));
    assert.equal((await imapCheck({ host: g.host, port: g.ports.imap, secure: false }, BOB, pw(BOB))).messages, before + 1);

    const client = new ImapFlow({ host: g.host, port: g.ports.imap, secure: false, auth: { user: BOB, pass: pw(BOB) }, logger: false });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.mailboxOpen('INBOX');
      const msg = await client.fetchOne('*', { source: true });
      assert.ok(msg && msg.source, 'the delivered message should be fetchable');
      const source = msg.source.toString('utf8');
      assert.match(source, new RegExp(`Subject: ${subject}`));
      // (GreenMail keeps the last CRLF as part of the "CRLF.CRLF" terminator.)
      assert.match(source, /\r\n\.a line starting with a dot\r\n\.\.two dots(\r\n)?$/);
      await client.logout();
    } finally {
      client.close();
    }
    assert.equal(await pop3Count({ host: g.host, port: g.ports.pop3, tls: false }, BOB, pw(BOB)), before + 1);
  });
});

// ---------------------------------------------------------------- TCP tools
describe('tcp-tools', () => {
  test('silent server accepts and never speaks; close() drops its sockets', async () => {
    const silent = await startSilentServer();
    try {
      const socket = await connectRaw(silent.port);
      socket.write('a1 CAPABILITY\r\n');
      assert.equal(await collectFor(socket, 300), '', 'the silent server must not send anything');
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => undefined);
      await silent.close();
      await closed;
      await assert.rejects(
        imapCheck({ host: '127.0.0.1', port: silent.port, secure: false }, ALICE, 'x'),
        (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED',
      );
    } finally {
      await silent.close().catch(() => undefined);
    }
    const again = await startSilentServer();
    try {
      await assert.rejects(
        new ImapFlow({ host: '127.0.0.1', port: again.port, secure: false, logger: false, greetingTimeout: 300, auth: { user: ALICE, pass: 'x' } })
          .on('error', () => undefined).connect(),
        (err: NodeJS.ErrnoException) => err.code === 'GREETING_TIMEOUT',
      );
    } finally {
      await again.close();
    }
  });

  test('proxy forwards a real IMAP session and counts connections', async () => {
    const d = await dovecot.get();
    const proxy = await startTcpProxy({ host: d.host, port: d.ports.imap });
    try {
      const r = await imapCheck({ host: '127.0.0.1', port: proxy.port, secure: false, ca: d.caPem }, ALICE, pw(ALICE));
      assert.equal(r.secure, true, 'STARTTLS through the proxy');
      const socket = await connectRaw(proxy.port);
      await readUntil(socket, /^\* OK/m);
      assert.equal(proxy.connections(), 1);
      socket.destroy();
      for (let i = 0; i < 50 && proxy.connections() !== 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(proxy.connections(), 0);
    } finally {
      await proxy.close();
    }
  });

  test('proxy blackhole drops traffic both ways without closing; off again resumes', async () => {
    const d = await dovecot.get();
    const proxy = await startTcpProxy({ host: d.host, port: d.ports.imap });
    const socket = await connectRaw(proxy.port);
    socket.on('error', () => undefined);
    try {
      await readUntil(socket, /^\* OK/m);
      proxy.blackhole(true);
      socket.write('a1 NOOP\r\n');
      assert.equal(await collectFor(socket, 400), '', 'nothing may come back while blackholed');
      assert.equal(socket.destroyed, false, 'the socket stays open (half-open TCP)');
      assert.equal(proxy.connections(), 1);
      proxy.blackhole(false);
      socket.write('a2 NOOP\r\n');
      const reply = await readUntil(socket, /^a2 OK/m);
      assert.doesNotMatch(reply, /^a1 /m, 'a1 was dropped, not delayed');
    } finally {
      socket.destroy();
      await proxy.close();
    }
  });

  test('proxy resetAll() resets every client connection', async () => {
    const d = await dovecot.get();
    const proxy = await startTcpProxy({ host: d.host, port: d.ports.pop3 });
    try {
      const sockets = [await connectRaw(proxy.port), await connectRaw(proxy.port)];
      await Promise.all(sockets.map((s) => readUntil(s, /^\+OK/m)));
      assert.equal(proxy.connections(), 2);
      const outcomes = sockets.map((s) => new Promise<string>((resolve) => {
        let code = 'closed without error';
        s.on('error', (err: NodeJS.ErrnoException) => { code = err.code ?? err.message; });
        s.on('close', () => resolve(code));
      }));
      proxy.resetAll();
      assert.deepEqual(await Promise.all(outcomes), ['ECONNRESET', 'ECONNRESET']);
      assert.equal(proxy.connections(), 0);
      // The proxy still accepts new connections afterwards.
      const socket = await connectRaw(proxy.port);
      await readUntil(socket, /^\+OK/m);
      socket.destroy();
    } finally {
      await proxy.close();
    }
  });
});
