// Control characters in a field that reaches a wire (issue 10, item 9): a CR LF in a user name would end a
// POP3 or IMAP command and start another. Every such field refuses them in its schema (WireString or a
// stricter pattern): 400 VALIDATION_ERROR naming the field, before any connection is made.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defaultUsers, startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { startSilentServer } from '../harness/tcp-tools.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';

type Node = Record<string, any>;
const CONTROLS = ['\r\n', '\n', '\r', '\u0000', '\t', '\u001b', '\u007f'];
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
/** Request strings that may carry line breaks, and why (the same list as test/openapi/document.test.ts). */
const NOT_ON_A_WIRE = new Set(['/tls/ca']);

/** Schema-valid bodies of every kind, every optional string field set. */
const fixtures: Record<string, Node> = {
  CreateImapSession: {
    name: 'w-imap', type: 'imap', host: 'mail.example.com', username: 'bot@example.com', password: 'pw',
    auth: { type: 'oauth2', provider: 'generic', clientId: 'client', tenantId: 'tenant', clientSecret: 'cs', authorityHost: 'login.example.com', tokenUrl: 'https://idp.example.com/token', scope: 'mail', refreshToken: 'rt' },
    tls: { servername: 'mail.example.com', ca: PEM },
  },
  CreatePop3Session: {
    name: 'w-pop3', type: 'pop3', host: 'mail.example.com', username: 'bot@example.com', password: 'pw',
    auth: { type: 'oauth2', provider: 'generic', clientId: 'client', tenantId: 'tenant', clientSecret: 'cs', authorityHost: 'login.example.com', tokenUrl: 'https://idp.example.com/token', scope: 'mail', refreshToken: 'rt' },
    tls: { servername: 'mail.example.com', ca: PEM },
  },
  CreateEwsSession: {
    name: 'w-ews', type: 'ews', username: 'bot@example.com', password: 'pw', domain: 'mail.example.com', url: 'https://mail.example.com/EWS/Exchange.asmx',
    auth: { type: 'oauth2', flow: 'clientCredentials', clientId: 'client', tenantId: 'tenant', clientSecret: 'cs', impersonate: 'box@example.com', authorityHost: 'login.example.com' },
    tls: { ca: PEM },
  },
  CreateOutlookSession: {
    name: 'w-outlook', type: 'outlook', mailbox: 'box@example.com', username: 'bot@example.com', password: 'pw',
    auth: { clientId: 'client', tenantId: 'tenant', clientSecret: 'cs', authorityHost: 'login.example.com' }, graphHost: 'graph.example.com',
    tls: { ca: PEM },
  },
};

/** The free-form string fields of a component (JSON pointer into the body), from the service's own document. */
function stringFields(doc: Node, schema: Node, path = ''): string[] {
  const node = typeof schema.$ref === 'string' ? doc.components.schemas[schema.$ref.split('/').pop()!] : schema;
  const out: string[] = [];
  if (node.type === 'string' && !node.enum && node.const === undefined) out.push(path);
  for (const [key, value] of Object.entries((node.properties ?? {}) as Node)) out.push(...stringFields(doc, value, `${path}/${key}`));
  for (const branch of (node.anyOf ?? []) as Node[]) out.push(...stringFields(doc, branch, path));
  return [...new Set(out)];
}

/** `body` with `value` at `pointer`; a pointer ending in /secret turns a credential into a reference. */
function withValue(body: Node, pointer: string, make: (old: string) => string): Node {
  const out = structuredClone(body);
  const keys = pointer.split('/').slice(1);
  let target = out;
  for (const key of keys.slice(0, -1)) {
    if (typeof target[key] !== 'object' || target[key] === null) target[key] = {};
    target = target[key];
  }
  const last = keys.at(-1)!;
  target[last] = make(typeof target[last] === 'string' ? target[last] : 'secret-name');
  return out;
}

test('every string field of every create body refuses control characters, naming the field', async (t) => {
  // nothing may be reached: the one allowed destination does not exist
  const { app } = await build(t, { MSB_OUTBOUND_ALLOW: 'allowed.invalid' });
  await app.ready();
  const doc = app.swagger() as Node;
  let checked = 0;
  for (const [component, body] of Object.entries(fixtures)) {
    const baseline = await app.inject({ method: 'POST', url: '/v1/sessions', payload: body });
    assert.notEqual(baseline.statusCode, 400, `${component} fixture must be schema-valid: ${baseline.body}`);
    const fields = stringFields(doc, doc.components.schemas[component]).filter((p) => !NOT_ON_A_WIRE.has(p));
    assert.ok(fields.length >= 6, `${component}: ${fields.join(', ')}`);
    for (const field of fields) {
      for (const control of CONTROLS) {
        const payload = withValue(body, field, (old) => `${old.slice(0, 1)}${control}${old.slice(1)}`);
        const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload });
        const problem = assertProblem(res, 'VALIDATION_ERROR');
        const paths = (problem.errors as { path: string }[]).map((e) => e.path);
        assert.ok(paths.includes(`/body${field}`), `${component}${field} with ${JSON.stringify(control)}: ${paths.join(', ')}`);
        checked += 1;
      }
    }
  }
  assert.ok(checked > 150, `${checked} cases`);
});

test('the OAuth2 redirect refuses control characters in state, code and error (they go on to the identity provider)', async (t) => {
  const { app } = await build(t);
  for (const param of ['state', 'code', 'error']) {
    const query = param === 'state' ? 'state=a%0D%0Ab' : `state=s&${param}=a%0D%0Ab`;
    const res = await app.inject({ method: 'GET', url: `/v1/oauth2/callback?${query}`, headers: { accept: 'application/json' } });
    const problem = assertProblem(res, 'VALIDATION_ERROR');
    assert.deepEqual((problem.errors as { path: string }[]).map((e) => e.path), [`/querystring/${param}`]);
    assert.match(String(problem.detail), /control characters/);
  }
  // Entra ID's error_description has CR LF between its lines: it goes nowhere but the result page
  const denied = await app.inject({ method: 'GET', url: '/v1/oauth2/callback?state=s&error=access_denied&error_description=AADSTS65004%3A%20declined.%0D%0ATrace%20ID%3A%201', headers: { accept: 'application/json' } });
  assertProblem(denied, 'OAUTH_STATE_INVALID');
});

describe('CR LF in a user name reaches no mail server (Dovecot)', () => {
  const USER = 'alice@example.test';
  const PASSWORD = defaultUsers[USER]!;
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot();
  });
  after(async () => {
    await dovecot?.close();
  });

  test('POP3 and IMAP: 400, no connection, no login, the mail is still there', async (t) => {
    const { app } = await build(t);
    for (const subject of ['one', 'two']) await dovecot.deliver(USER, `From: a@example.test\r\nTo: ${USER}\r\nSubject: ${subject}\r\n\r\nHello\r\n`);
    // a login attempt logs a line naming its user; the harness's own port probes log user=<>
    const loginLines = () => dovecot.countLog(/(?:pop3|imap)-login: Info: .*user=<[^>]/);
    const linesBefore = await loginLines();
    const silent = await startSilentServer();
    t.after(() => silent.close());
    // what a POP3 server would read as four commands: log in, delete message 1, quit
    const injected = [`bot\r\nSTAT\r\nDELE 1`, `${USER}\r\nPASS ${PASSWORD}\r\nDELE 1\r\nQUIT`];
    for (const type of ['pop3', 'imap'] as const) {
      const port = type === 'pop3' ? dovecot.ports.pop3 : dovecot.ports.imap;
      for (const username of injected) {
        for (const target of [{ port, label: 'Dovecot' }, { port: silent.port, label: 'a listener' }]) {
          const res = await app.inject({
            method: 'POST',
            url: '/v1/sessions',
            payload: { name: `inj-${type}`, type, host: '127.0.0.1', port: target.port, secure: false, username, password: PASSWORD, tls: { starttls: 'off' }, timeouts: { connectMs: 1000 } },
          });
          const problem = assertProblem(res, 'VALIDATION_ERROR');
          assert.deepEqual([...new Set((problem.errors as { path: string }[]).map((e) => e.path))], ['/body/username'], `${type} to ${target.label}`);
        }
      }
    }
    assert.equal(silent.accepted(), 0, 'no connection was made');
    assert.equal(await loginLines(), linesBefore, 'Dovecot saw no connection');
    // both messages are still in the maildrop
    const check = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'check', type: 'pop3', host: '127.0.0.1', port: dovecot.ports.pop3, secure: false, username: USER, password: PASSWORD, tls: { starttls: 'off' } } });
    assert.equal(check.statusCode, 201, check.body);
    assert.equal(check.json().mailbox.messages, 2);
    assert.ok((await loginLines()) > linesBefore, 'a login is seen in the log');
  });
});
