// GreenMail (the design card's test mail server) for integration tests.
//
// Local mode runs the standalone jar in a JVM on free loopback ports. External mode (env
// MSB_TEST_GREENMAIL_HOST set, e.g. a docker-compose `greenmail/standalone:2.1.8` whose
// GREENMAIL_OPTS preset the default users) starts nothing and only points at that host.
//
// Properties (checked against the 2.1.8 jar's usage text and classes):
//   greenmail.hostname            bind address of every protocol; it also switches GreenMail's
//                                 REST API on (default port 8080!), so we give the API a free port
//                                 with greenmail.api.port instead of colliding on 8080.
//   greenmail.<proto>.port        one per protocol (smtp, smtps, imap, imaps, pop3, pop3s).
//   greenmail.users               local:password@domain,... ; greenmail.users.login=email makes the
//                                 full address the login name.
//   greenmail.tls.keystore.file   a PKCS12 keystore (plus greenmail.tls.keystore.password) that
//                                 replaces GreenMail's built-in self-signed certificate: we pass
//                                 our CA-signed test cert, so TLS to a local GreenMail verifies
//                                 with `caPem`. External GreenMail keeps its own self-signed cert
//                                 (caPem undefined): tests must use the service's explicit opt-out.
//   greenmail.startup.timeout     per-server start timeout (default 2000 ms, too tight on a busy CI).
// GreenMail offers no STARTTLS on its plain IMAP/POP3 ports.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { makeCerts } from './certs.js';
import { defaultUsers, killGroupOnExit, removeDirOnExit } from './dovecot.js';
import { canConnect, freePort, waitForPort, waitForPortClosed } from './ports.js';

export const GREENMAIL_VERSION = '2.1.8';

export interface GreenMailPorts { imap: number; imaps: number; pop3: number; pop3s: number; smtp: number; smtps: number }

export interface GreenMailServer {
  host: string;
  ports: GreenMailPorts;
  /** user (full address, also the login) -> password */
  users: Readonly<Record<string, string>>;
  /** CA that signed the TLS ports' certificate; undefined when GreenMail uses its built-in self-signed one. */
  caPem: string | undefined;
  /** Base URL of GreenMail's REST API (local mode only). */
  apiUrl: string | undefined;
  /** True when pointing at an externally managed GreenMail (MSB_TEST_GREENMAIL_HOST). */
  external: boolean;
  /** Delivers a message to `user`'s INBOX through GreenMail's SMTP port. */
  deliver(user: string, rfc822: string): Promise<void>;
  /** GreenMail's stdout/stderr so far ('' in external mode). */
  logText(): Promise<string>;
  /** Stops the JVM (no-op in external mode). */
  stop(): Promise<void>;
  /** stop() and remove the temp dir (no-op in external mode). */
  close(): Promise<void>;
}

export interface GreenMailOptions {
  /** user -> password; defaults to Dovecot's `defaultUsers`. Ignored in external mode. */
  users?: Record<string, string>;
  /** Serve our CA-signed test certificate on imaps/pop3s (default true). */
  ownCert?: boolean;
}

const execFileAsync = promisify(execFile);

/** Where .ci/install-test-deps puts the jar (GREENMAIL_JAR overrides). */
export function greenMailJarPath(): string {
  if (process.env.GREENMAIL_JAR) return process.env.GREENMAIL_JAR;
  const cache = process.env.MSB_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'mail-session-broker');
  return path.join(cache, `greenmail-standalone-${GREENMAIL_VERSION}.jar`);
}

function envPort(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name}=${raw} is not a TCP port`);
  return port;
}

/**
 * -Dgreenmail.users entries are parsed with ^([^:]+):(?:(.+)@([^@]+)|(.+))$, comma separated:
 * we write local:password@domain (with users.login=email the login is local@domain).
 */
function usersProperty(users: Record<string, string>): string {
  return Object.entries(users).map(([user, password]) => {
    const at = user.lastIndexOf('@');
    const local = user.slice(0, at);
    const domain = user.slice(at + 1);
    if (at <= 0 || !domain || /[,:\s]/.test(local) || /[,@\s]/.test(domain) || /[,\s]/.test(password) || password === '') {
      throw new Error(`GreenMail users must be local@domain with a non-empty password without commas or spaces: ${JSON.stringify(user)}`);
    }
    return `${local}:${password}@${domain}`;
  }).join(',');
}

function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export async function startGreenMail(opts: GreenMailOptions = {}): Promise<GreenMailServer> {
  return process.env.MSB_TEST_GREENMAIL_HOST ? external(process.env.MSB_TEST_GREENMAIL_HOST) : local(opts);
}

async function external(host: string): Promise<GreenMailServer> {
  const ports: GreenMailPorts = {
    imap: envPort('MSB_TEST_GREENMAIL_IMAP_PORT', 3143),
    imaps: envPort('MSB_TEST_GREENMAIL_IMAPS_PORT', 3993),
    pop3: envPort('MSB_TEST_GREENMAIL_POP3_PORT', 3110),
    pop3s: envPort('MSB_TEST_GREENMAIL_POP3S_PORT', 3995),
    smtp: envPort('MSB_TEST_GREENMAIL_SMTP_PORT', 3025),
    smtps: envPort('MSB_TEST_GREENMAIL_SMTPS_PORT', 3465),
  };
  for (const [name, port] of Object.entries(ports)) {
    await waitForPort(port, host, 15000, `external GreenMail ${name} (MSB_TEST_GREENMAIL_HOST=${host})`);
  }
  return {
    host,
    ports,
    users: { ...defaultUsers }, // must match the users preset in GREENMAIL_OPTS
    caPem: undefined,
    apiUrl: undefined,
    external: true,
    deliver: (user, rfc822) => smtpDeliver(host, ports.smtp, user, rfc822),
    logText: async () => '',
    stop: async () => undefined,
    close: async () => undefined,
  };
}

async function local(opts: GreenMailOptions): Promise<GreenMailServer> {
  const jar = greenMailJarPath();
  if (!existsSync(jar)) {
    throw new Error(`GreenMail jar not found at ${jar}: run .ci/install-test-deps (or set GREENMAIL_JAR)`);
  }
  try {
    await execFileAsync('java', ['-version']);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'java not found' : `java -version failed (${(err as Error).message})`;
    throw new Error(`${why}: GreenMail needs Java 11+ (e.g. apt-get install default-jre-headless; see .ci/install-test-deps)`);
  }

  const users = { ...(opts.users ?? defaultUsers) };
  const host = '127.0.0.1';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'msb-greenmail-'));
  const forgetDir = removeDirOnExit(dir);
  const logFile = path.join(dir, 'greenmail.log');
  const ports: GreenMailPorts = {
    imap: await freePort(), imaps: await freePort(), pop3: await freePort(), pop3s: await freePort(), smtp: await freePort(), smtps: await freePort(),
  };
  const apiPort = await freePort();

  const props: string[] = [
    `-Dgreenmail.hostname=${host}`,
    `-Dgreenmail.api.port=${apiPort}`,
    `-Dgreenmail.users=${usersProperty(users)}`,
    '-Dgreenmail.users.login=email',
    ...Object.entries(ports).map(([proto, port]) => `-Dgreenmail.${proto}.port=${port}`),
    '-Dgreenmail.startup.timeout=20000',
  ];
  let caPem: string | undefined;
  if (opts.ownCert ?? true) {
    const certs = await makeCerts();
    const p12 = path.join(dir, 'greenmail.p12');
    const password = 'msb-test-only';
    // Java 17 reads OpenSSL 3's default PKCS12 (AES/PBKDF2); the key password is the store password.
    await execFileAsync('openssl', [
      'pkcs12', '-export', '-in', certs.certFile, '-inkey', certs.keyFile, '-certfile', certs.caFile,
      '-name', 'greenmail', '-passout', `pass:${password}`, '-out', p12,
    ]);
    props.push(`-Dgreenmail.tls.keystore.file=${p12}`, `-Dgreenmail.tls.keystore.password=${password}`);
    caPem = certs.caPem;
  }
  // Quicker JVM start for a short-lived test server: C1 only, serial GC, small heap.
  const jvm = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-Xms32m', '-Xmx256m'];

  let child: ChildProcess | undefined;
  let unregister: (() => void) | undefined;
  let exited: Promise<void> = Promise.resolve();
  const logText = async (): Promise<string> => {
    try { return await readFile(logFile, 'utf8'); } catch { return ''; }
  };

  // Output goes to a file, never into a pipe we would have to drain forever.
  const out = openSync(logFile, 'a');
  const proc = spawn('java', [...jvm, ...props, '-jar', jar], { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  child = proc;
  let exitInfo: string | undefined;
  exited = new Promise((resolve) => {
    proc.once('error', (err) => { exitInfo = `spawn error: ${err.message}`; resolve(); });
    proc.once('exit', (code, signal) => { exitInfo = `exit code ${code}, signal ${signal}`; resolve(); });
  });
  if (proc.pid !== undefined) unregister = killGroupOnExit(proc.pid);

  async function stop(): Promise<void> {
    const p = child;
    if (!p) return;
    if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) {
      try { process.kill(-p.pid, 'SIGTERM'); } catch { /* gone */ }
      // ref: false, or this timer alone would hold the test process open for 5 s after close().
      const late = await Promise.race([exited.then(() => false), sleep(5000, undefined, { ref: false }).then(() => true)]);
      if (late) { try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } }
      await exited;
    }
    unregister?.();
    unregister = undefined;
    child = undefined;
    for (const [name, port] of Object.entries(ports)) {
      await waitForPortClosed(port, host, 5000, `stopped GreenMail's ${name} listener`);
    }
  }

  // Wait for every port. GreenMail's JVM stays alive when a server fails to start, so also
  // watch its log for the startup exception instead of waiting for the full timeout.
  const deadline = Date.now() + 30000;
  try {
    for (const [name, port] of Object.entries(ports)) {
      for (;;) {
        if (exitInfo !== undefined) throw new Error(`it exited early: ${exitInfo}`);
        if (/Exception in thread "main"|Could not start mail server/.test(await logText())) throw new Error('a mail server failed to start');
        if (await canConnect(port, host)) break;
        if (Date.now() >= deadline) throw new Error(`its ${name} port ${port} never accepted a TCP connection within 30 s`);
        await sleep(25);
      }
    }
  } catch (err) {
    await stop().catch(() => undefined);
    throw new Error(`GreenMail did not start (${(err as Error).message}). Jar: ${jar}\n--- tail of ${logFile} ---\n${tail(await logText())}`);
  }

  return {
    host,
    ports,
    users,
    caPem,
    apiUrl: `http://${host}:${apiPort}`,
    external: false,
    deliver: (user, rfc822) => smtpDeliver(host, ports.smtp, user, rfc822),
    logText,
    stop,
    async close() {
      await stop();
      if (!process.env.MSB_KEEP_TEST_DIRS) await rm(dir, { recursive: true, force: true });
      forgetDir();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A minimal SMTP client: enough to hand one message to GreenMail, checking every reply code.
// ---------------------------------------------------------------------------------------------

/**
 * Sends `rfc822` to `rcpt` via SMTP at host:port (EHLO, MAIL FROM, RCPT TO, DATA, QUIT). With `lmtp`,
 * the same through LMTP (RFC 2033: LHLO instead of EHLO; one reply per recipient after DATA, and with
 * one recipient that is the one reply read here).
 */
export async function smtpDeliver(host: string, port: number, rcpt: string, rfc822: string, timeoutMs = 10000, lmtp = false): Promise<void> {
  const socket = net.connect({ host, port });
  socket.setEncoding('utf8');
  let buffer = '';
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => { wake?.(); };
  socket.on('data', (chunk: string) => { buffer += chunk; notify(); });
  socket.on('error', (err) => { failure = err; notify(); });
  socket.on('close', () => { failure ??= new Error('connection closed by server'); notify(); });

  // Reads one (possibly multi-line) reply: lines "250-..." continue, "250 ..." ends it.
  const reply = async (step: string): Promise<{ code: number; text: string }> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = buffer.split('\r\n');
      for (let i = 0; i < lines.length - 1; i++) {
        if (/^\d{3}(?: |$)/.test(lines[i] ?? '')) {
          const text = lines.slice(0, i + 1).join('\n');
          buffer = lines.slice(i + 1).join('\r\n');
          return { code: Number(text.slice(text.lastIndexOf('\n') + 1, text.lastIndexOf('\n') + 4)), text };
        }
      }
      if (failure) throw new Error(`SMTP ${host}:${port} ${step}: ${failure.message}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`SMTP ${host}:${port} ${step}: no reply within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => { clearTimeout(timer); resolve(); };
      });
      wake = undefined;
    }
  };
  const expect = async (step: string, code: number): Promise<void> => {
    const r = await reply(step);
    if (r.code !== code) throw new Error(`SMTP ${host}:${port} ${step}: expected ${code}, got: ${r.text}`);
  };
  const send = (line: string): void => { socket.write(line); };

  try {
    await expect('greeting', 220);
    send(`${lmtp ? 'LHLO' : 'EHLO'} mail-session-broker.test\r\n`);
    await expect(lmtp ? 'LHLO' : 'EHLO', 250);
    send('MAIL FROM:<harness@mail-session-broker.test>\r\n');
    await expect('MAIL FROM', 250);
    send(`RCPT TO:<${rcpt}>\r\n`);
    await expect('RCPT TO', 250);
    send('DATA\r\n');
    await expect('DATA', 354);
    // CRLF line ends, and dot-stuffing: a line starting with "." gets another "." in front.
    let body = rfc822.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    if (!body.endsWith('\r\n')) body += '\r\n';
    send(`${body}.\r\n`);
    await expect('end of DATA', 250);
    send('QUIT\r\n');
    await expect('QUIT', 221);
  } finally {
    socket.destroy();
  }
}
