// What the local Microsoft worlds share (ews-world.ts, graph-world.ts, and tests that bring their own mail
// server, such as XOAUTH2 against Dovecot): the test CA, the fake identity provider with a fixed cast of
// users and app registrations, the configuration that points the service at it, and the secrets that must
// never leak. Nothing here talks to a real Microsoft host; the service trusts the fakes through
// MSB_EXTRA_CA_FILE (verification stays on).
import assert from 'node:assert/strict';
import { makeCerts, type TestCerts } from './certs.js';
import { startFakeIdentity, type FakeIdentity } from './fake-identity.js';

export const USERS = {
  alice: { name: 'alice@contoso.test', password: 'Alice-Pw-51c8e' },
  bob: { name: 'bob@contoso.test', password: 'Bob-Pw-2a9d7' },
  carol: { name: 'carol@contoso.test', password: 'Carol-Pw-77e1b' },
  mfa: { name: 'mfa.user@contoso.test', password: 'Mfa-Pw-0b3f4' },
  shared: { name: 'shared.mailbox@contoso.test', password: 'Shared-Pw-6d2c0' },
} as const;

export const APPS = {
  /** A public client (no secret): authorization code + PKCE and ROPC. */
  public: { id: '11111111-aaaa-4bbb-8ccc-000000000001' },
  /** The server's own confidential app registration (MSB_MICROSOFT_CLIENT_ID / MSB_MICROSOFT_CLIENT_SECRET). */
  server: { id: '22222222-aaaa-4bbb-8ccc-000000000002', secret: 'Server-Secret-f0a3c9e2' },
  /** A bot's own confidential app registration, with its own secret. */
  bot: { id: '33333333-aaaa-4bbb-8ccc-000000000003', secret: 'Bot-Secret-8d1b6a47' },
} as const;

export interface MicrosoftIdentity {
  certs: TestCerts;
  idp: FakeIdentity;
  /** The fake identity provider as authority and its tenant, and the test CA as extra trust. */
  env: Record<string, string>;
  /** Every password, secret and token issued, as they are and as they travel (base64, URL-encoded). */
  secrets(): string[];
}

/** The test CA and the fake identity provider that knows USERS (the mfa user needs MFA) and APPS. */
export async function startMicrosoftIdentity(): Promise<MicrosoftIdentity> {
  const certs = await makeCerts();
  const users = Object.fromEntries(
    Object.values(USERS).map((u) => [u.name, u.name === USERS.mfa.name ? { password: u.password, mfa: 50076 as const } : { password: u.password }]),
  );
  const idp = await startFakeIdentity({
    users,
    clients: { [APPS.public.id]: {}, [APPS.server.id]: { secret: APPS.server.secret }, [APPS.bot.id]: { secret: APPS.bot.secret } },
  });
  return {
    certs,
    idp,
    env: { MSB_EXTRA_CA_FILE: certs.caFile, MSB_OAUTH_AUTHORITY_HOST: idp.host, MSB_MICROSOFT_TENANT_ID: idp.tenantId },
    secrets: () => {
      const raw = [...Object.values(USERS).map((u) => u.password), APPS.server.secret, APPS.bot.secret, ...idp.issued];
      // Basic "user:password" as EWS sends it
      const basic = Object.values(USERS).map((u) => Buffer.from(`${u.name}:${u.password}`).toString('base64'));
      return [...raw, ...raw.map((v) => Buffer.from(v).toString('base64')), ...raw.map((v) => encodeURIComponent(v)), ...basic];
    },
  };
}

/** Asserts that none of `secrets` occurs in any of `texts` (log lines, response bodies, file contents). */
export function assertNoSecrets(texts: Iterable<string>, secrets: readonly string[], where: string): void {
  let checked = 0;
  for (const text of texts) {
    checked += 1;
    for (const secret of secrets) {
      assert.ok(!text.includes(secret), `${where} contains a secret (${secret.slice(0, 6)}...): ${text.slice(0, 400)}`);
    }
  }
  assert.ok(checked > 0, `${where}: nothing was captured to check`);
}
