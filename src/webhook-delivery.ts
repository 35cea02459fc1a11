import type { Logger } from 'pino';
import { ConfigError, type Config } from './config.js';
import type { EventHub } from './domain/events.js';
import type { SessionPool } from './domain/pool.js';
import { DEFAULT_RETRY_DELAYS_MS, WebhookDispatcher, type WebhookTarget } from './domain/webhooks.js';
import { isAppError } from './errors.js';
import { postJson } from './net/post-json.js';
import { outboundSecureContext } from './net/trust.js';
import type { OutboundPolicy } from './security/outbound-policy.js';
import { webhookPort, webhookTarget } from './security/webhook-target.js';

/** Reads MSB_WEBHOOK_URLS ("principal=url,...") into one target per principal; a bad entry stops the start. */
async function principalTargets(config: Config, outbound: OutboundPolicy): Promise<Map<string, WebhookTarget>> {
  const targets = new Map<string, WebhookTarget>();
  const entries = config.MSB_WEBHOOK_URLS.split(',').map((e) => e.trim()).filter(Boolean);
  if (entries.length > 0 && config.MSB_WEBHOOK_SECRET.length < 16) {
    throw new ConfigError('invalid configuration: MSB_WEBHOOK_SECRET must hold at least 16 characters when MSB_WEBHOOK_URLS is set');
  }
  for (const entry of entries) {
    const at = entry.indexOf('=');
    const principal = entry.slice(0, at);
    if (at <= 0 || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(principal)) throw new ConfigError(`invalid configuration: MSB_WEBHOOK_URLS entry "${entry}" is not principal=url`);
    try {
      targets.set(principal, await webhookTarget({ url: entry.slice(at + 1), secret: config.MSB_WEBHOOK_SECRET }, outbound, 'MSB_WEBHOOK_URLS'));
    } catch (err) {
      throw new ConfigError(`invalid configuration: MSB_WEBHOOK_URLS entry for ${principal}: ${isAppError(err) ? err.message : 'not usable'}`);
    }
  }
  return targets;
}

/**
 * Wires events to webhooks: every event goes to its principal's webhook (MSB_WEBHOOK_URLS) and to its
 * session's own (`webhook` at create), each delivery through the outbound policy, its result noted on
 * the session for inspect.
 */
export async function startWebhooks(
  config: Config,
  deps: { events: EventHub; pool: SessionPool; outbound: OutboundPolicy; logger: Logger },
): Promise<{ close(): void }> {
  const byPrincipal = await principalTargets(config, deps.outbound);
  const secureContext = outboundSecureContext(config.MSB_EXTRA_CA_FILE);
  const delays = config.MSB_WEBHOOK_RETRY_DELAYS_MS === '' ? DEFAULT_RETRY_DELAYS_MS : config.MSB_WEBHOOK_RETRY_DELAYS_MS.split(',').map(Number);
  const dispatcher = new WebhookDispatcher({
    logger: deps.logger.child({ component: 'webhooks' }),
    retryDelaysMs: delays,
    maxPendingPerTarget: 1000,
    post: async (target, body, headers) => {
      // checked again at every delivery: DNS may have changed since the create
      const address = await deps.outbound.check(target.url.hostname.replace(/^\[|\]$/g, ''), webhookPort(target.url));
      return postJson(target.url, address, body, headers, { timeoutMs: config.MSB_WEBHOOK_TIMEOUT_MS, secureContext });
    },
  });
  const untap = deps.events.tap((owner, event) => {
    const session = deps.pool.find(owner, event.session);
    const principal = byPrincipal.get(owner);
    if (principal) dispatcher.deliver(principal, event, (result) => session?.noteDelivery('principal', principal.url, result));
    if (session?.webhook) dispatcher.deliver(session.webhook, event, (result) => session.noteDelivery('session', session.webhook!.url, result));
  });
  return {
    close() {
      untap();
      dispatcher.close();
    },
  };
}
