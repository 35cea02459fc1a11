import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { startFakeImap, startFakePop3, type FakeServer } from '../harness/fake-mail-servers.js';

/**
 * IMAP servers that answer in ways no test server does on demand, against the real imapflow:
 * - one that echoes the password in its refusal: neither the answer nor any log line (the mail
 *   library's included, at the default level and at trace) may carry it;
 * - one that advertises LOGINDISABLED: imapflow refuses to send the password, and the answer says TLS is
 *   required, not "wrong password";
 * - RFC 5530 codes that are not about the credentials ([UNAVAILABLE], [INUSE], [PRIVACYREQUIRED]).
 */
const USER = 'bot@example.test';
const PASSWORD = 'Echo-Canary-Pw-4b1e9d';
const forms = [
  PASSWORD,
  Buffer.from(`\u0000${USER}\u0000${PASSWORD}`).toString('base64'),
  Buffer.from(`${USER}\u0000${USER}\u0000${PASSWORD}`).toString('base64'),
];

const servers: FakeServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});
async function track<T extends FakeServer>(server: Promise<T>): Promise<T> {
  servers.push(await server);
  return servers.at(-1) as T;
}

const imap = (name: string, port: number, extra: Record<string, unknown> = {}) => ({
  name, type: 'imap', host: '127.0.0.1', port, secure: false, tls: { starttls: 'off' }, username: USER, password: PASSWORD, ...extra,
});

describe('IMAP servers that echo, refuse cleartext, or say "later"', () => {
  for (const level of ['warn', 'trace']) {
    test(`a server that echoes the password: not in the answer, not in any log line (MSB_MAIL_LOG_LEVEL=${level})`, async (t) => {
      const echo = await track(startFakeImap({ login: (user, password) => `NO [AUTHENTICATIONFAILED] Invalid credentials for ${user}: ${password}` }));
      const popEcho = await track(startFakePop3({ pass: (_user, password) => `-ERR [AUTH] bad password ${password}` }));
      const plainEcho = await track(startFakeImap({
        capabilities: ['AUTH=PLAIN'],
        script: (step, normal) => (step === 'authenticate' ? normal.replace('NO not supported', `NO [AUTHENTICATIONFAILED] you sent ${forms[1]}`) : normal),
      }));
      const { app, logs } = await build(t, { LOG_LEVEL: 'info', MSB_MAIL_LOG_LEVEL: level });
      const answers = [
        await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('echo', echo.port) }),
        await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...imap('pop-echo', popEcho.port), type: 'pop3' } }),
        await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('plain-echo', plainEcho.port) }),
      ];
      for (const res of answers) assertProblem(res, 'MAIL_AUTH_FAILED');
      assert.match(answers[0]!.json().detail, /Invalid credentials for bot@example\.test: \[redacted\]/, 'the server text is kept, the password is not');
      assert.ok(logs.some((l) => /Invalid credentials/.test(l)), 'imapflow logged the refusal (so the check below means something)');
      const leaks = [...logs, ...answers.map((r) => r.body)].filter((line) => forms.some((f) => line.includes(f)));
      assert.deepEqual(leaks, [], 'lines carrying the password');
    });
  }

  test('LOGINDISABLED: MAIL_TLS_REQUIRED, and the password was never sent', async (t) => {
    const server = await track(startFakeImap({ capabilities: ['LOGINDISABLED'] }));
    const { app } = await build(t);
    const problem = assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('cleartext', server.port) }), 'MAIL_TLS_REQUIRED');
    assert.match(String(problem.detail), /LOGINDISABLED/);
    assert.match(String(problem.detail), /not sent/);
    const sent = server.received.flat();
    assert.ok(sent.some((l) => / CAPABILITY$/.test(l)), `imapflow talked to the server: ${JSON.stringify(sent)}`);
    assert.deepEqual(sent.filter((l) => l.includes(PASSWORD) || / (LOGIN|AUTHENTICATE) /i.test(l)), []);
  });

  test('[UNAVAILABLE] and [INUSE] are MAIL_TEMPORARILY_UNAVAILABLE; [PRIVACYREQUIRED] is MAIL_TLS_REQUIRED', async (t) => {
    const { app } = await build(t);
    for (const [code, expected] of [['UNAVAILABLE', 'MAIL_TEMPORARILY_UNAVAILABLE'], ['INUSE', 'MAIL_TEMPORARILY_UNAVAILABLE'], ['PRIVACYREQUIRED', 'MAIL_TLS_REQUIRED']] as const) {
      const server = await track(startFakeImap({ login: () => `NO [${code}] not now` }));
      assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap(`c-${code.toLowerCase()}`, server.port) }), expected);
    }
  });
});
