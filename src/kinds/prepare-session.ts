import type { Config } from '../config.js';
import { fingerprint } from '../domain/fingerprint.js';
import type { PreparedSession } from '../domain/prepared-session.js';
import type { Principal } from '../security/api-keys.js';
import type { OutboundPolicy } from '../security/outbound-policy.js';
import { resolveSecretRefs, showRefs } from '../security/resolve-refs.js';
import type { SecretStore } from '../security/secret-store.js';
import { webhookTarget } from '../security/webhook-target.js';
import { kindFor } from './index.js';
import type { KindServices } from './kind.js';

export interface PrepareDependencies {
  config: Config;
  services: KindServices;
  secrets: SecretStore;
  outbound: OutboundPolicy;
}

/**
 * A create body (validated against its schema) made ready to become a session, for `principal`: secret
 * references read with the principal's rights, the kind's defaults and checks, the webhook. The same
 * path serves POST /v1/sessions and the restore of stored sessions after a restart.
 */
export async function prepareSession(definition: { name: string; type: string } & Record<string, unknown>, principal: Principal, deps: PrepareDependencies): Promise<PreparedSession> {
  const { body, refs } = await resolveSecretRefs(definition, principal, deps.secrets);
  // the owner keeps cached OAuth2 tokens apart between principals
  const kind = kindFor(body.type).prepare(body, deps.config, deps.services, { owner: principal.name });
  const webhook = body.webhook ? await webhookTarget(body.webhook as { url: string; secret: string }, deps.outbound, '/webhook') : undefined;
  return {
    ...kind,
    view: showRefs(kind.view, refs),
    definition,
    ...(Array.isArray(body.watch) ? { watch: body.watch as string[] } : {}),
    // the webhook is part of the settings: the same name with another receiver or secret is a conflict
    ...(webhook ? { webhook, fingerprint: fingerprint({ settings: kind.fingerprint, webhook: [webhook.url.href, webhook.secret.reveal()] }) } : {}),
  };
}
