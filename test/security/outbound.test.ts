import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { embeddedIpv4, OutboundPolicy } from '../../src/security/outbound-policy.js';
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

const CURRENT_DEFAULT_DENY = loadConfig({ MSB_AUTH: 'none' }).MSB_OUTBOUND_DENY;

test('unspecified addresses are always refused, IPv4-mapped and NAT64 addresses are judged as IPv4, metadata and CGNAT denied by default', async () => {
  const dns = async (host: string) => {
    const table: Record<string, string[]> = { 'zero.evil.test': ['::'], 'mapped.evil.test': ['::ffff:127.0.0.1'], 'nat64.corp.test': ['64:ff9b::a01:203'] };
    const addresses = table[host];
    if (!addresses) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  // even with an empty deny list (a development setup), nothing goes to an unspecified address
  const open = new OutboundPolicy({ allow: '', deny: 'none', ports: '*' }, dns);
  for (const host of ['::', '0:0::0', '0.0.0.0', '0.1.2.3', '::ffff:0.0.0.0', 'zero.evil.test']) {
    await assert.rejects(open.check(host, 143), (e: unknown) => forbidden(e) && /always refused/.test((e as Error).message), host);
  }
  assert.equal(await open.check('::1', 143), '::1', 'loopback itself is only denied by the (default) list');

  const defaults = new OutboundPolicy({ allow: '', deny: CURRENT_DEFAULT_DENY, ports: '*' }, dns);
  for (const host of ['::ffff:127.0.0.1', '::ffff:7f00:1', '64:ff9b::127.0.0.1', '64:ff9b::7f00:1', '64:ff9b::a9fe:a9fe', 'mapped.evil.test', '::7f00:1', '100.64.0.1', '100.100.100.200', 'fd00:ec2::254', '169.254.169.254', '[::1]'.slice(1, -1)]) {
    await assert.rejects(defaults.check(host, 143), forbidden, host);
  }
  // private mail servers stay reachable, also through NAT64 and as IPv4-mapped addresses
  assert.equal(await defaults.check('::ffff:10.1.2.3', 143), '::ffff:10.1.2.3');
  assert.equal(await defaults.check('nat64.corp.test', 143), '64:ff9b::a01:203');
  // an allow list of IPv4 networks covers the same addresses written as IPv6
  const allow = new OutboundPolicy({ allow: '10.0.0.0/8', deny: CURRENT_DEFAULT_DENY, ports: '*' }, dns);
  assert.equal(await allow.check('::ffff:10.1.2.3', 143), '::ffff:10.1.2.3');
  assert.equal(await allow.check('64:ff9b::10.1.2.3', 143), '64:ff9b::10.1.2.3');
  await assert.rejects(allow.check('::ffff:192.0.2.1', 143), forbidden);
});

test('embeddedIpv4 reads mapped and NAT64 addresses in every textual form, and nothing else', () => {
  assert.equal(embeddedIpv4('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(embeddedIpv4('0:0:0:0:0:FFFF:7F00:0001'), '127.0.0.1');
  assert.equal(embeddedIpv4('64:ff9b::'), '0.0.0.0');
  assert.equal(embeddedIpv4('64:ff9b::1'), '0.0.0.1');
  assert.equal(embeddedIpv4('64:ff9b:0:0:0:0:c000:201'), '192.0.2.1');
  assert.equal(embeddedIpv4('64:ff9b:1::a01:203'), undefined, 'the local-use prefix embeds elsewhere');
  assert.equal(embeddedIpv4('2001:db8::ffff:7f00:1'), undefined);
  assert.equal(embeddedIpv4('::1'), undefined);
  assert.equal(embeddedIpv4('10.0.0.1'), undefined);
});

test('through the API: "::" and "0.0.0.0" never reach a loopback service, whatever MSB_OUTBOUND_DENY says', async (t) => {
  const banner = await startBannerServer('::', '* OK [CAPABILITY IMAP4rev1] internal-admin.corp.example ready\r\n');
  t.after(() => banner.close());
  const { app } = await build(t, { MSB_OUTBOUND_DENY: 'none', MSB_OUTBOUND_PORTS: '*' });
  for (const host of ['::', '[::]', '0.0.0.0', '::ffff:0.0.0.0', '0']) {
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'zero', type: 'imap', host, port: banner.port, secure: false, tls: { starttls: 'off' }, username: 'u', password: 'p' } });
    const problem = assertProblem(res, 'DESTINATION_FORBIDDEN');
    assert.doesNotMatch(String(problem.detail), /internal-admin/, host);
  }
  assert.equal(banner.accepted(), 0, 'nothing reached the loopback service');
});

describe('what a caller learns of a destination the service does not vouch for', () => {
  let banner: Record<'pop3' | 'imap', BannerServer>;
  let closing: BannerServer;
  let closedPort: number;
  before(async () => {
    // answers like a POP3 or IMAP server would, then refuses the login with text the caller has no business reading
    banner = {
      pop3: await startBannerServer('127.0.0.1', '+OK\r\n', () => '-ERR internal-db.corp.example PostgreSQL 15\r\n'),
      imap: await startBannerServer('127.0.0.1', '* OK\r\n', (line) => `${line.split(' ')[0]} NO internal-db.corp.example PostgreSQL 15\r\n`),
    };
    closing = await startBannerServer('127.0.0.1', 'SSH-2.0-OpenSSH_9.2p1 internal-bastion\r\n', undefined, true);
    const probe = await startBannerServer('127.0.0.1', '');
    closedPort = probe.port;
    await probe.close();
  });
  after(async () => {
    await banner?.pop3.close();
    await banner?.imap.close();
    await closing?.close();
  });
  const create = (app: App, name: string, type: 'imap' | 'pop3', port: number) =>
    app.inject({ method: 'POST', url: '/v1/sessions', payload: { name, type, host: '127.0.0.1', port, secure: false, tls: { starttls: 'off' }, username: 'u', password: 'p', timeouts: { connectMs: 3000 } } });

  test('on a port outside the protocol and the operator\'s lists, refused and closed look alike and no banner is shown', async (t) => {
    // every port allowed (*) and no allow list: the service could otherwise map which internal ports are open
    const { app } = await build(t, { MSB_OUTBOUND_ALLOW: '', MSB_OUTBOUND_PORTS: '*' });
    const refused = assertProblem(await create(app, 'refused', 'imap', closedPort), 'MAIL_NETWORK_ERROR');
    const closed = assertProblem(await create(app, 'closed', 'imap', closing.port), 'MAIL_NETWORK_ERROR');
    assert.equal(String(refused.detail).replace(String(closedPort), 'PORT'), String(closed.detail).replace(String(closing.port), 'PORT'));
    assert.match(String(refused.detail), /connection closed by server$/);
    for (const type of ['pop3', 'imap'] as const) {
      const rejected = assertProblem(await create(app, `login-${type}`, type, banner[type].port), 'MAIL_AUTH_FAILED');
      assert.doesNotMatch(String(rejected.detail), /internal-db|PostgreSQL/, type);
    }
    // inspect cannot show it either: a session that failed is not kept, and nothing else carries the text
    assert.deepEqual((await app.inject({ method: 'GET', url: '/v1/sessions' })).json(), { sessions: [] });
  });

  test('the same destinations listed by the operator are reported in full', async (t) => {
    for (const env of [{ MSB_OUTBOUND_ALLOW: '127.0.0.1', MSB_OUTBOUND_PORTS: '*' }, { MSB_OUTBOUND_ALLOW: '', MSB_OUTBOUND_PORTS: `${closedPort},${banner.pop3.port}` }]) {
      const { app } = await build(t, env);
      assertProblem(await create(app, 'refused', 'imap', closedPort), 'MAIL_CONNECTION_REFUSED');
      const rejected = assertProblem(await create(app, 'login', 'pop3', banner.pop3.port), 'MAIL_AUTH_FAILED');
      assert.match(String(rejected.detail), /internal-db/, 'the operator vouched for this host: its answer is shown');
    }
  });
});

interface BannerServer {
  port: number;
  accepted(): number;
  close(): Promise<void>;
}

/** A TCP server that greets with `greeting`, answers each line with `reply`, or closes after the greeting. */
async function startBannerServer(host: string, greeting: string, reply?: (line: string) => string, closeAfterGreeting = false): Promise<BannerServer> {
  let accepted = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    if (greeting) socket.write(greeting);
    if (closeAfterGreeting) socket.end();
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let i: number;
      while ((i = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 2);
        if (reply && socket.writable) socket.write(reply(line));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
