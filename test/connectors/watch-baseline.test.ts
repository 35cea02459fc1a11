// A watching POP3 session's baseline ("what is there is not new") is taken on the connect's own login, so that
// its create is one login, not two, and mail that arrives after the connect is new. Real Dovecot, the real connector.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config.js';
import type { ConnectorContext } from '../../src/domain/connector.js';
import type { MessageSummary, WatchListener } from '../../src/domain/mail.js';
import type { KindServices } from '../../src/kinds/kind.js';
import { mailServerKind } from '../../src/kinds/mail-server.js';
import { logPatterns, startDovecot, type DovecotServer } from '../harness/dovecot.js';

const USER = 'alice@example.test';
const config = loadConfig({ MSB_AUTH: 'none' });
const ctx = {
  logger: pino({ level: 'silent' }),
  outbound: { check: async (host: string) => host },
  onDrop: () => {},
  resume: async () => {},
} as unknown as ConnectorContext;

function listener() {
  const fresh: MessageSummary[] = [];
  const l: WatchListener = { newMessage: (s) => fresh.push(s), deleted: () => {}, reset: () => {} };
  return { fresh, listener: l };
}

const mail = (subject: string) => `From: carol@example.test\r\nTo: ${USER}\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@example.test>\r\n\r\nbody\r\n`;

describe('the POP3 watch baseline is the connect\'s (Dovecot)', () => {
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot();
  });
  after(async () => {
    await dovecot?.close();
  });

  const pop3Connector = (port: number) =>
    mailServerKind
      .prepare({ name: 'w', type: 'pop3', host: '127.0.0.1', port, secure: false, tls: { starttls: 'off' }, username: USER, password: 'alice-Secret-1' }, config, {} as KindServices, { owner: 'o' })
      .createConnector(ctx);

  test('POP3: the connect\'s own login takes the baseline (UIDL); start() logs in no more, and the next poll reports what came since', async () => {
    await dovecot.deliver(USER, mail('pop3-before'));
    const c = pop3Connector(dovecot.ports.pop3);
    c.watcher!.expect!(['INBOX']);
    const logins = () => dovecot.countLog(logPatterns.pop3Login(USER));
    const before = await logins();
    await c.connect();
    await dovecot.deliver(USER, mail('pop3-after-connect'));
    const { fresh, listener: l } = listener();
    await c.watcher!.start(['INBOX'], l);
    await c.watcher!.poll!();
    await c.close();
    await sleep(300); // Dovecot writes the login lines as they happen
    assert.equal((await logins()) - before, 2, 'one login for the connect (with the baseline), one for the poll');
    assert.deepEqual(fresh.map((s) => s.subject), ['pop3-after-connect']);
  });
});
