// A private Dovecot (IMAP + POP3, plain and TLS) for integration tests.
//
// Each call starts its own `dovecot -F -c <tmp>/dovecot.conf` with base_dir, state_dir, log and
// mail all in a temp dir, on free loopback ports, so tests never touch a system instance.
// Facts behind the settings are in docs/protocol-facts.md ("Dovecot as the test
// IMAP/POP3 server"); the log line formats below were checked against Dovecot 2.3.19.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeCerts } from './certs.js';
import { canConnect, freePort, waitForPortClosed } from './ports.js';

export interface DovecotServer {
  host: '127.0.0.1';
  ports: { imap: number; imaps: number; pop3: number; pop3s: number };
  /** The CA that signed the server certificate (pass it as `ca` to TLS clients). */
  caPem: string;
  dir: string;
  /** Adds or changes a user; Dovecot re-reads the passwd-file, so the next login sees it. */
  setPassword(user: string, password: string): Promise<void>;
  /** Drops a message into the user's Maildir (tmp/, then rename into new/). */
  deliver(user: string, rfc822: string): Promise<void>;
  /** The whole Dovecot log so far. */
  logText(): Promise<string>;
  /** Number of log lines matching `re`. */
  countLog(re: RegExp): Promise<number>;
  /** Polls the log until at least `count` lines match `re`. */
  waitForLog(re: RegExp, count?: number, timeoutMs?: number): Promise<void>;
  /**
   * SIGTERM to the process group, SIGKILL after a grace (5 s, 30 s in scale mode: thousands of clients take
   * long to log out); resolves once every process of the group is gone and the ports are free.
   */
  stop(): Promise<void>;
  /** Starts again on the same ports, with the same users and mail. */
  start(): Promise<void>;
  /** stop() and remove the temp dir. */
  close(): Promise<void>;
}

export interface DovecotOptions {
  /** user -> password; defaults to `defaultUsers`. */
  users?: Record<string, string>;
  /** Settings for thousands of concurrent sessions (see docs/protocol-facts.md, "Real servers used in tests"). */
  scale?: boolean;
  /**
   * OAuth2 logins besides the passwords: Dovecot's oauth2 passdb takes SASL XOAUTH2 / OAUTHBEARER and
   * asks `introspectionUrl` about each token (RFC 7662 style: POST token=..., answer
   * {"active": true, "username": "..."}); the username must be the one the client logs in as.
   */
  oauth2?: DovecotOAuth2Options;
  /**
   * Log timestamps with microseconds ("2026-11-26 05:52:43.123456 imap-login: ..."; Dovecot's
   * %{usecs}), for tests that order logins and logouts of different connections (the replica tests).
   */
  preciseLog?: boolean;
  /**
   * Folders with an RFC 6154 special use, created for every user at login (Dovecot `namespace inbox { mailbox
   * NAME { special_use = \\FLAG; auto = create } }`), e.g. { 'Bot Outbox': '\\Sent' }. Dovecot then announces
   * SPECIAL-USE. Names must not hold quotes or line breaks.
   */
  specialUse?: Record<string, string>;
  /**
   * What Dovecot advertises after login instead of its own list (`imap_capability`), e.g. to take MOVE or UIDPLUS
   * away: clients then do without them (Dovecot still answers the commands if sent).
   */
  imapCapability?: string;
}

export interface DovecotOAuth2Options {
  introspectionUrl: string;
  /** SASL mechanisms offered for tokens; default both. Microsoft 365 offers XOAUTH2 only. */
  mechanisms?: ('xoauth2' | 'oauthbearer')[];
}

export const defaultUsers: Readonly<Record<string, string>> = Object.freeze({
  'alice@example.test': 'alice-Secret-1',
  'bob@example.test': 'bob-Secret-2',
});

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Regexes for the log lines Dovecot 2.3.19 writes with this config (verified by running it):
 *   Nov 26 05:52:43 imap-login: Info: Login: user=<alice@example.test>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=9531, TLS, session=<vMRWjSdhbOZ/AAAB>
 *   Nov 26 05:52:43 imap(alice@example.test)<9531><vMRWjSdhbOZ/AAAB>: Info: Disconnected: Logged out in=200 out=753 deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0
 *   Nov 26 05:52:43 pop3-login: Info: Login: user=<alice@example.test>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=9536, TLS, session=<1HFfjSdhwMV/AAAB>
 *   Nov 26 05:52:43 pop3(alice@example.test)<9536><1HFfjSdhwMV/AAAB>: Info: Disconnected: Logged out top=0/0, retr=0/0, del=0/0, size=0
 *   Nov 26 06:06:10 auth: Info: passwd-file(alice@example.test,127.0.0.1,<Y5JxvSdheI9/AAAB>): Password mismatch
 *   Nov 26 06:06:10 auth: Info: passwd-file(ghost@example.test,127.0.0.1,<Y5JxvSdheI9/AAAB>): unknown user
 *   Nov 26 06:06:11 imap-login: Info: Disconnected: Connection closed (auth failed, 2 attempts in 1 secs): user=<alice@example.test>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, secured, session=<Y5JxvSdheI9/AAAB>
 *   Nov 26 05:52:44 pop3-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts in 1 secs): user=<alice@example.test>, ...
 * ("TLS" after STARTTLS/implicit TLS; "secured" for plain connections from 127.0.0.1.)
 * Logouts match only clean ones (LOGOUT / QUIT), not dropped connections.
 * authFailed: one line per failed attempt, written at once by the auth process (IMAP and POP3).
 * authFailedDisconnect: the login process's line, written when that connection ends; it names
 * only the last user tried on the connection.
 * The harness's own port probes at start-up add "Disconnected: ... (no auth attempts ...)" and
 * "(disconnected before auth was ready ...)" lines with user=<>.
 */
export const logPatterns = {
  imapLogin: (user: string): RegExp => new RegExp(`imap-login: Info: Login: user=<${escapeRe(user)}>`),
  pop3Login: (user: string): RegExp => new RegExp(`pop3-login: Info: Login: user=<${escapeRe(user)}>`),
  imapLogout: (user: string): RegExp => new RegExp(`imap\\(${escapeRe(user)}\\)<[^>]*><[^>]*>: Info: (?:Disconnected: )?Logged out`),
  pop3Logout: (user: string): RegExp => new RegExp(`pop3\\(${escapeRe(user)}\\)<[^>]*><[^>]*>: Info: Disconnected: Logged out`),
  authFailed: (user: string): RegExp => new RegExp(`auth: Info: [a-z-]+\\(${escapeRe(user)},[^)]*\\): (?:Password mismatch|unknown user)`),
  authFailedDisconnect: (user: string): RegExp =>
    new RegExp(`(?:imap|pop3)-login: Info: Disconnected: .*\\(auth failed, \\d+ attempts? in \\d+ secs?\\): user=<${escapeRe(user)}>`),
};

// ---------------------------------------------------------------------------------------------
// Child processes that must not outlive the test process.
//
// The servers run detached (own process group) so that stop() can signal the whole group and
// a Ctrl-C in the terminal does not race our own shutdown. The price is that nothing kills
// them when the test process dies, so: (1) on 'exit' and on SIGINT/SIGTERM we SIGKILL every
// group still registered, and (2) a tiny `sh` "reaper" per group waits for EOF on a pipe from
// us and then kills the group: that also covers the test process being SIGKILLed.
// Temp dirs are removed by the same 'exit' hook. Exported for greenmail.ts.
// ---------------------------------------------------------------------------------------------
const liveGroups = new Map<number, ChildProcess | undefined>(); // pgid -> its reaper
const tempDirs = new Set<string>();
let exitHooksInstalled = false;

function killGroupNow(pgid: number): void {
  try { process.kill(-pgid, 'SIGKILL'); } catch { /* already gone */ }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  // One listener for all servers (not one per server: that would trip MaxListenersExceeded).
  process.on('exit', () => {
    for (const pgid of liveGroups.keys()) killGroupNow(pgid);
    // Set MSB_KEEP_TEST_DIRS=1 to keep configs and logs for a post-mortem.
    if (!process.env.MSB_KEEP_TEST_DIRS) for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const pgid of liveGroups.keys()) killGroupNow(pgid);
      // When nobody else handles the signal, die as Node would have (128 + signal number), but
      // through process.exit() so that the 'exit' hooks also remove the temp dirs.
      if (process.listenerCount(signal) === 0) process.exit(128 + os.constants.signals[signal]);
    });
  }
}

/** Registers a detached child's process group to be killed if the test process goes away. */
export function killGroupOnExit(pgid: number): () => void {
  installExitHooks();
  let reaper: ChildProcess | undefined;
  try {
    reaper = spawn('sh', ['-c', 'read _ignored; kill -9 "-$1" 2>/dev/null', 'msb-reaper', String(pgid)], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    });
    reaper.on('error', () => { /* no sh: the exit hooks still apply */ });
    reaper.unref();
    // The pipe must not keep the event loop alive, or tests would never end.
    (reaper.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  } catch { reaper = undefined; }
  liveGroups.set(pgid, reaper);
  return () => {
    liveGroups.delete(pgid);
    // Kill the reaper by its own pid (our child) before the group id can be reused.
    if (reaper?.pid !== undefined && reaper.exitCode === null) {
      try { reaper.kill('SIGKILL'); } catch { /* gone */ }
    }
  };
}

/** Registers a temp dir to be removed when the test process exits; returns "forget it". */
export function removeDirOnExit(dir: string): () => void {
  installExitHooks();
  tempDirs.add(dir);
  return () => { tempDirs.delete(dir); };
}

// ---------------------------------------------------------------------------------------------

const NOT_INSTALLED = 'install dovecot-imapd dovecot-pop3d (run .ci/install-test-deps; see .ci/run)';

function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try { accessSync(candidate, fsConstants.X_OK); return candidate; } catch { /* next */ }
  }
  return undefined;
}

/** Fails early, with the package names, when dovecot or its IMAP/POP3 parts are missing. */
function checkInstalled(): string {
  const dovecot = findExecutable('dovecot');
  if (!dovecot) throw new Error(`dovecot not found: ${NOT_INSTALLED}`);
  const prefix = path.dirname(path.dirname(dovecot));
  const libexecDirs = ['/usr/lib/dovecot', '/usr/libexec/dovecot', path.join(prefix, 'lib/dovecot'), path.join(prefix, 'libexec/dovecot')];
  const libexec = libexecDirs.find((d) => existsSync(path.join(d, 'anvil')));
  if (libexec) {
    for (const [bin, pkg] of [['imap', 'dovecot-imapd'], ['pop3', 'dovecot-pop3d']] as const) {
      if (!existsSync(path.join(libexec, bin))) {
        throw new Error(`dovecot is installed but ${path.join(libexec, bin)} is missing: install ${pkg} (run .ci/install-test-deps)`);
      }
    }
  }
  return dovecot;
}

interface Ids { uid: number; gid: number }

function lookupId(file: string, name: string): number | undefined {
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const fields = line.split(':');
      if (fields[0] === name && fields[2] !== undefined) return Number(fields[2]);
    }
  } catch { /* no such file */ }
  return undefined;
}

const isRoot = process.getuid?.() === 0;

/** Who owns the mail: Dovecot refuses uid 0, so as root mail belongs to nobody:nogroup. */
function mailOwner(): Ids & { user: string; group: string } {
  if (isRoot) {
    const group = lookupId('/etc/group', 'nogroup') !== undefined ? 'nogroup' : 'nobody';
    const uid = lookupId('/etc/passwd', 'nobody');
    const gid = lookupId('/etc/group', group);
    if (uid === undefined || gid === undefined) throw new Error('startDovecot: no "nobody" user / "nogroup" group to own the test mail');
    return { uid, gid, user: 'nobody', group };
  }
  const me = os.userInfo();
  const group = readFileSync('/etc/group', 'utf8').split('\n').map((l) => l.split(':')).find((f) => Number(f[2]) === me.gid)?.[0];
  return { uid: me.uid, gid: me.gid, user: me.username, group: group ?? String(me.gid) };
}

interface ConfigInput {
  dir: string;
  ports: DovecotServer['ports'];
  certFile: string;
  keyFile: string;
  owner: ReturnType<typeof mailOwner>;
  scale: boolean;
  oauth2?: DovecotOAuth2Options | undefined;
  preciseLog?: boolean | undefined;
  specialUse?: Record<string, string> | undefined;
  imapCapability?: string | undefined;
}

/**
 * The oauth2 passdb's settings file (Dovecot 2.3.19, checked by running it): introspection by POST
 * (form "token=...&client_id=&client_secret="), the token is valid when "active" is true, and
 * "username" must equal the SASL user, else "Username 'x' did not match 'y'". No tokeninfo_url, so
 * every login asks the endpoint (and the auth cache is off): a revoked token fails at once.
 */
function renderOAuth2Config(o: DovecotOAuth2Options): string {
  return [
    'introspection_mode = post',
    `introspection_url = ${o.introspectionUrl}`,
    'username_attribute = username',
    'active_attribute = active',
    'active_value = true',
    'force_introspection = yes',
    '',
  ].join('\n');
}

function renderConfig(c: ConfigInput): string {
  const { dir, ports, owner } = c;
  const lines = [
    '# Generated by test/harness/dovecot.ts for one test run. Do not use in production.',
    `base_dir = ${dir}/run`,
    `state_dir = ${dir}/state`,
    `log_path = ${dir}/dovecot.log`,
    ...(c.preciseLog ? ['log_timestamp = "%Y-%m-%d %H:%M:%S.%{usecs} "'] : []),
    'protocols = imap pop3',
    'listen = 127.0.0.1',
    // ssl = yes (not required) keeps STARTTLS/STLS on the plain ports optional but offered.
    'ssl = yes',
    `ssl_cert = <${c.certFile}`,
    `ssl_key = <${c.keyFile}`,
    'disable_plaintext_auth = no',
    `auth_mechanisms = plain login${c.oauth2 ? ` ${(c.oauth2.mechanisms ?? ['xoauth2', 'oauthbearer']).join(' ')}` : ''}`,
    // A wrong password would otherwise cost 2 s per attempt.
    'auth_failure_delay = 0',
    // Log every authentication result (e.g. "Password mismatch").
    'auth_verbose = yes',
    ...(c.oauth2
      ? ['passdb {', '  driver = oauth2', `  mechanisms = ${(c.oauth2.mechanisms ?? ['xoauth2', 'oauthbearer']).join(' ')}`, `  args = ${dir}/dovecot-oauth2.conf.ext`, '}']
      : []),
    'passdb {',
    '  driver = passwd-file',
    `  args = scheme=PLAIN username_format=%u ${dir}/users`,
    // with tokens offered, a token is never compared with a password
    ...(c.oauth2 ? ['  mechanisms = plain login'] : []),
    '}',
    'userdb {',
    '  driver = static',
    `  args = home=${dir}/mail/%u`,
    '}',
    `mail_location = maildir:${dir}/mail/%u`,
    `mail_uid = ${owner.user}`,
    `mail_gid = ${owner.group}`,
    // Default 10 per user+IP: tests open many sessions for the same user from 127.0.0.1.
    'mail_max_userip_connections = 10000',
    'service anvil {',
    // mode = 0 disables the auth penalty (after failures even good logins would take up to 15 s).
    '  unix_listener anvil-auth-penalty {',
    '    mode = 0',
    '  }',
    ...(isRoot ? [] : ['  chroot =']),
    '}',
    'service imap-login {',
    `  inet_listener imap {\n    port = ${ports.imap}\n  }`,
    `  inet_listener imaps {\n    port = ${ports.imaps}\n    ssl = yes\n  }`,
    ...(isRoot ? [] : ['  chroot =']),
    // scale mode: one login process holds the TLS of every client it took (it proxies them to the imap
    // processes); at 4,000 TLS clients (2,000 watching sessions) it outgrew the default 256 MB and was
    // killed, taking every connection with it
    ...(c.scale ? ['  service_count = 0', '  client_limit = 10000', '  vsz_limit = 2048M'] : []),
    '}',
    'service pop3-login {',
    `  inet_listener pop3 {\n    port = ${ports.pop3}\n  }`,
    `  inet_listener pop3s {\n    port = ${ports.pop3s}\n    ssl = yes\n  }`,
    ...(isRoot ? [] : ['  chroot =']),
    ...(c.scale ? ['  service_count = 0', '  client_limit = 10000'] : []),
    '}',
  ];
  if (!isRoot) {
    // Unprivileged: every internal service runs as the current user (see docs/protocol-facts.md).
    lines.push(
      `default_internal_user = ${owner.user}`,
      `default_internal_group = ${owner.group}`,
      `default_login_user = ${owner.user}`,
    );
  }
  if (c.specialUse) {
    lines.push('namespace inbox {', '  inbox = yes');
    for (const [name, flag] of Object.entries(c.specialUse)) {
      if (/["\r\n\\]/.test(name) || !/^\\[A-Za-z]+$/.test(flag)) throw new Error(`dovecot special-use folder ${JSON.stringify(name)} ${flag}: not allowed`);
      lines.push(`  mailbox "${name}" {`, `    special_use = ${flag}`, '    auto = create', '  }');
    }
    lines.push('}');
  }
  if (c.imapCapability) {
    if (!/^[A-Za-z0-9=+ .-]+$/.test(c.imapCapability)) throw new Error(`dovecot imap_capability ${JSON.stringify(c.imapCapability)}: not allowed`);
    lines.push(`imap_capability = ${c.imapCapability}`);
  }
  if (c.scale) {
    // Each imap process holds its clients' state; clients that keep INBOX selected and IDLE (the events
    // work) take far more than idle logins: 1,000 a process ran out of the 256 MB vsz_limit near 900. 200 a
    // process with 1 GB each leaves room; 200 processes serve 40,000 clients.
    lines.push(
      'default_client_limit = 10000',
      'service imap {',
      '  service_count = 0',
      `  client_limit = ${SCALE_CLIENTS_PER_PROCESS}`,
      '  process_limit = 200',
      '  vsz_limit = 1024M',
      '}',
      'service stats {',
      '  client_limit = 10000',
      '}',
    );
  }
  return lines.join('\n') + '\n';
}

/** Clients packed into one imap process in scale mode (see renderConfig). */
export const SCALE_CLIENTS_PER_PROCESS = 200;

function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

let deliveries = 0;

/** Starts a private Dovecot; see DovecotServer. Throws a descriptive Error if it cannot. */
export async function startDovecot(opts: DovecotOptions = {}): Promise<DovecotServer> {
  const dovecotBin = checkInstalled();
  const certs = await makeCerts();
  const owner = mailOwner();
  const users = new Map(Object.entries(opts.users ?? defaultUsers));

  const dir = mkdtempSync(path.join(os.tmpdir(), 'msb-dovecot-'));
  const forgetDir = removeDirOnExit(dir);
  // Dovecot's auth process (user "dovecot") reads the passwd-file and the mail processes
  // (nobody) need to reach mail/: the temp dir must be traversable by them.
  await chmod(dir, 0o755);
  const mailRoot = path.join(dir, 'mail');
  await mkdir(mailRoot);
  await chown(mailRoot, owner.uid, owner.gid);
  const logFile = path.join(dir, 'dovecot.log');
  const outFile = path.join(dir, 'dovecot.out'); // dovecot's own stdout/stderr (config errors)
  const confFile = path.join(dir, 'dovecot.conf');
  const usersFile = path.join(dir, 'users');

  const ports = { imap: await freePort(), imaps: await freePort(), pop3: await freePort(), pop3s: await freePort() };
  if (opts.oauth2) await writeFile(path.join(dir, 'dovecot-oauth2.conf.ext'), renderOAuth2Config(opts.oauth2), { mode: 0o644 });
  await writeFile(confFile, renderConfig({ dir, ports, certFile: certs.certFile, keyFile: certs.keyFile, owner, scale: opts.scale ?? false, oauth2: opts.oauth2, specialUse: opts.specialUse, preciseLog: opts.preciseLog, imapCapability: opts.imapCapability }));
  const shutdownGraceMs = opts.scale ? 30_000 : 5000;

  // Dovecot's passwd-file driver re-reads the file only when its mtime or size changed, and it
  // looks at the file at most once per second (db-passwd-file.c: last_sync_time == ioloop_time).
  // So every write gets a strictly newer mtime, and setPassword() returns only once the clock
  // has entered the next second: the next login is then guaranteed to see the new file.
  let usersMtime = 0;
  let usersWritten = Promise.resolve();
  async function writeUsers(): Promise<void> {
    for (const [user, password] of users) {
      if (/[:\s]/.test(user) || /[\n\r]/.test(password)) throw new Error(`dovecot passwd-file cannot hold user ${JSON.stringify(user)}`);
    }
    const text = [...users].map(([user, password]) => `${user}:{PLAIN}${password}::::::\n`).join('');
    // Write a new file and rename it over the old one, so Dovecot never reads half a file.
    const tmp = `${usersFile}.${process.pid}.tmp`;
    await writeFile(tmp, text, { mode: 0o644 });
    usersMtime = Math.max(usersMtime + 1, Math.floor(Date.now() / 1000));
    await utimes(tmp, usersMtime, usersMtime);
    await rename(tmp, usersFile);
  }
  await writeUsers();

  let child: ChildProcess | undefined;
  let unregister: (() => void) | undefined;
  let exited: Promise<void> = Promise.resolve();

  const logText = async (): Promise<string> => {
    try { return await readFile(logFile, 'utf8'); } catch { return ''; }
  };
  const outText = (): string => {
    try { return readFileSync(outFile, 'utf8'); } catch { return ''; }
  };
  const countLog = async (re: RegExp): Promise<number> => {
    const plain = new RegExp(re.source, re.flags.replace(/[gy]/g, '')); // no lastIndex surprises
    return (await logText()).split('\n').filter((line) => plain.test(line)).length;
  };

  async function start(): Promise<void> {
    if (child) throw new Error('startDovecot: already running');
    // Never pipe dovecot's output: it keeps the descriptors open; a file is safe.
    const out = openSync(outFile, 'a');
    const proc = spawn(dovecotBin, ['-F', '-c', confFile], { detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    child = proc;
    let spawnError: Error | undefined;
    let exitInfo: string | undefined;
    exited = new Promise((resolve) => {
      proc.once('error', (err) => { spawnError = err; exitInfo = `spawn error: ${err.message}`; resolve(); });
      proc.once('exit', (code, signal) => { exitInfo = `exit code ${code}, signal ${signal}`; resolve(); });
    });
    if (proc.pid !== undefined) unregister = killGroupOnExit(proc.pid);

    const failure = (why: string): Error => {
      const out = outText().trim();
      return new Error(
        `dovecot did not start (${why}). Config: ${confFile}\n` +
        (out ? `--- dovecot stdout/stderr ---\n${tail(out)}\n` : '') +
        `--- tail of ${logFile} ---\n${tail(readFileOr(logFile))}`,
      );
    };
    // Poll every listener, but give up at once if dovecot exits (e.g. a config error).
    const deadline = Date.now() + 15000;
    try {
      for (const [name, port] of Object.entries(ports)) {
        for (;;) {
          if (exitInfo !== undefined) {
            throw failure(spawnError ? `could not spawn ${dovecotBin}: ${spawnError.message}` : `it exited early: ${exitInfo}`);
          }
          if (await canConnect(port)) break;
          if (Date.now() >= deadline) throw failure(`its ${name} port ${port} never accepted a TCP connection within 15 s`);
          await sleep(25);
        }
      }
    } catch (err) {
      await stop().catch(() => undefined);
      throw err;
    }
  }

  async function stop(): Promise<void> {
    const proc = child;
    if (!proc) return;
    const pgid = proc.pid;
    if (pgid !== undefined) {
      // SIGTERM to the whole group, repeated every 200 ms: right after start-up the master may
      // respawn a login process after the first signal and then wait ~6 s for it on shutdown.
      // Whatever is left after the grace gets SIGKILL (scale mode: 2,000 clients outlast 5 s).
      const deadline = Date.now() + shutdownGraceMs;
      while (groupAlive(pgid) && Date.now() < deadline) {
        try { process.kill(-pgid, 'SIGTERM'); } catch { /* gone */ }
        const until = Math.min(Date.now() + 200, deadline);
        while (groupAlive(pgid) && Date.now() < until) await sleep(10);
      }
      if (groupAlive(pgid)) killGroupNow(pgid);
      await exited;
      // the master is gone; its children may still hold the listeners and the sockets of base_dir, which
      // make the next start fail "Dovecot is already running?": wait for the whole group, bounded
      const gone = Date.now() + 15_000;
      while (groupAlive(pgid)) {
        if (Date.now() >= gone) throw new Error(`stop: dovecot's process group ${pgid} outlived SIGKILL by 15 s`);
        killGroupNow(pgid);
        await sleep(50);
      }
    }
    unregister?.();
    unregister = undefined;
    child = undefined;
    for (const [name, port] of Object.entries(ports)) {
      await waitForPortClosed(port, '127.0.0.1', 15_000, `stopped dovecot's ${name} listener`);
    }
  }

  async function deliver(user: string, rfc822: string): Promise<void> {
    if (!users.has(user)) throw new Error(`deliver: unknown dovecot user ${user}`);
    // Maildir layout: <root>/{tmp,new,cur}; the name only has to be unique.
    const maildir = path.join(mailRoot, user);
    for (const sub of ['', 'tmp', 'new', 'cur']) {
      const d = path.join(maildir, sub);
      if (!existsSync(d)) {
        await mkdir(d, { mode: 0o700 });
        await chown(d, owner.uid, owner.gid);
      }
    }
    // Maildir stores bare LF lines; Dovecot serves them as CRLF.
    const body = rfc822.replace(/\r\n/g, '\n');
    const name = `${Date.now()}.M${process.hrtime.bigint() % 1000000n}P${process.pid}Q${++deliveries}.msb-test`;
    const tmp = path.join(maildir, 'tmp', name);
    await writeFile(tmp, body, { mode: 0o600 });
    await chown(tmp, owner.uid, owner.gid);
    await rename(tmp, path.join(maildir, 'new', name));
  }

  const server: DovecotServer = {
    host: '127.0.0.1',
    ports,
    caPem: certs.caPem,
    dir,
    setPassword(user, password) {
      // Serialised: each write must see the previous one finished (see writeUsers).
      const write = usersWritten.then(async () => {
        users.set(user, password);
        await writeUsers();
        const nextSecond = (Math.floor(Date.now() / 1000) + 1) * 1000;
        await sleep(nextSecond - Date.now() + 20);
      });
      usersWritten = write.catch(() => undefined);
      return write;
    },
    deliver,
    logText,
    countLog,
    async waitForLog(re, count = 1, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const seen = await countLog(re);
        if (seen >= count) return;
        if (Date.now() >= deadline) {
          throw new Error(
            `dovecot log: expected ${count} line(s) matching ${re} within ${timeoutMs} ms, saw ${seen}.\n` +
            `--- tail of ${logFile} ---\n${tail(await logText())}`,
          );
        }
        await sleep(25);
      }
    },
    stop,
    start,
    async close() {
      await stop();
      if (!process.env.MSB_KEEP_TEST_DIRS) await rm(dir, { recursive: true, force: true });
      forgetDir();
    },
  };

  await start();
  return server;
}

function readFileOr(file: string): string {
  try { return readFileSync(file, 'utf8'); } catch { return '(no log written)'; }
}

function groupAlive(pgid: number): boolean {
  try { process.kill(-pgid, 0); return true; } catch { return false; }
}
