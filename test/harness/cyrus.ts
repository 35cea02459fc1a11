// A private Cyrus IMAP 3.6 (IMAP + POP3, plain and TLS) for interop tests, run from the unpacked
// Debian packages (see debian-servers.ts; .ci/install-test-deps unpacks them).
//
// `master -C imapd.conf -M cyrus.conf` with every path in a temp dir, on free loopback ports, as the
// user nobody (`cyrus_user`). Settings follow Debian's stock imapd.conf where it matters for clients
// (the facts are in docs/protocol-facts.md, "Other real servers"):
//   - popminpoll: 1 (Debian's default): a second POP3 login within a minute is answered
//     `-ERR [LOGIN-DELAY] Logins must be at least 1 minute apart`, and CAPA says `LOGIN-DELAY 60`;
//   - virtdomains: userid, users in sasldb (saslpasswd2 of sasl2-bin) as user@domain;
//   - INBOX created at the first login or delivery (autocreate_quota: 0, autocreate_post);
//   - `allowPlaintext: false` makes the plain IMAP port advertise LOGINDISABLED until STARTTLS.
// Changed for tests: failedloginpause 0 (else every wrong password costs 3 s). Cyrus logs only to
// syslog: /dev/log in its namespace is a socket of this process (logText()).
import { mkdtempSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeCerts } from './certs.js';
import { countLines, namespacedServer, runNamespaced, shq, startSyslogSink, tail, unpackedRoot, unpackedVersions, waitForLines, type Mounts } from './debian-servers.js';
import { defaultUsers, removeDirOnExit } from './dovecot.js';
import { smtpDeliver } from './greenmail.js';
import { freePort } from './ports.js';

export interface CyrusServer {
  host: '127.0.0.1';
  ports: { imap: number; imaps: number; pop3: number; pop3s: number; lmtp: number };
  /** The CA that signed the server certificate. */
  caPem: string;
  /** user -> password as set so far. */
  users: Readonly<Record<string, string>>;
  version: string;
  /** What CAPA advertises as LOGIN-DELAY (seconds), from popminpoll. */
  loginDelaySeconds: number;
  dir: string;
  setPassword(user: string, password: string): Promise<void>;
  /** Delivers a message to the user's INBOX through LMTP (no IMAP or POP3 login involved). */
  deliver(user: string, rfc822: string): Promise<void>;
  /** Cyrus's syslog lines so far. */
  logText(): Promise<string>;
  countLog(re: RegExp): Promise<number>;
  waitForLog(re: RegExp, count?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
  /** Starts again on the same ports, with the same users and mail. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface CyrusOptions {
  users?: Record<string, string>;
  /** popminpoll in minutes (Debian: 1); 0 turns LOGIN-DELAY off. */
  popMinPollMinutes?: number;
  /** allowplaintext (Debian: yes). false: no LOGIN / USER+PASS without TLS, LOGINDISABLED on the plain IMAP port. */
  allowPlaintext?: boolean;
  /** unixhierarchysep (Debian: no, delimiter "."; Cyrus 3's own default: yes, delimiter "/"). */
  unixHierarchySep?: boolean;
  /**
   * Folders created under INBOX with the user's INBOX (autocreate_inbox_folders), each with an RFC 6154 special
   * use (xlist-<use>), e.g. { 'Bot Outbox': 'sent' }.
   */
  specialUse?: Record<string, string>;
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Syslog lines of Cyrus 3.6.1 with this config (checked by running it):
 *   msbcyrus/imap[12437]: login: localhost [127.0.0.1] alice@example.test plaintext+TLS User logged in SESSIONID=<...>
 *   msbcyrus/pop3[12457]: login: localhost [127.0.0.1] alice@example.test plaintext User logged in SESSIONID=<...>
 *   msbcyrus/imap[12201]: badlogin: localhost [127.0.0.1] plaintext (alice@example.test) [SASL(-13): authentication failure: ...]
 *   msbcyrus/pop3[12457]: example.test!user.alice: Logins must be at least 1 minute apart
 */
export const cyrusLogPatterns = {
  imapLogin: (user: string): RegExp => new RegExp(`/imaps?\\[\\d+\\]: login: \\S+ \\[[^\\]]+\\] ${escapeRe(user)} `),
  pop3Login: (user: string): RegExp => new RegExp(`/pop3s?\\[\\d+\\]: login: \\S+ \\[[^\\]]+\\] ${escapeRe(user)} `),
  badLogin: (user: string): RegExp => new RegExp(`: badlogin: \\S+ \\[[^\\]]+\\] \\S+ \\(${escapeRe(user)}\\)`),
  loginDelay: /Logins must be at least \d+ minutes? apart/,
};

const REQUIRED = ['usr/lib/cyrus/bin/master', 'usr/lib/cyrus/bin/imapd', 'usr/lib/cyrus/bin/pop3d', 'usr/lib/cyrus/bin/lmtpd', 'usr/sbin/saslpasswd2'];

export async function startCyrus(opts: CyrusOptions = {}): Promise<CyrusServer> {
  const root = unpackedRoot('startCyrus', REQUIRED);
  const version = unpackedVersions()['cyrus-imapd'] ?? 'unknown';
  const users = new Map(Object.entries(opts.users ?? defaultUsers));
  const popMinPoll = opts.popMinPollMinutes ?? 1;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'msb-cyrus-'));
  const forgetDir = removeDirOnExit(dir);
  await chmod(dir, 0o755); // nobody must reach the files below
  const ports = { imap: await freePort(), imaps: await freePort(), pop3: await freePort(), pop3s: await freePort(), lmtp: await freePort() };
  const f = (...parts: string[]): string => path.join(dir, ...parts);

  const dataDirs = ['conf', 'conf/db', 'conf/log', 'conf/msg', 'conf/user', 'conf/quota', 'conf/sieve', 'conf/proc', 'conf/socket', 'conf/lock', 'spool', 'sieve'];
  for (const d of dataDirs) await mkdir(f(d), { recursive: true });
  const certs = await makeCerts();
  await copyFile(certs.certFile, f('server.pem'));
  await copyFile(certs.keyFile, f('server.key'));
  await chmod(f('server.key'), 0o600);
  for (const d of [...dataDirs, 'server.pem', 'server.key']) await chown(f(d), 65534, 65534);
  // /dev/log in the namespace: a symlink, in the overlay's lower layer, to this process's socket
  await mkdir(f('dev'));
  await symlink(f('syslog.sock'), f('dev', 'log'));
  const syslog = await startSyslogSink(f('syslog.sock'));
  const mounts: Mounts = { root, dev: f('dev') };

  await writeFile(f('imapd.conf'), [
    '# Generated by test/harness/cyrus.ts for one test run.',
    `configdirectory: ${f('conf')}`,
    `proc_path: ${f('conf/proc')}`,
    `mboxname_lockpath: ${f('conf/lock')}`,
    'defaultpartition: default',
    `partition-default: ${f('spool')}`,
    `sievedir: ${f('sieve')}`,
    'altnamespace: no',
    `unixhierarchysep: ${opts.unixHierarchySep ? 'yes' : 'no'}`,
    ...(opts.specialUse
      ? [`autocreate_inbox_folders: ${Object.keys(opts.specialUse).join(' | ')}`, ...Object.entries(opts.specialUse).map(([name, use]) => `xlist-${use}: ${name}`)]
      : []),
    'virtdomains: userid',
    `popminpoll: ${popMinPoll}`,
    'autocreate_quota: 0',
    'autocreate_post: yes',
    `allowplaintext: ${opts.allowPlaintext === false ? 'no' : 'yes'}`,
    'failedloginpause: 0',
    'sasl_pwcheck_method: auxprop',
    'sasl_auxprop_plugin: sasldb',
    `sasl_sasldb_path: ${f('sasldb2')}`,
    'sasl_mech_list: PLAIN LOGIN',
    `tls_server_cert: ${f('server.pem')}`,
    `tls_server_key: ${f('server.key')}`,
    `lmtpsocket: ${f('conf/socket/lmtp')}`,
    `idlesocket: ${f('conf/socket/idle')}`,
    `notifysocket: ${f('conf/socket/notify')}`,
    'cyrus_user: nobody',
    'syslog_prefix: msbcyrus',
    '',
  ].join('\n'));
  // cmd names are looked up in /usr/lib/cyrus/bin (the overlay); -C because START commands do not inherit it
  const conf = `-C ${f('imapd.conf')}`;
  await writeFile(f('cyrus.conf'), [
    'START {',
    `  recover cmd="ctl_cyrusdb ${conf} -r"`,
    '}',
    'SERVICES {',
    `  imap cmd="imapd ${conf}" listen="127.0.0.1:${ports.imap}" prefork=0 maxchild=200`,
    `  imaps cmd="imapd -s ${conf}" listen="127.0.0.1:${ports.imaps}" prefork=0 maxchild=200`,
    `  pop3 cmd="pop3d ${conf}" listen="127.0.0.1:${ports.pop3}" prefork=0 maxchild=100`,
    `  pop3s cmd="pop3d -s ${conf}" listen="127.0.0.1:${ports.pop3s}" prefork=0 maxchild=100`,
    // -a: LMTP over TCP is pre-authorized (the harness delivers through it)
    `  lmtp cmd="lmtpd -a ${conf}" listen="127.0.0.1:${ports.lmtp}" prefork=0 maxchild=10`,
    '}',
    'EVENTS {',
    '}',
    // idled tells IDLEing imapd processes of new mail at once; without it they look every imapidlepoll (60 s)
    'DAEMON {',
    `  idled cmd="idled ${conf}"`,
    '}',
    '',
  ].join('\n'));

  async function writeUsers(entries: [string, string][]): Promise<void> {
    const lines: string[] = [];
    for (const [user, password] of entries) {
      const at = user.lastIndexOf('@');
      if (at <= 0 || /[\s'\n]/.test(user) || /[\r\n]/.test(password)) throw new Error(`startCyrus: cannot add user ${JSON.stringify(user)}`);
      // -p reads the password from stdin: one user a call
      lines.push(`printf '%s' ${shq(password)} | saslpasswd2 -p -c -f ${shq(f('sasldb2'))} -u ${shq(user.slice(at + 1))} ${shq(user.slice(0, at))}`);
    }
    lines.push(`chown 65534:65534 ${shq(f('sasldb2'))}`, `chmod 600 ${shq(f('sasldb2'))}`);
    await runNamespaced(mounts, lines.join('\n'));
  }
  await writeUsers([...users]);

  const server = namespacedServer({
    what: `Cyrus ${version}`,
    mounts,
    script: `/usr/lib/cyrus/bin/master -C ${shq(f('imapd.conf'))} -M ${shq(f('cyrus.conf'))} -p ${shq(f('master.pid'))} &`,
    ports: { imap: ports.imap, imaps: ports.imaps, pop3: ports.pop3, pop3s: ports.pop3s, lmtp: ports.lmtp },
    outFile: f('master.out'),
    diagnostics: () => `--- syslog ---\n${tail(syslog.text())}`,
  });
  const logText = async (): Promise<string> => syslog.text();
  await server.start();

  return {
    host: '127.0.0.1',
    ports,
    caPem: certs.caPem,
    get users() { return Object.fromEntries(users); },
    version,
    loginDelaySeconds: popMinPoll * 60,
    dir,
    async setPassword(user, password) {
      users.set(user, password);
      await writeUsers([[user, password]]);
    },
    deliver: (user, rfc822) => smtpDeliver('127.0.0.1', ports.lmtp, user, rfc822, 10_000, true),
    logText,
    countLog: async (re) => countLines(syslog.text(), re),
    waitForLog: (re, count = 1, timeoutMs = 5000) => waitForLines(`Cyrus log (${f('master.out')})`, logText, re, count, timeoutMs),
    stop: () => server.stop(),
    start: () => server.start(),
    async close() {
      await server.stop();
      await syslog.close();
      if (!process.env.MSB_KEEP_TEST_DIRS) await rm(dir, { recursive: true, force: true });
      forgetDir();
    },
  };
}
