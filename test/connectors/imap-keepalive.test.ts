// What a held IMAP session's keepalive (its summary) sends: one STATUS of INBOX, which also checks a watched INBOX
// (its UIDVALIDITY), so that watching, the default, adds no command to it. Real Dovecot, the real connector.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config.js';
import type { ConnectorContext } from '../../src/domain/connector.js';
import type { WatchListener } from '../../src/domain/mail.js';
import type { KindServices } from '../../src/kinds/kind.js';
import { mailServerKind } from '../../src/kinds/mail-server.js';
import { startDovecot, type DovecotServer } from '../harness/dovecot.js';

const USER = 'alice@example.test';
const config = loadConfig({ MSB_AUTH: 'none' });

describe('an IMAP keepalive (Dovecot)', () => {
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot();
  });
  after(async () => {
    await dovecot?.close();
  });

  test('a session watching INBOX sends one STATUS (with UIDVALIDITY) per keepalive, and its watch stays open', async () => {
    const lines: { src?: string; msg?: string }[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => { lines.push(JSON.parse(String(chunk)) as { src?: string; msg?: string }); done(); } });
    const ctx = { logger: pino({ level: 'debug' }, sink), outbound: { check: async (host: string) => host }, onDrop: () => {}, resume: async () => {} } as unknown as ConnectorContext;
    const c = mailServerKind
      .prepare({ name: 'k', type: 'imap', host: '127.0.0.1', port: dovecot.ports.imap, secure: false, tls: { starttls: 'off' }, username: USER, password: 'alice-Secret-1' }, config, {} as KindServices, { owner: 'o' })
      .createConnector(ctx);
    const listener: WatchListener = { newMessage: () => {}, deleted: () => {}, reset: () => {} };
    try {
      await c.connect();
      await c.watcher!.start(['INBOX'], listener);
      const from = lines.length;
      const summary = await c.summary();
      // imapflow logs each command it sends at debug level, with src "c"
      const sent = lines.slice(from).filter((l) => l.src === 'c').map((l) => l.msg ?? '');
      const statuses = sent.filter((m) => / STATUS /i.test(m));
      assert.equal(statuses.length, 1, `one STATUS, not one more for the watched INBOX: ${JSON.stringify(sent)}`);
      assert.match(statuses[0]!, /STATUS INBOX \(MESSAGES UNSEEN UIDVALIDITY\)/i);
      assert.equal(typeof summary.messages, 'number');
      assert.ok(!lines.slice(from).some((l) => /watching it afresh/.test(l.msg ?? '')), 'the watch of INBOX was found to be the same INBOX');
    } finally {
      c.watcher!.stop();
      await c.close();
    }
  });
});
