// The local Microsoft world for EWS tests: the shared identity world (microsoft-world.ts) and a fake EWS
// that trusts its tokens, with a mailbox for each user.
import type { TestCerts } from './certs.js';
import { startFakeEws, type FakeEws } from './fake-ews.js';
import type { FakeIdentity } from './fake-identity.js';
import { APPS, USERS, startMicrosoftIdentity } from './microsoft-world.js';

export { APPS, USERS, assertNoSecrets } from './microsoft-world.js';

export interface EwsWorld {
  certs: TestCerts;
  idp: FakeIdentity;
  ews: FakeEws;
  /** Configuration for build(): the fake IdP as authority, its tenant, a public client, and the test CA as extra trust. */
  env: Record<string, string>;
  /** Every password, secret and token that must never appear in a log line, response body or file. */
  secrets(): string[];
  close(): Promise<void>;
}

/** Starts the fakes; every test file gets its own world. */
export async function startEwsWorld(): Promise<EwsWorld> {
  const { certs, idp, env, secrets } = await startMicrosoftIdentity();
  const ews = await startFakeEws({
    users: { [USERS.alice.name]: USERS.alice.password, [USERS.carol.name]: USERS.carol.password },
    verifyToken: (token) => idp.principal(token),
    mailboxes: Object.fromEntries(Object.values(USERS).map((u, i) => [u.name, { total: 10 + i, unread: i }])),
  });
  return {
    certs,
    idp,
    ews,
    env: { ...env, MSB_MICROSOFT_CLIENT_ID: APPS.public.id },
    secrets,
    close: async () => {
      await ews.close();
      await idp.close();
    },
  };
}
