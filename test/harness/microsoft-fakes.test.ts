// Self-test of the Microsoft fakes: a resource (EWS, Graph) refuses a token issued for another resource,
// as Exchange Online and Graph do (aud claim), so a service that sent a token to the wrong host would fail
// its tests instead of passing them.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { startFakeEws, type FakeEws } from './fake-ews.js';
import { startFakeGraph, type FakeGraph } from './fake-graph.js';
import { APPS, USERS, startMicrosoftIdentity, type MicrosoftIdentity } from './microsoft-world.js';

function send(url: string, caPem: string, options: { method: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method, headers: options.headers, ca: caPem }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('the Microsoft fakes check the audience of a token', () => {
  let ms: MicrosoftIdentity;
  let ews: FakeEws;
  let graph: FakeGraph;
  before(async () => {
    ms = await startMicrosoftIdentity();
    ews = await startFakeEws({ verifyToken: (t) => ms.idp.principal(t), mailboxes: { [USERS.alice.name]: { total: 1, unread: 0 } } });
    graph = await startFakeGraph({ verifyToken: (t) => ms.idp.principal(t), mailboxes: { [USERS.alice.name]: { total: 1, unread: 0 } } });
  });
  after(async () => {
    await ews?.close();
    await graph?.close();
    await ms?.idp.close();
  });

  /** A delegated token for alice (ROPC), for the scope given. */
  async function token(scope: string): Promise<string> {
    const body = new URLSearchParams({ grant_type: 'password', client_id: APPS.public.id, username: USERS.alice.name, password: USERS.alice.password, scope });
    const res = await send(`${ms.idp.origin}/${ms.idp.tenantId}/oauth2/v2.0/token`, ms.certs.caPem, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString(),
    });
    assert.equal(res.status, 200, res.body);
    return (JSON.parse(res.body) as { access_token: string }).access_token;
  }

  const ewsOrigin = () => new URL(ews.url).origin;
  const soap = '<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>';
  const toEws = (bearer: string) => send(ews.url, ms.certs.caPem, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'text/xml' }, body: soap });
  const toGraph = (bearer: string) => send(`https://${graph.host}/v1.0/me/mailFolders/inbox`, ms.certs.caPem, { method: 'GET', headers: { authorization: `Bearer ${bearer}` } });

  test('EWS takes a token for itself and refuses a Graph token (401 invalid_token)', async () => {
    const own = await toEws(await token(`${ewsOrigin()}/EWS.AccessAsUser.All`));
    assert.notEqual(own.status, 401, own.body);
    const other = await toEws(await token(`https://${graph.host}/Mail.ReadWrite`));
    assert.equal(other.status, 401);
  });

  test('Graph takes a token for itself and refuses an EWS token (401 InvalidAuthenticationToken, invalid audience)', async () => {
    const own = await toGraph(await token(`https://${graph.host}/Mail.ReadWrite`));
    assert.equal(own.status, 200, own.body);
    const other = await toGraph(await token(`${ewsOrigin()}/EWS.AccessAsUser.All`));
    assert.equal(other.status, 401);
    assert.match(other.body, /InvalidAuthenticationToken.*audience/);
  });
});
