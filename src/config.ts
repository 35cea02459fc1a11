import { Type, type Static, type TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { HOST_PORT_LIST_PATTERN, HOST_PORT_PATTERN } from './net/host-port.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The one configuration schema. Every key is the environment variable that sets it, so the README table,
 * the defaults and the validation cannot drift apart.
 */
export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'HTTP port to listen on.' }),
  HOST: Type.String({
    default: '',
    description: 'Interface to listen on. Empty: every interface (0.0.0.0), except with MSB_AUTH=none, which listens on loopback (localhost) unless HOST is set.',
  }),
  LOG_LEVEL: Type.Enum(LOG_LEVELS, { default: 'info', description: 'pino level of the service log.' }),
  MSB_MAIL_LOG_LEVEL: Type.Enum(LOG_LEVELS, {
    default: 'warn',
    description: 'pino level of the mail libraries (imapflow protocol traces at debug/trace; credentials are never logged).',
  }),
  MSB_BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, maximum: 10_485_760, default: 65_536, description: 'Largest accepted request body.' }),
  MSB_HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 10_000, description: 'Time a client has to send the request line and headers; then 408 and the connection is closed.' }),
  MSB_REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 30_000, description: 'Time a client has to send a whole request, body included (not the time to answer it); then 408 and the connection is closed.' }),
  MSB_MAX_CONNECTIONS: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1000, description: 'Most HTTP connections open at once; further connections are closed at once.' }),
  MSB_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 300_000, default: 15_000, description: 'Default time allowed to connect, greet, upgrade TLS and log in.' }),
  MSB_COMMAND_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 30_000, description: 'Default time allowed for one mail command.' }),
  MSB_SUMMARY_MAX_AGE_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 5_000, description: 'Inspect answers from the mailbox summary cached this long; older ones are refreshed live (0 = always live).' }),
  MSB_MAX_SESSIONS: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10_000, description: 'Most sessions the pool holds (with MSB_REDIS_URL: all replicas together).' }),
  MSB_MAX_SESSIONS_PER_HOST: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0, description: 'Most sessions to one mail host (0 = no limit beyond MSB_MAX_SESSIONS); with MSB_REDIS_URL over all replicas.' }),
  MSB_MAX_SESSIONS_PER_PRINCIPAL: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1000, description: 'Most sessions one principal (API key) holds, so one bot cannot take every slot of the pool (with MSB_REDIS_URL: on all replicas together).' }),
  MSB_MAX_CONNECTING_PER_PRINCIPAL: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 50, description: 'Most creates of one principal that may be connecting at once (against a silent server each waits its connect timeout); with MSB_REDIS_URL on all replicas together.' }),
  MSB_KEEPALIVE_INTERVAL_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 60_000, description: 'IMAP keepalive period (STATUS INBOX, which also refreshes the summary, and a STATUS of each watched folder); 0 = off. A dead connection is noticed within this plus MSB_COMMAND_TIMEOUT_MS.' }),
  MSB_CHECK_INTERVAL_MS: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 300_000, description: 'Check period of POP3 sessions (login, STAT, QUIT); 0 = off.' }),
  MSB_WATCH_INTERVAL_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 30_000, description: 'How often sessions that cannot be told of new mail (POP3, EWS, Outlook) look for it in their watched folders, for message.new events; 0 = they do not watch. IMAP sessions are told at once (IDLE).' }),
  MSB_IDLE_TIMEOUT_MS: Type.Integer({ minimum: 0, maximum: 2_147_483_647, default: 3_600_000, description: 'Close a session after this long without an API call naming it (0 = never); a session may override it with idleTimeoutMs.' }),
  MSB_LOCK_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 45_000, description: 'Longest wait for the previous operation on the same session; then SESSION_BUSY.' }),
  MSB_PARSE_MAX_BYTES: Type.Integer({
    minimum: 65_536,
    maximum: 1_073_741_824,
    default: 26_214_400,
    description: 'Bytes of a message read to build its parsed detail (GET /messages/{id}: headers, text, HTML, attachment list); beyond it the detail says truncated: true. Raw and attachment downloads stream and are not limited by it.',
  }),
  MSB_RECONNECT_BASE_MS: Type.Integer({ minimum: 10, maximum: 600_000, default: 1_000, description: 'First reconnect delay; doubles per attempt, with jitter.' }),
  MSB_RECONNECT_MAX_MS: Type.Integer({ minimum: 10, maximum: 3_600_000, default: 60_000, description: 'Cap of the reconnect delay.' }),
  MSB_RECONNECT_MAX_ATTEMPTS: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0, description: 'Reconnect attempts before a session is failed (0 = keep trying; permanent errors such as rejected credentials fail at once).' }),
  MSB_RECONNECT_RATE_PER_SEC: Type.Integer({ minimum: 0, maximum: 100_000, default: 50, description: 'Reconnect attempts per second each mail host starts at (adaptive: rises with fast logins up to MSB_RECONNECT_RATE_MAX_PER_SEC, halves on refusals and slow logins); 0 = no cap.' }),
  MSB_RECONNECT_RATE_MAX_PER_SEC: Type.Integer({ minimum: 1, maximum: 100_000, default: 400, description: 'Most reconnect attempts per second to one mail host, however fast it answers (with MSB_REDIS_URL: across all replicas, restores and moves included).' }),
  MSB_RECONNECT_SLOW_LOGIN_MS: Type.Integer({ minimum: 1, maximum: 600_000, default: 2_000, description: 'A reconnect slower than this (or refused, reset, timed out) halves the host\'s reconnect rate.' }),
  MSB_ALLOW_INSECURE_TLS: Type.Boolean({ default: false, description: 'Whether a session may turn certificate verification off (tls.verifyCertificate=false): for test servers with self-signed certificates only.' }),
  MSB_AUTH: Type.Enum(['keys', 'none'], { default: 'keys', description: 'keys: every /v1 route needs an API key from MSB_API_KEYS. none: no authentication, one principal "anonymous" with the admin role: development only, logged loudly.' }),
  MSB_API_KEYS: Type.String({ default: '', description: 'Comma-separated principal:role:sha256hex entries (role bot or admin); `npm run api-key -- NAME ROLE` makes one.' }),
  MSB_RATE_LIMIT_PER_MINUTE: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 600, description: 'Requests per minute per principal (per client address on routes without a key); 0 = off. /health and /ready are never limited.' }),
  MSB_FAILED_REQUEST_LIMIT_PER_MINUTE: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 60,
    description: 'Refused requests (no or wrong API key, invalid or unreadable request) per minute per client address; over it, every request from that address is 429 until the minute ends, before any authentication. 0 = off.',
  }),
  MSB_SECRETS_DIR: Type.String({ default: '', description: 'Directory of secret files ({"secret": "name"} reads the file "name"), e.g. /run/secrets.' }),
  MSB_SECRET_ACCESS: Type.String({ default: '', description: 'Who may read which secrets: principal=glob|glob;other=*. Nothing is readable unless granted (with MSB_AUTH=none, everything).' }),
  MSB_OUTBOUND_ALLOW: Type.String({ default: '', description: 'If set, the only destinations allowed: CIDRs, IPs, host names, *.domain patterns.' }),
  MSB_OUTBOUND_DENY: Type.String({
    default: '127.0.0.0/8,::1/128,::/96,169.254.0.0/16,fe80::/10,100.64.0.0/10,fd00:ec2::254/128,224.0.0.0/4,ff00::/8,255.255.255.255/32',
    description:
      'Addresses never connected to, checked after DNS resolution (default: loopback, IPv4-compatible IPv6, link-local incl. cloud metadata 169.254.169.254 and fd00:ec2::254, carrier-grade NAT 100.64.0.0/10 incl. 100.100.100.200, multicast, broadcast). IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) addresses are judged as the IPv4 address they carry. Unspecified addresses (0.0.0.0/8, ::) are always refused. Private ranges stay allowed: mail servers live there.',
  }),
  MSB_OUTBOUND_PORTS: Type.String({ default: '25,110,143,443,465,587,993,995', description: 'Ports that may be connected to, or *.' }),
  MSB_SEND_MAX_BYTES: Type.Integer({ minimum: 1024, maximum: 157_286_400, default: 26_214_400, description: 'Largest message the send routes accept: text, HTML and decoded attachments together (the request body may be a third larger, base64).' }),
  MSB_SEND_MAX_RECIPIENTS: Type.Integer({ minimum: 1, maximum: 10_000, default: 100, description: 'Most recipients (to, cc and bcc together) of one message sent.' }),
  MSB_SEND_PER_MINUTE: Type.Integer({ minimum: 0, maximum: 100_000, default: 60, description: 'Most messages one principal may send per minute (send, reply, forward); 0 = no limit.' }),
  MSB_IDEMPOTENCY_TTL_MS: Type.Integer({ minimum: 1000, maximum: 604_800_000, default: 86_400_000, description: 'How long an Idempotency-Key of the send routes is remembered.' }),
  MSB_IDEMPOTENCY_MAX_KEYS: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 100_000, description: 'Most Idempotency-Keys remembered at once; the oldest go first.' }),
  MSB_EVENT_BUFFER_SIZE: Type.Integer({ minimum: 10, maximum: 1_000_000, default: 1000, description: 'Events kept per principal for clients that resume with Last-Event-ID.' }),
  MSB_EVENTS_HEARTBEAT_MS: Type.Integer({ minimum: 1000, maximum: 300_000, default: 15_000, description: 'Period of the comment line sent on idle event streams, so that proxies keep them open.' }),
  MSB_EVENT_STREAMS_PER_PRINCIPAL: Type.Integer({ minimum: 1, maximum: 10_000, default: 20, description: 'Most event streams (GET /v1/events) one principal may hold open.' }),
  MSB_WEBHOOK_URLS: Type.String({ default: '', description: 'Webhooks per principal: principal=url entries separated by commas; every event of that principal\'s sessions is POSTed there, signed with MSB_WEBHOOK_SECRET.' }),
  MSB_WEBHOOK_SECRET: Type.String({ default: '', description: 'Key of the HMAC-SHA256 signature of the MSB_WEBHOOK_URLS deliveries (at least 16 characters; required when MSB_WEBHOOK_URLS is set).' }),
  MSB_WEBHOOK_RETRY_DELAYS_MS: Type.String({ pattern: '^[0-9]{1,9}(,[0-9]{1,9}){0,19}$', default: '1000,5000,30000,120000,600000', description: 'Waits before each retry of a webhook delivery that failed (non-2xx, timeout, no connection); the count + 1 is the number of attempts.' }),
  MSB_WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 120_000, default: 10_000, description: 'Time a webhook receiver has to answer one delivery.' }),
  MSB_CLAIM_KEYWORD: Type.String({ pattern: '^\\$?[A-Za-z0-9_.-]{1,64}$', default: '$Processed', description: 'What marks a message done by a work claim on the server: an IMAP keyword, an EWS/Graph category of this name.' }),
  MSB_CLAIM_MAX_FINISHED: Type.Integer({ minimum: 1000, maximum: 100_000_000, default: 100_000, description: 'Finished message ids remembered per session in the process (what keeps done messages from being claimed again where the server has no keywords: POP3).' }),
  MSB_SESSION_STORE_FILE: Type.String({ default: '', description: 'File that keeps session definitions (secrets included) across restarts, encrypted with MSB_SESSION_STORE_KEY; a restarted service restores its sessions by itself. Empty: sessions live in memory only.' }),
  MSB_SESSION_STORE_KEY: Type.String({ pattern: '^([A-Za-z0-9+/]{43}=)?$', default: '', description: 'AES-256-GCM key of MSB_SESSION_STORE_FILE, or of everything sessions keep in Redis (MSB_REDIS_URL): 32 random bytes in base64 (openssl rand -base64 32).' }),
  MSB_SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000, description: 'How long a graceful shutdown may take before the process exits anyway.' }),
  // Replicas on a shared Redis/Valkey (src/cluster/); without MSB_REDIS_URL nothing of this is used
  MSB_REDIS_URL: Type.String({
    pattern: '^(rediss?://[^\\s]+)?$',
    default: '',
    description:
      'Redis or Valkey that replicas share: redis://[user:password@]host:port[/db], rediss:// for TLS. Sessions (sealed with MSB_SESSION_STORE_KEY), their owners, limits, idempotency keys, OAuth2 states and tokens, work claims and the reconnect rate cap then live there. Empty: one process, sessions in memory (or MSB_SESSION_STORE_FILE).',
  }),
  MSB_REDIS_CA_FILE: Type.String({ default: '', description: 'PEM file of the CA(s) that signed the Redis server certificate (rediss://), in addition to Node\'s roots.' }),
  MSB_REDIS_PREFIX: Type.String({ pattern: '^[A-Za-z0-9._:-]{1,64}$', default: 'msb:', description: 'Prefix of every Redis key and channel, so that several deployments can share one Redis.' }),
  MSB_REPLICA_URL: Type.String({
    pattern: '^(https?://[^/?#\\s]+)?$',
    default: '',
    description: 'Base URL at which the other replicas reach this one (e.g. http://10.0.0.5:3000). Empty: http://<HOST>:<PORT>, with the host name when HOST is every interface.',
  }),
  MSB_REPLICA_SECRET: Type.String({
    default: '',
    description: 'Shared secret of the replicas (at least 32 characters): requests forwarded between replicas are signed with it, and a forwarded caller is believed only with a valid signature.',
  }),
  MSB_LEASE_TTL_MS: Type.Integer({
    minimum: 1000,
    maximum: 300_000,
    default: 15_000,
    description: 'Lifetime of a replica\'s lease on a session (and of its heartbeat); renewed every third of it. A dead replica\'s sessions move after this plus a fifth of it.',
  }),
  // OAuth2 and Exchange Web Services (EWS); the OAuth2 part is shared by every kind that signs in to Microsoft
  MSB_PUBLIC_URL: Type.String({
    pattern: '^https?://[^/?#\\s]+(/[^?#\\s]*)?$',
    default: 'http://localhost:3000',
    description: 'Base URL of this service as a browser reaches it. The OAuth2 redirect URI is this plus /v1/oauth2/callback: register exactly that in the app registration.',
  }),
  MSB_OAUTH_AUTHORITY_HOST: Type.String({
    pattern: HOST_PORT_PATTERN,
    default: 'login.microsoftonline.com',
    description: 'Microsoft identity platform host[:port] (login.microsoftonline.us for US Government, login.chinacloudapi.cn for China). The server only ever sends its client secrets here.',
  }),
  MSB_OAUTH_STATE_TTL_MS: Type.Integer({ minimum: 1000, maximum: 86_400_000, default: 600_000, description: 'How long an authorization URL (its single-use state) stays valid.' }),
  MSB_TOKEN_CACHE_FILE: Type.String({ default: '', description: 'File that keeps OAuth2 tokens across restarts, encrypted with MSB_TOKEN_CACHE_KEY. Empty: tokens live in memory only.' }),
  MSB_TOKEN_CACHE_KEY: Type.String({
    pattern: '^([A-Za-z0-9+/]{43}=)?$',
    default: '',
    description: 'AES-256-GCM key of MSB_TOKEN_CACHE_FILE: 32 random bytes in base64 (openssl rand -base64 32). Empty: tokens live in memory only.',
  }),
  MSB_EXTRA_CA_FILE: Type.String({ default: '', description: 'PEM file of CA certificates trusted for EWS and the identity provider, in addition to Node\'s roots and NODE_EXTRA_CA_CERTS.' }),
  // One Microsoft app registration for every kind that signs in to Microsoft: EWS, outlook (Graph) and
  // IMAP/POP3 OAuth2 (the MSB_EWS_* and MSB_GRAPH_* names of earlier releases are aliases: DEPRECATED_ALIASES)
  MSB_MICROSOFT_CLIENT_ID: Type.String({
    default: '',
    description: 'Application (client) ID of the server\'s Microsoft app registration, used by EWS, outlook and Microsoft IMAP/POP3 OAuth2 sessions that give no auth.clientId.',
  }),
  MSB_MICROSOFT_TENANT_ID: Type.String({ default: '', description: 'Directory (tenant) ID for Microsoft sessions that give no auth.tenantId (else "organizations").' }),
  MSB_MICROSOFT_CLIENT_SECRET: Type.String({
    default: '',
    description: 'Client secret of MSB_MICROSOFT_CLIENT_ID. Used only with that client ID, MSB_OAUTH_AUTHORITY_HOST, and tokens for MSB_GRAPH_HOST (outlook) or a host of MSB_MICROSOFT_TRUSTED_HOSTS (EWS, IMAP, POP3).',
  }),
  MSB_MICROSOFT_TRUSTED_HOSTS: Type.String({
    pattern: HOST_PORT_LIST_PATTERN,
    default: 'outlook.office365.com',
    description: 'Comma-separated EWS, IMAP and POP3 host[:port] list (a host alone: every port) where tokens obtained with MSB_MICROSOFT_CLIENT_SECRET may be sent. A session naming another host brings its own client secret.',
  }),
  MSB_EWS_MAX_DOWNLOAD_BYTES: Type.Integer({
    minimum: 1024,
    maximum: 1_073_741_824,
    default: 33_554_432,
    description: 'Largest raw message or attachment an EWS session downloads: EWS hands it over base64 inside one XML answer, held in memory (the process grows by about 5x the size while it is decoded). Larger: 422 DOWNLOAD_TOO_LARGE.',
  }),
  // Outlook / Microsoft 365 through Microsoft Graph
  MSB_GRAPH_HOST: Type.String({
    pattern: HOST_PORT_PATTERN,
    default: 'graph.microsoft.com',
    description: 'Microsoft Graph host[:port] of outlook sessions (graph.microsoft.us, microsoftgraph.chinacloudapi.cn for sovereign clouds). The only Graph host that gets tokens obtained with MSB_MICROSOFT_CLIENT_SECRET.',
  }),
  MSB_GRAPH_MAX_ATTEMPTS: Type.Integer({
    minimum: 1,
    maximum: 10,
    default: 4,
    description: 'Most attempts of one Graph request answered 429 or 5xx (waiting Retry-After between them), all within the session\'s connect or command timeout.',
  }),
});

export type Config = Static<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** What to run to make an API key; works in the image too (plain JavaScript, or a shell one-liner). */
export const API_KEY_HINT =
  'npm run api-key -- <principal> bot (node dist/cli/api-key.js in the image), or: KEY="msb_$(openssl rand -hex 32)"; printf %s "$KEY" | sha256sum | cut -d" " -f1';

/**
 * Names of earlier releases, still read but deprecated: EWS and Graph had an app registration each
 * (MSB_EWS_* and MSB_GRAPH_*, 8 variables); one Microsoft app registration now serves every kind.
 */
export const DEPRECATED_ALIASES: Readonly<Record<string, readonly string[]>> = {
  MSB_MICROSOFT_CLIENT_ID: ['MSB_EWS_CLIENT_ID', 'MSB_GRAPH_CLIENT_ID'],
  MSB_MICROSOFT_TENANT_ID: ['MSB_EWS_TENANT_ID', 'MSB_GRAPH_TENANT_ID'],
  MSB_MICROSOFT_CLIENT_SECRET: ['MSB_EWS_CLIENT_SECRET', 'MSB_GRAPH_CLIENT_SECRET'],
  MSB_MICROSOFT_TRUSTED_HOSTS: ['MSB_EWS_TRUSTED_HOSTS', 'MSB_MAIL_OAUTH_TRUSTED_HOSTS'],
};

const isSet = (text: string | undefined): text is string => text !== undefined && text.trim() !== '';

/**
 * The environment with the deprecated names read into the current ones. The current name wins; two old
 * names with different values are refused (which one was meant cannot be guessed), except the host
 * lists, which are joined: each old list, or its default, trusted as before.
 */
function withAliases(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out = { ...env };
  for (const [name, aliases] of Object.entries(DEPRECATED_ALIASES)) {
    const given = aliases.filter((alias) => isSet(env[alias]));
    if (isSet(env[name]) || given.length === 0) continue;
    if (name === 'MSB_MICROSOFT_TRUSTED_HOSTS') {
      const fallback = String((ConfigSchema.properties.MSB_MICROSOFT_TRUSTED_HOSTS as { default?: unknown }).default);
      out[name] = [...new Set(aliases.map((alias) => (isSet(env[alias]) ? env[alias]!.trim() : fallback)))].join(',');
      continue;
    }
    const values = new Set(given.map((alias) => env[alias]!.trim()));
    if (values.size > 1) {
      // the values are not quoted: one of them may be a secret
      throw new ConfigError(`invalid configuration: ${given.join(' and ')} differ: one Microsoft app registration serves EWS and Graph now: set ${name} (those names are deprecated)`);
    }
    out[name] = [...values][0];
  }
  return out;
}

/** A warning for each deprecated name the environment sets (the service logs them at start). */
export function deprecatedVariables(env: Record<string, string | undefined>): string[] {
  const warnings: string[] = [];
  for (const [name, aliases] of Object.entries(DEPRECATED_ALIASES)) {
    for (const alias of aliases.filter((a) => isSet(env[a]))) {
      warnings.push(isSet(env[name]) ? `${alias} is deprecated and ignored: ${name} is set` : `${alias} is deprecated: use ${name}`);
    }
  }
  return warnings;
}

/** Settings that are valid one by one but not together. */
function checkCombinations(config: Config): void {
  const keys = config.MSB_API_KEYS.trim() !== '';
  if (config.MSB_AUTH === 'keys' && !keys) {
    throw new ConfigError(`invalid configuration: MSB_API_KEYS is empty while MSB_AUTH=keys: configure API keys (${API_KEY_HINT}), or set MSB_AUTH=none for development`);
  }
  // keys that are silently ignored would leave a deployment open while its operator believes it is protected
  if (config.MSB_AUTH === 'none' && keys) {
    throw new ConfigError('invalid configuration: MSB_AUTH=none and MSB_API_KEYS are both set: MSB_AUTH=none would ignore the keys; remove MSB_AUTH=none (or set MSB_AUTH=keys) to use them, or remove MSB_API_KEYS for development');
  }
  if (config.MSB_SESSION_STORE_FILE !== '' && config.MSB_SESSION_STORE_KEY === '') {
    throw new ConfigError('invalid configuration: MSB_SESSION_STORE_FILE needs MSB_SESSION_STORE_KEY: set both to keep sessions across restarts, or neither');
  }
  if (config.MSB_SESSION_STORE_KEY !== '' && config.MSB_SESSION_STORE_FILE === '' && config.MSB_REDIS_URL === '') {
    throw new ConfigError('invalid configuration: MSB_SESSION_STORE_KEY is set without MSB_SESSION_STORE_FILE or MSB_REDIS_URL: it would keep nothing; set where sessions are kept, or remove the key');
  }
  if (config.MSB_REDIS_URL !== '') {
    if (config.MSB_SESSION_STORE_KEY === '') {
      throw new ConfigError('invalid configuration: MSB_REDIS_URL needs MSB_SESSION_STORE_KEY: every session is sealed with it before it goes to Redis (openssl rand -base64 32; the same key on every replica)');
    }
    if (config.MSB_SESSION_STORE_FILE !== '') {
      throw new ConfigError('invalid configuration: MSB_REDIS_URL and MSB_SESSION_STORE_FILE are both set: sessions are kept in one place, Redis or the file; remove MSB_SESSION_STORE_FILE');
    }
    if (config.MSB_TOKEN_CACHE_FILE !== '') {
      throw new ConfigError('invalid configuration: MSB_REDIS_URL and MSB_TOKEN_CACHE_FILE are both set: with Redis the OAuth2 token cache is kept there (sealed with MSB_SESSION_STORE_KEY), so that every replica reads it; remove MSB_TOKEN_CACHE_FILE');
    }
    if (config.MSB_REPLICA_SECRET.length < 32) {
      throw new ConfigError('invalid configuration: MSB_REDIS_URL needs MSB_REPLICA_SECRET, at least 32 characters and the same on every replica (openssl rand -base64 32): replicas sign the requests they forward to each other with it');
    }
  }
  if (config.MSB_HEADERS_TIMEOUT_MS > config.MSB_REQUEST_TIMEOUT_MS) {
    throw new ConfigError(
      `invalid configuration: MSB_HEADERS_TIMEOUT_MS=${config.MSB_HEADERS_TIMEOUT_MS} is longer than MSB_REQUEST_TIMEOUT_MS=${config.MSB_REQUEST_TIMEOUT_MS}: the headers are part of the request`,
    );
  }
}

/** Reads, converts and validates the configuration from an environment; throws a ConfigError naming the variable. */
export function loadConfig(given: Record<string, string | undefined> = {}): Config {
  const env = withAliases(given);
  const raw: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(ConfigSchema.properties) as [string, TSchema][]) {
    const text = env[key];
    if (text === undefined || text === '') continue;
    raw[key] = Value.Convert(schema, text.trim());
  }
  const withDefaults = Value.Default(ConfigSchema, raw);
  if (Value.Check(ConfigSchema, withDefaults)) {
    checkCombinations(withDefaults);
    // development mode serves every session and secret without a key: only this machine, unless HOST says otherwise
    if (withDefaults.HOST === '') withDefaults.HOST = withDefaults.MSB_AUTH === 'none' ? 'localhost' : '0.0.0.0';
    return withDefaults;
  }
  const problems = Value.Errors(ConfigSchema, withDefaults).map((e) => {
    const key = e.instancePath.replace(/^\//, '');
    return `${key}=${JSON.stringify(env[key] ?? '')}: ${e.message}`;
  });
  throw new ConfigError(`invalid configuration: ${[...new Set(problems)].join('; ')}`);
}
