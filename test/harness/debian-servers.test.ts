// Self-test of the Cyrus and Courier harnesses (cyrus.ts, courier.ts) with the real client libraries,
// not the service: they serve IMAP and POP3 (plain and TLS), deliver, change passwords, restart, and
// behave as docs/protocol-facts.md says (Cyrus enforces POP3 LOGIN-DELAY, Courier only advertises it).
// A missing unpacked package makes these tests FAIL with the hint to run .ci/install-test-deps.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import Pop3Command from 'node-pop3';
import tls from 'node:tls';
import { startCourier, courierLogPatterns, type CourierServer } from './courier.js';
import { startCyrus, cyrusLogPatterns, type CyrusServer } from './cyrus.js';
import { canConnect } from './ports.js';

const ALICE = 'alice@example.test';
const mail = (subject: string): string => `From: harness@example.test\r\nTo: ${ALICE}\r\nSubject: ${subject}\r\n\r\nbody\r\n`;

interface Server { ports: { imap: number; imaps: number; pop3: number; pop3s: number }; caPem: string }

async function imapStatus(s: Server, user: string, pass: string, tls = true): Promise<number> {
  const client = new ImapFlow({
    host: '127.0.0.1', port: tls ? s.ports.imaps : s.ports.imap, secure: tls, doSTARTTLS: tls ? undefined : false,
    auth: { user, pass }, logger: false, tls: { ca: [s.caPem], servername: 'localhost' }, greetingTimeout: 5000, connectionTimeout: 5000,
  });
  client.on('error', () => { /* surfaced through the rejected promise */ });
  try {
    await client.connect();
    const status = await client.status('INBOX', { messages: true });
    await client.logout();
    assert.ok(status, 'STATUS INBOX returned nothing');
    return status.messages ?? -1;
  } finally {
    client.close();
  }
}

/** One POP3 login with node-pop3: STAT, QUIT. */
async function pop3(s: Server, user: string, password: string, tls = true): Promise<number> {
  const pop = new Pop3Command({
    host: '127.0.0.1', port: tls ? s.ports.pop3s : s.ports.pop3, tls, user, password, timeout: 10_000, servername: 'localhost',
    tlsOptions: { ca: [s.caPem] } as never,
  });
  pop.on('error', () => { /* surfaced through the rejected promise */ });
  try {
    const stat = await pop.STAT();
    await pop.QUIT();
    return Number(stat.split(' ')[0]);
  } catch (err) {
    await pop.QUIT().catch(() => undefined);
    throw err;
  }
}

/** The POP3 CAPA lines before login, read off a raw TLS socket (node-pop3 has no CAPA). */
function capa(s: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: s.ports.pop3s, ca: [s.caPem], servername: 'localhost' });
    let text = '';
    let sent = false;
    socket.setTimeout(5000, () => socket.destroy(new Error(`no CAPA answer: ${JSON.stringify(text)}`)));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!sent && text.includes('\r\n')) {
        sent = true;
        text = '';
        socket.write('CAPA\r\n');
      } else if (sent && /\r\n\.\r\n$/.test(text)) {
        socket.end('QUIT\r\n');
        resolve(text);
      }
    });
    socket.on('error', reject);
  });
}

describe('Cyrus IMAP (unpacked Debian package)', () => {
  let cyrus: CyrusServer;
  before(async () => {
    cyrus = await startCyrus({ users: { [ALICE]: 'alice-Secret-1', 'bob@example.test': 'bob-Secret-2', 'carol@example.test': 'carol-1' } });
  });
  after(() => cyrus?.close());

  test('IMAP and IMAPS logins see delivered mail; a wrong password is refused and logged', async () => {
    assert.match(cyrus.version, /^3\.6\./);
    await cyrus.deliver(ALICE, mail('one'));
    assert.equal(await imapStatus(cyrus, ALICE, 'alice-Secret-1'), 1);
    await cyrus.deliver(ALICE, mail('two'));
    assert.equal(await imapStatus(cyrus, ALICE, 'alice-Secret-1', false), 2);
    await cyrus.waitForLog(cyrusLogPatterns.imapLogin(ALICE), 2);
    await assert.rejects(imapStatus(cyrus, ALICE, 'wrong'), (err: { authenticationFailed?: boolean }) => err.authenticationFailed === true);
    await cyrus.waitForLog(cyrusLogPatterns.badLogin(ALICE));
  });

  test('POP3: CAPA advertises LOGIN-DELAY 60 and a second login within a minute is refused with [LOGIN-DELAY]', async () => {
    const advertised = await capa(cyrus);
    assert.match(advertised, /^LOGIN-DELAY 60\r$/m);
    assert.match(advertised, /^RESP-CODES\r$/m);
    assert.equal(await pop3(cyrus, 'bob@example.test', 'bob-Secret-2'), 0);
    assert.equal(cyrus.loginDelaySeconds, 60);
    await assert.rejects(pop3(cyrus, 'bob@example.test', 'bob-Secret-2', false), /\[LOGIN-DELAY\]/);
    await cyrus.waitForLog(cyrusLogPatterns.loginDelay);
    // a wrong password is [AUTH], not a delay
    await assert.rejects(pop3(cyrus, ALICE, 'wrong'), /\[AUTH\]/);
  });

  test('setPassword() changes a password for the next login; stop() and start() keep users and mail', async () => {
    await cyrus.setPassword('carol@example.test', 'carol-2');
    await assert.rejects(imapStatus(cyrus, 'carol@example.test', 'carol-1'));
    assert.equal(await imapStatus(cyrus, 'carol@example.test', 'carol-2'), 0);
    const before = await imapStatus(cyrus, ALICE, 'alice-Secret-1');
    await cyrus.stop();
    for (const port of Object.values(cyrus.ports)) assert.equal(await canConnect(port), false);
    await cyrus.start();
    assert.equal(await imapStatus(cyrus, ALICE, 'alice-Secret-1'), before);
  });

  test('allowPlaintext false: LOGINDISABLED on the plain IMAP port until STARTTLS', async (t) => {
    const strict = await startCyrus({ users: { [ALICE]: 'alice-Secret-1' }, allowPlaintext: false });
    t.after(() => strict.close());
    await assert.rejects(imapStatus(strict, ALICE, 'alice-Secret-1', false), (err: Error) => /LOGINDISABLED|login.*disabled/i.test(`${err.message} ${JSON.stringify(err)}`));
    assert.equal(await strict.countLog(cyrusLogPatterns.badLogin(ALICE)), 0, 'imapflow sent no credentials');
    const upgraded = new ImapFlow({
      host: '127.0.0.1', port: strict.ports.imap, secure: false, doSTARTTLS: true, auth: { user: ALICE, pass: 'alice-Secret-1' }, logger: false, tls: { ca: [strict.caPem], servername: 'localhost' },
    });
    upgraded.on('error', () => undefined);
    await upgraded.connect();
    await upgraded.logout();
  });
});

describe('Courier IMAP and POP3 (unpacked Debian packages)', () => {
  let courier: CourierServer;
  before(async () => {
    courier = await startCourier({ users: { [ALICE]: 'alice-Secret-1', 'dave@example.test': 'dave-1' } });
  });
  after(() => courier?.close());

  test('IMAP, IMAPS, POP3 and POP3S see delivered mail; CAPA says LOGIN-DELAY 10, which is not enforced', async () => {
    assert.match(courier.version, /^5\.0\./);
    await courier.deliver(ALICE, mail('one'));
    assert.equal(await imapStatus(courier, ALICE, 'alice-Secret-1'), 1);
    assert.equal(await imapStatus(courier, ALICE, 'alice-Secret-1', false), 1);
    assert.match(await capa(courier), /^LOGIN-DELAY 10\r$/m);
    assert.equal(await pop3(courier, ALICE, 'alice-Secret-1'), 1);
    assert.equal(await pop3(courier, ALICE, 'alice-Secret-1', false), 1, 'a second login at once is allowed');
    await courier.waitForLog(courierLogPatterns.imapLogin(ALICE), 2);
    await courier.waitForLog(courierLogPatterns.pop3Login(ALICE), 2);
  });

  test('a wrong password is refused and logged; setPassword(), stop() and start() work', async () => {
    await assert.rejects(pop3(courier, 'dave@example.test', 'wrong', false), /Login failed/);
    await courier.waitForLog(courierLogPatterns.badLogin('dave@example.test'));
    await courier.setPassword('dave@example.test', 'dave-2');
    assert.equal(await imapStatus(courier, 'dave@example.test', 'dave-2'), 0);
    await courier.stop();
    for (const port of Object.values(courier.ports)) assert.equal(await canConnect(port), false);
    await courier.start();
    assert.equal(await imapStatus(courier, 'dave@example.test', 'dave-2'), 0);
  });
});
