// A private Courier IMAP 5.0 / Courier POP 1.0 (plain and implicit TLS) for interop tests, run from
// the unpacked Debian packages (see debian-servers.ts; .ci/install-test-deps unpacks them).
//
// Courier's programs have fixed paths: the auth library reads /etc/courier/authdaemonrc and talks to
// authdaemond through /run/courier/authdaemon/socket, and loads its modules from
// /usr/lib/courier-authlib. In the server's mount namespace /etc/courier is a symlink to this
// server's folder and /run is bound to another; couriertcpd, authdaemond, imaplogin/imapd and
// courierpop3login/courierpop3d then run as installed. Users live in a userdb (authuserdb, crypt
// passwords, mail owned by nobody), mail in Maildirs (deliver() writes them directly).
// Facts (docs/protocol-facts.md, "Other real servers"): CAPA advertises `LOGIN-DELAY 10` (fixed in the
// binary) but the server does not enforce it; a wrong password is refused after about 5 s.
// Log lines (couriertcpd's stderr, checked by running it):
//   INFO: LOGIN, user=alice@example.test, ip=[::ffff:127.0.0.1], port=[53646], protocol=IMAP
//   INFO: LOGIN, user=alice@example.test, ip=[::ffff:127.0.0.1], port=[49172]              (POP3)
//   INFO: LOGIN FAILED, user=alice@example.test, ip=[::ffff:127.0.0.1], port=[49192]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeCerts } from './certs.js';
import { countLines, namespacedServer, runNamespaced, shq, unpackedRoot, unpackedVersions, waitForLines, type Mounts } from './debian-servers.js';
import { defaultUsers, removeDirOnExit } from './dovecot.js';
import { freePort } from './ports.js';

export interface CourierServer {
  host: '127.0.0.1';
  ports: { imap: number; imaps: number; pop3: number; pop3s: number };
  caPem: string;
  users: Readonly<Record<string, string>>;
  /** courier-imap's package version. */
  version: string;
  /** What CAPA advertises as LOGIN-DELAY (seconds). */
  loginDelaySeconds: number;
  dir: string;
  /** Changes a password; the next login sees it. */
  setPassword(user: string, password: string): Promise<void>;
  /** Drops a message into the user's Maildir. */
  deliver(user: string, rfc822: string): Promise<void>;
  logText(): Promise<string>;
  countLog(re: RegExp): Promise<number>;
  waitForLog(re: RegExp, count?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export const courierLogPatterns = {
  imapLogin: (user: string): RegExp => new RegExp(`INFO: LOGIN, user=${escapeRe(user)}, .*protocol=IMAP`),
  /** POP3 login lines name no protocol. */
  pop3Login: (user: string): RegExp => new RegExp(`INFO: LOGIN, user=${escapeRe(user)}, ip=\\[[^\\]]*\\], port=\\[\\d+\\]$`),
  badLogin: (user: string): RegExp => new RegExp(`INFO: LOGIN FAILED, user=${escapeRe(user)},`),
};

const REQUIRED = [
  'usr/sbin/couriertcpd', 'usr/bin/imapd', 'usr/bin/couriertls', 'usr/lib/courier/courier/imaplogin', 'usr/lib/courier/courier/courierpop3login',
  'usr/lib/courier/courier/courierpop3d', 'usr/lib/courier/courier-authlib/authdaemond', 'usr/sbin/makeuserdb', 'usr/lib/courier-authlib/libauthuserdb.so',
];
const NOBODY = 65534;

export async function startCourier(opts: { users?: Record<string, string> } = {}): Promise<CourierServer> {
  const root = unpackedRoot('startCourier', REQUIRED);
  const version = unpackedVersions()['courier-imap'] ?? 'unknown';
  const users = new Map(Object.entries(opts.users ?? defaultUsers));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'msb-courier-'));
  const forgetDir = removeDirOnExit(dir);
  await chmod(dir, 0o755);
  const f = (...parts: string[]): string => path.join(dir, ...parts);
  const ports = { imap: await freePort(), imaps: await freePort(), pop3: await freePort(), pop3s: await freePort() };

  await mkdir(f('courier'));
  await mkdir(f('etc'));
  await symlink(f('courier'), f('etc', 'courier'));
  await mkdir(f('run', 'courier', 'authdaemon'), { recursive: true });
  await mkdir(f('mail'));
  await chown(f('mail'), NOBODY, NOBODY);
  const mounts: Mounts = { root, etc: f('etc'), run: f('run') };

  const certs = await makeCerts();
  // couriertls wants the key and the certificate in one file
  await writeFile(f('courier', 'server.pem'), `${await readFile(certs.keyFile, 'utf8')}\n${await readFile(certs.certFile, 'utf8')}`, { mode: 0o600 });
  await writeFile(f('courier', 'authdaemonrc'), ['authmodulelist="authuserdb"', 'daemons=3', 'authdaemonvar=/run/courier/authdaemon', 'DEBUG_LOGIN=0', 'DEFAULTOPTIONS=""', 'LOGGEROPTS=""', ''].join('\n'));
  // the environment imaplogin/imapd and courierpop3login/courierpop3d read (sourced with set -a)
  await writeFile(f('courier', 'servers.env'), [
    'IMAP_CAPABILITY="IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE"',
    'IMAP_CAPABILITY_TLS="$IMAP_CAPABILITY AUTH=PLAIN"',
    'IMAP_KEYWORDS=1', 'IMAP_ACL=1', 'IMAP_IDLE_TIMEOUT=60', 'IMAP_MAILBOX_SANITY_CHECK=1', 'IMAP_UMASK=022', 'IMAP_USELOCKS=1',
    'IMAP_TRASHFOLDERNAME=Trash', 'IMAP_EMPTYTRASH=Trash:7',
    // no STARTTLS on the plain ports: the TLS tests use the implicit-TLS ports
    'IMAP_STARTTLS=NO', 'IMAP_TLS_REQUIRED=0', 'POP3_STARTTLS=NO', 'POP3_TLS_REQUIRED=0', 'POP3AUTH=""', 'POP3AUTH_TLS=""',
    'COURIERTLS=/usr/bin/couriertls', 'TLS_CERTFILE=/etc/courier/server.pem', 'TLS_VERIFYPEER=NONE', 'TLS_CACHEFILE=',
    'MAILDIRPATH=Maildir',
    '',
  ].join('\n'));

  async function writeUsers(): Promise<void> {
    const lines: string[] = [];
    for (const [user, password] of users) {
      if (/[\s|=]/.test(user) || /[\r\n]/.test(password)) throw new Error(`startCourier: cannot add user ${JSON.stringify(user)}`);
      const home = f('mail', user);
      for (const sub of ['', 'Maildir', 'Maildir/cur', 'Maildir/new', 'Maildir/tmp']) {
        if (!existsSync(path.join(home, sub))) {
          await mkdir(path.join(home, sub), { mode: 0o700 });
          await chown(path.join(home, sub), NOBODY, NOBODY);
        }
      }
      // MD5-crypt: what crypt(3) in authuserdb checks
      const hash = execFileSync('openssl', ['passwd', '-1', '-stdin'], { input: password, encoding: 'utf8' }).trim();
      lines.push(`${user}\tuid=${NOBODY}|gid=${NOBODY}|home=${home}|mail=${home}/Maildir|systempw=${hash}\n`);
    }
    const tmp = f('courier', 'userdb.tmp');
    await writeFile(tmp, lines.join(''), { mode: 0o600 });
    await rename(tmp, f('courier', 'userdb'));
    await runNamespaced(mounts, `/usr/sbin/makeuserdb -f ${shq(f('courier', 'userdb'))}`);
  }
  await writeUsers();

  const tcpd = (port: number, ...program: string[]): string =>
    `/usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=200 -maxperip=200 -nodnslookup -noidentlookup ${port} ${program.join(' ')} &`;
  const imap = ['/usr/lib/courier/courier/imaplogin', '/usr/bin/imapd', 'Maildir'];
  const pop3 = ['/usr/lib/courier/courier/courierpop3login', '/usr/lib/courier/courier/courierpop3d', 'Maildir'];
  const tls = ['/usr/bin/couriertls', '-server', '-tcpd'];
  const logFile = f('courier.log');
  const server = namespacedServer({
    what: `Courier ${version}`,
    mounts,
    script: [
      '/usr/lib/courier/courier-authlib/authdaemond &',
      'set -a',
      '. /etc/courier/servers.env',
      tcpd(ports.imap, ...imap),
      tcpd(ports.imaps, ...tls, ...imap),
      tcpd(ports.pop3, ...pop3),
      tcpd(ports.pop3s, ...tls, ...pop3),
    ].join('\n'),
    ports,
    outFile: logFile,
    diagnostics: () => '',
  });
  const logText = async (): Promise<string> => {
    try { return await readFile(logFile, 'utf8'); } catch { return ''; }
  };
  await server.start();

  let deliveries = 0;
  return {
    host: '127.0.0.1',
    ports,
    caPem: certs.caPem,
    get users() { return Object.fromEntries(users); },
    version,
    loginDelaySeconds: 10,
    dir,
    async setPassword(user, password) {
      users.set(user, password);
      await writeUsers();
    },
    async deliver(user, rfc822) {
      if (!users.has(user)) throw new Error(`deliver: unknown courier user ${user}`);
      const maildir = f('mail', user, 'Maildir');
      const name = `${Date.now()}.M${process.hrtime.bigint() % 1000000n}P${process.pid}Q${++deliveries}.msb-test`;
      const tmp = path.join(maildir, 'tmp', name);
      // Maildir: bare LF lines; tmp/ then rename into new/
      await writeFile(tmp, rfc822.replace(/\r\n/g, '\n'), { mode: 0o600 });
      await chown(tmp, NOBODY, NOBODY);
      await rename(tmp, path.join(maildir, 'new', name));
    },
    logText,
    countLog: async (re) => countLines(await logText(), re),
    waitForLog: (re, count = 1, timeoutMs = 5000) => waitForLines(`Courier log (${logFile})`, logText, re, count, timeoutMs),
    stop: () => server.stop(),
    start: () => server.start(),
    async close() {
      await server.stop();
      if (!process.env.MSB_KEEP_TEST_DIRS) await rm(dir, { recursive: true, force: true });
      forgetDir();
    },
  };
}
