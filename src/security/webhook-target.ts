import { Secret } from '../domain/secret.js';
import type { WebhookTarget } from '../domain/webhooks.js';
import { invalidSettings, parseSettingsUrl } from '../errors.js';
import type { OutboundPolicy } from './outbound-policy.js';

/**
 * A webhook from a create body or the configuration: an http(s) URL without credentials in it, a secret
 * long enough to sign with, and a destination the outbound policy allows (checked now, so that a refused
 * receiver fails the create instead of every later delivery; checked again before each delivery).
 */
export async function webhookTarget(input: { url: string; secret: string }, outbound: OutboundPolicy, path: string): Promise<WebhookTarget> {
  const url = parseSettingsUrl(input.url, `${path}/url`);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalidSettings(`${path}/url`, 'must be an http or https URL');
  if (url.username || url.password) throw invalidSettings(`${path}/url`, 'must not carry credentials; the signature authenticates the service');
  if (input.secret.length < 16) throw invalidSettings(`${path}/secret`, 'must be at least 16 characters');
  await outbound.check(url.hostname.replace(/^\[|\]$/g, ''), webhookPort(url));
  return { url, secret: new Secret(input.secret) };
}

export function webhookPort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}
