import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OutboundPolicy } from '../../src/security/outbound-policy.js';
import { AppError } from '../../src/errors.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { startSilentServer } from '../harness/tcp-tools.js';

const DEFAULT_DENY = '127.0.0.0/8,::1/128,0.0.0.0/8,169.254.0.0/16,fe80::/10,224.0.0.0/4,ff00::/8,255.255.255.255/32';
const forbidden = (err: unknown) => err instanceof AppError && err.code === 'DESTINATION_FORBIDDEN';

test('the policy checks addresses after DNS, ports, and allow lists', async () => {
  const dns = async (host: string) => {
    const table: Record<string, string[]> = {
      'mail.corp.test': ['10.1.2.3'],
      'rebind.evil.test': ['10.1.2.4', '169.254.169.254'],
      'v6.corp.test': ['::1'],
    };
    const addresses = table[host];
    if (!addresses) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  const policy = new OutboundPolicy({ allow: '', deny: DEFAULT_DENY, ports: '993,995' }, dns);
  assert.equal(await policy.check('mail.corp.test', 993), '10.1.2.3');
  await assert.rejects(policy.check('rebind.evil.test', 993), forbidden, 'one denied address among several');
  await assert.rejects(policy.check('v6.corp.test', 993), forbidden);
  await assert.rejects(policy.check('169.254.169.254', 993), forbidden);
  await assert.rejects(policy.check('mail.corp.test', 22), forbidden);
  await assert.rejects(policy.check('nowhere.test', 993), (e: unknown) => e instanceof AppError && e.code === 'MAIL_HOST_NOT_FOUND');

  let asked = 0;
  const counting = async (host: string) => {
    asked += 1;
    return dns(host);
  };
  const names = new OutboundPolicy({ allow: '*.corp.test', deny: DEFAULT_DENY, ports: '*' }, counting);
  assert.equal(await names.check('mail.corp.test', 1143), '10.1.2.3');
  await assert.rejects(names.check('mail.other.test', 993), forbidden);
  assert.equal(asked, 1, 'a name outside the allow list is refused without a DNS query');
  const nets = new OutboundPolicy({ allow: '10.1.0.0/16', deny: 'none', ports: '*' }, dns);
  assert.equal(await nets.check('mail.corp.test', 993), '10.1.2.3');
  await assert.rejects(nets.check('192.0.2.1', 993), forbidden);
});

test('through the API: denied destinations are refused before any connection is made', async (t) => {
  const silent = await startSilentServer();
  t.after(() => silent.close());
  // the default deny list (loopback among others), as a production server would have it
  const { app } = await build(t, { MSB_OUTBOUND_DENY: DEFAULT_DENY, MSB_OUTBOUND_PORTS: `993,${silent.port}` });
  const base = { type: 'imap', port: silent.port, username: 'u', password: 'p', timeouts: { connectMs: 1000 } };
  for (const host of ['127.0.0.1', 'localhost', '169.254.169.254', '[::1]']) {
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...base, name: 'ssrf', host } });
    const problem = assertProblem(res, 'DESTINATION_FORBIDDEN');
    if (host === 'localhost') assert.match(String(problem.detail), /resolves to/);
  }
  assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...base, name: 'port', host: '192.0.2.1', port: 22 } }), 'DESTINATION_FORBIDDEN');
  assert.equal(silent.accepted(), 0, 'nothing reached the server');
});
