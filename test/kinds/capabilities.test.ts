import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config.js';
import { CAPABILITY_VERBS, type Capability } from '../../src/domain/mail.js';
import type { ConnectorContext } from '../../src/domain/connector.js';
import { mailServerKind } from '../../src/kinds/mail-server.js';
import type { KindServices } from '../../src/kinds/kind.js';

// prepare() and createConnector() alone: no connection is made
const config = loadConfig({ MSB_AUTH: 'none' });
const ctx = { logger: pino({ level: 'silent' }), outbound: {}, onDrop: () => {}, resume: async () => {} } as unknown as ConnectorContext;
const capabilities = Object.keys(CAPABILITY_VERBS) as Capability[];

test('IMAP and POP3 connectors have exactly the capabilities their kind declares', () => {
  for (const type of mailServerKind.types) {
    const prepared = mailServerKind.prepare({ name: 's', type, host: 'mail.example.test', username: 'u', password: 'p' }, config, {} as KindServices, { owner: 'o' });
    const connector = prepared.createConnector(ctx);
    const declared = mailServerKind.capabilities[type] ?? [];
    for (const capability of capabilities) {
      assert.equal(connector[capability] !== undefined, declared.includes(capability), `${type}: ${capability}`);
    }
  }
  assert.deepEqual(mailServerKind.capabilities, { imap: ['reader', 'flagger', 'mover', 'deleter', 'tagger', 'watcher', 'sender'], pop3: ['reader', 'deleter', 'watcher', 'sender'] });
});
