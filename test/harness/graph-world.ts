// The local Microsoft world for outlook (Graph) tests: the test CA, the fake identity provider and a fake
// Graph that trusts its tokens, with the cast of ews-world.ts (users and app registrations). Nothing here
// talks to a real Microsoft host: MSB_OAUTH_AUTHORITY_HOST and MSB_GRAPH_HOST point at the fakes, which
// the service trusts through MSB_EXTRA_CA_FILE (verification stays on).
import { makeCerts, type TestCerts } from './certs.js';
import { APPS, USERS } from './ews-world.js';
import { startFakeGraph, type FakeGraph } from './fake-graph.js';
import { startFakeIdentity, type FakeIdentity } from './fake-identity.js';

export { APPS, USERS, assertNoSecrets } from './ews-world.js';

/** Inbox counts of each user's mailbox in the fake Graph. */
export const INBOXES: Record<string, { total: number; unread: number }> = {
  [USERS.alice.name]: { total: 20, unread: 2 },
  [USERS.bob.name]: { total: 21, unread: 3 },
  [USERS.carol.name]: { total: 22, unread: 4 },
  [USERS.mfa.name]: { total: 23, unread: 5 },
  [USERS.shared.name]: { total: 40, unread: 7 },
};

export interface GraphWorld {
  certs: TestCerts;
  idp: FakeIdentity;
  graph: FakeGraph;
  /**
   * Configuration for build(): the fakes as authority and Graph host, the test CA as extra trust, and the
   * server's own confidential app registration (so that a bot needs to give no OAuth2 settings at all).
   */
  env: Record<string, string>;
  /** Every password, secret and token that must never appear in a log line or response body. */
  secrets(): string[];
  close(): Promise<void>;
}

export async function startGraphWorld(): Promise<GraphWorld> {
  const certs = await makeCerts();
  const users = Object.fromEntries(
    Object.values(USERS).map((u) => [u.name, u.name === USERS.mfa.name ? { password: u.password, mfa: 50076 as const } : { password: u.password }]),
  );
  const idp = await startFakeIdentity({
    users,
    clients: { [APPS.public.id]: {}, [APPS.server.id]: { secret: APPS.server.secret }, [APPS.bot.id]: { secret: APPS.bot.secret } },
  });
  const graph = await startFakeGraph({
    verifyToken: (token) => idp.principal(token),
    mailboxes: INBOXES,
    // the shared mailbox is shared with alice only
    shared: { [USERS.shared.name]: [USERS.alice.name] },
  });
  return {
    certs,
    idp,
    graph,
    env: {
      MSB_EXTRA_CA_FILE: certs.caFile,
      MSB_OAUTH_AUTHORITY_HOST: idp.host,
      MSB_GRAPH_HOST: graph.host,
      MSB_MICROSOFT_TENANT_ID: idp.tenantId,
      MSB_MICROSOFT_CLIENT_ID: APPS.server.id,
      MSB_MICROSOFT_CLIENT_SECRET: APPS.server.secret,
    },
    secrets: () => {
      const raw = [...Object.values(USERS).map((u) => u.password), APPS.server.secret, APPS.bot.secret, ...idp.issued];
      return [...raw, ...raw.map((v) => Buffer.from(v).toString('base64')), ...raw.map((v) => encodeURIComponent(v))];
    },
    close: async () => {
      await graph.close();
      await idp.close();
    },
  };
}
