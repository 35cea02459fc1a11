// The local Microsoft world for outlook (Graph) tests: the shared identity world (microsoft-world.ts) and a
// fake Graph that trusts its tokens. MSB_GRAPH_HOST points at the fake.
import type { TestCerts } from './certs.js';
import { startFakeGraph, type FakeGraph } from './fake-graph.js';
import type { FakeIdentity } from './fake-identity.js';
import { APPS, USERS, startMicrosoftIdentity } from './microsoft-world.js';

export { APPS, USERS, assertNoSecrets } from './microsoft-world.js';

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
  const { certs, idp, env, secrets } = await startMicrosoftIdentity();
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
    env: { ...env, MSB_GRAPH_HOST: graph.host, MSB_MICROSOFT_CLIENT_ID: APPS.server.id, MSB_MICROSOFT_CLIENT_SECRET: APPS.server.secret },
    secrets,
    close: async () => {
      await graph.close();
      await idp.close();
    },
  };
}
