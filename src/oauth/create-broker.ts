import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { Secret } from '../domain/secret.js';
import { OAuthBroker, type OAuthBrokerOptions } from './broker.js';
import type { DestinationGuard } from './https-network.js';

/** The OAuth2 broker from the configuration; throws when the token cache file cannot be decrypted. */
export function createOAuthBroker(
  config: Config,
  logger: Logger,
  outbound: { check: DestinationGuard },
  shared: Pick<OAuthBrokerOptions, 'sharedTokens' | 'onStateStarted'> = {},
): Promise<OAuthBroker> {
  return OAuthBroker.create({
    publicUrl: config.MSB_PUBLIC_URL,
    stateTtlMs: config.MSB_OAUTH_STATE_TTL_MS,
    extraCaFile: config.MSB_EXTRA_CA_FILE,
    timeoutMs: config.MSB_CONNECT_TIMEOUT_MS,
    tokenCacheFile: config.MSB_TOKEN_CACHE_FILE,
    tokenCacheKey: config.MSB_TOKEN_CACHE_KEY ? new Secret(config.MSB_TOKEN_CACHE_KEY) : undefined,
    logger: logger.child({ component: 'oauth' }),
    libLogLevel: config.MSB_MAIL_LOG_LEVEL,
    guard: (host, port) => outbound.check(host, port),
    ...shared,
  });
}
