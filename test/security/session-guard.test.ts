import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { ConnectorContext } from '../../src/domain/connector.js';
import { AppError } from '../../src/errors.js';
import type { PreparedSession } from '../../src/domain/prepared-session.js';
import { OutboundPolicy } from '../../src/security/outbound-policy.js';
import { guardSession } from '../../src/security/session-guard.js';

/** A connector whose failures are scripted; a private field proves methods run on the real object. */
class ScriptedConnector {
  readonly persistent = true;
  readonly #failures: AppError[];
  constructor(failures: AppError[]) {
    this.#failures = failures;
  }
  async connect(): Promise<void> {
    const next = this.#failures.shift();
    if (next) throw next;
  }
  async summary() {
    return { name: 'INBOX', messages: 0, checkedAt: new Date().toISOString() };
  }
  /** A mail action added later: the guard must pass it through too. */
  async listMessages(): Promise<string[]> {
    throw new AppError('MAIL_PROTOCOL_ERROR', 'IMAP 10.0.0.5:2143: unexpected answer: mailbox of s3cret-user@corp.example is locked');
  }
  async close(): Promise<void> {}
}

const ctx = { logger: pino({ level: 'silent' }) } as unknown as ConnectorContext;
const policy = new OutboundPolicy({ allow: '', deny: 'none', ports: '*' });

function prepared(view: Record<string, unknown>, failures: AppError[]): PreparedSession {
  return { type: 'imap', fingerprint: 'x', view, logBindings: {}, createConnector: () => new ScriptedConnector(failures) as never };
}

test('a caller-named identity provider on a port nobody vouched for: its answers are withheld', async () => {
  const leak = () => new AppError('OAUTH_PROVIDER_ERROR', 'identity provider internal.corp:8080 answered with an error: <title>Jenkins admin</title>');
  const named = guardSession(prepared({ host: 'mail.example.com', port: 993, auth: { authorityHost: 'internal.corp:8080' } }, [leak()]), {
    outbound: policy,
    referenced: [],
    configuredAuthority: 'login.microsoftonline.com',
  }).createConnector(ctx);
  await assert.rejects(named.connect(), (e: unknown) => e instanceof AppError && e.code === 'OAUTH_PROVIDER_UNAVAILABLE' && !/Jenkins/.test(e.message));
  // the configured authority is the operator's: shown as it is
  const configured = guardSession(prepared({ host: 'mail.example.com', port: 993, auth: { authorityHost: 'login.test:8443' } }, [leak()]), {
    outbound: policy,
    referenced: [],
    configuredAuthority: 'login.test:8443',
  }).createConnector(ctx);
  await assert.rejects(configured.connect(), (e: unknown) => e instanceof AppError && e.code === 'OAUTH_PROVIDER_ERROR' && /Jenkins/.test(e.message));
});

test('values given by reference are shown as secret:<name> in every error, of every method, also after connecting', async () => {
  const connector = guardSession(prepared({ host: '10.0.0.5', port: 2143 }, [new AppError('MAIL_AUTH_FAILED', 'IMAP 10.0.0.5:2143: no such user s3cret-user@corp.example')]), {
    outbound: new OutboundPolicy({ allow: '10.0.0.0/8', deny: 'none', ports: '*' }),
    referenced: [{ name: 'ap-user', value: 's3cret-user@corp.example' }],
    configuredAuthority: 'login.microsoftonline.com',
  }).createConnector(ctx) as unknown as ScriptedConnector;
  await assert.rejects(connector.connect(), (e: unknown) => e instanceof AppError && e.message === 'IMAP 10.0.0.5:2143: no such user secret:ap-user');
  await connector.connect();
  assert.equal(connector.persistent, true);
  await assert.rejects(connector.listMessages(), (e: unknown) => e instanceof AppError && /mailbox of secret:ap-user is locked/.test(e.message));
});
