import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { SessionPool } from './domain/pool.js';
import type { KindServices } from './kinds/kind.js';
import { createLogger, lazyRequestLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import { metricsRoutes } from './routes/metrics.js';
import { openapiPlugin } from './plugins/openapi.js';
import { authPlugin, DEV_PRINCIPAL } from './plugins/auth.js';
import { problemsPlugin, sendProblem, writeRawProblem } from './plugins/problems.js';
import { sharedSchemasPlugin } from './plugins/shared-schemas.js';
import { validatorFactory } from './plugins/validation.js';
import { AppError } from './errors.js';
import { rateLimitPlugin } from './plugins/rate-limit.js';
import { failedRequestsPlugin } from './plugins/failed-requests.js';
import { FailureLimiter } from './security/failure-limiter.js';
import { ApiKeys } from './security/api-keys.js';
import { OutboundPolicy } from './security/outbound-policy.js';
import { SecretStore } from './security/secret-store.js';
import { healthRoutes } from './routes/health.js';
import { sessionRoutes } from './routes/sessions.js';
import { messageRoutes } from './routes/messages.js';
import { changeRoutes } from './routes/changes.js';
import { sendRoutes } from './routes/send.js';
import { eventRoutes } from './routes/events.js';
import { claimRoutes } from './routes/claims.js';
import { ClaimService } from './domain/claims.js';
import { MemoryLeaseStore } from './domain/leases.js';
import { EventHub } from './domain/events.js';
import { startWebhooks } from './webhook-delivery.js';
import { FileSessionStore } from './store/file-session-store.js';
import { noSessionStore } from './domain/session-store.js';
import { restoreSessions } from './restore-sessions.js';
import { MemoryIdempotencyStore } from './domain/idempotency.js';
import { SendQuota } from './domain/send-quota.js';
import { oauthRoutes } from './routes/oauth.js';
import { createOAuthBroker } from './oauth/create-broker.js';
import { MailboxLimiter } from './connectors/graph/mailbox-limiter.js';
import { supportedBy } from './kinds/index.js';
import { prepareSession } from './kinds/prepare-session.js';
import type { PreparedSession } from './domain/prepared-session.js';
import { Cluster, clusterRouting } from './cluster/index.js';

export interface AppDependencies {
  /** Logger to use instead of pino to stdout (tests capture lines through it). */
  logger?: Logger;
  /** Where MSB_SECRET_<NAME> secrets are read from (server.ts passes process.env). */
  secretEnv?: Record<string, string | undefined>;
}

/** Paths under /v1 that the identity provider sends a browser to: no API key there, `state` protects them. */
const PUBLIC_V1_PATHS = ['/v1/oauth2/callback'];

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Builds the service without listening. Only src/server.ts listens. */
export async function buildApp(config: Config, deps: AppDependencies = {}) {
  const logger = deps.logger ?? createLogger(config);
  const failures = new FailureLimiter(config.MSB_FAILED_REQUEST_LIMIT_PER_MINUTE);
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: config.MSB_BODY_LIMIT_BYTES,
    // deadlines for receiving a request (not for answering it: a create may take its connect timeout);
    // Node checks them every connectionsCheckingInterval, so that is kept short
    requestTimeout: config.MSB_REQUEST_TIMEOUT_MS,
    http: {
      headersTimeout: config.MSB_HEADERS_TIMEOUT_MS,
      requestTimeout: config.MSB_REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(1000, config.MSB_HEADERS_TIMEOUT_MS),
    },
    requestIdHeader: false,
    // each request's logger (with its request id) is made when it first logs, not for every request
    childLoggerFactory: (parent, bindings, options) => lazyRequestLogger(parent as Logger, bindings, options),
    // a caller's request id is kept only when it is short and plain; otherwise a fresh one is made
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // a URL Fastify cannot decode (e.g. "/%") is the client's mistake: answer it like every other one
    // (hooks do not run for these, so the headers every answer carries are set here too)
    frameworkErrors: (error, request, reply) => {
      failures.failed(request.ip);
      reply.header('x-request-id', request.id).header('x-content-type-options', 'nosniff').header('cache-control', 'no-store');
      void sendProblem(request, reply, new AppError('MALFORMED_REQUEST', error.message));
    },
    // a request the HTTP parser rejects never reaches Fastify: answer problem+json on the raw socket (and
    // count it against the address, like every other refused request)
    clientErrorHandler: (err, socket) => {
      if (socket.remoteAddress) failures.failed(socket.remoteAddress);
      writeRawProblem(err, socket);
    },
    // long enough that an over-long session name or message id reaches validation (400) instead of the router's 414
    routerOptions: { maxParamLength: 1100 },
    schemaController: { compilersFactory: { buildValidator: validatorFactory() } },
    ajv: {
      customOptions: {
        // keep unknown fields so they are reported (additionalProperties: false), not silently dropped
        removeAdditional: false,
        discriminator: true,
        allErrors: true,
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // beyond this many sockets Node closes new connections at once: file descriptors stay for the mail sessions
  app.server.maxConnections = config.MSB_MAX_CONNECTIONS;

  const metrics = createMetrics();
  const outbound = new OutboundPolicy({ allow: config.MSB_OUTBOUND_ALLOW, deny: config.MSB_OUTBOUND_DENY, ports: config.MSB_OUTBOUND_PORTS });
  // replicas on a shared Redis (src/cluster/): without MSB_REDIS_URL, one process as before
  const cluster = config.MSB_REDIS_URL ? new Cluster(config, logger) : undefined;
  const services: KindServices = { oauth: await createOAuthBroker(config, logger, outbound, cluster?.brokerHooks), graphLimiter: new MailboxLimiter() };
  const keys = config.MSB_AUTH === 'keys' ? new ApiKeys(config.MSB_API_KEYS) : undefined;
  const secrets = new SecretStore({
    dir: config.MSB_SECRETS_DIR,
    access: config.MSB_SECRET_ACCESS,
    env: deps.secretEnv ?? {},
    openAccess: config.MSB_AUTH === 'none',
  });
  const events = new EventHub({ bufferSize: config.MSB_EVENT_BUFFER_SIZE });
  const store = cluster
    ? cluster.sessionStore
    : config.MSB_SESSION_STORE_FILE
      ? await FileSessionStore.open(config.MSB_SESSION_STORE_FILE, Buffer.from(config.MSB_SESSION_STORE_KEY, 'base64'))
      : noSessionStore;
  const pool = new SessionPool({
    config, logger, observer: metrics.observer, outbound, supportedBy, events, store,
    ...(cluster ? { reconnectGate: cluster.reconnectGate, admit: (owner: string, name: string, prepared: PreparedSession) => cluster.coordinator.admit(owner, name, prepared) } : {}),
  });
  const principalNamed = (name: string) => (keys ? keys.principal(name) : name === DEV_PRINCIPAL.name ? DEV_PRINCIPAL : undefined);
  const prepareDeps = { config, services, secrets, outbound };
  const routing = cluster?.attach({
    pool,
    events,
    broker: services.oauth,
    prepare: async (record) => {
      const principal = principalNamed(record.owner);
      return principal ? prepareSession(record.definition as { name: string; type: string }, principal, prepareDeps) : undefined;
    },
  });
  const webhooks = await startWebhooks(config, { events, pool, outbound, logger });
  metrics.watch(pool);
  let accepting = true;

  // bots send JSON; anything else is a 415 rather than a string that reaches validation
  app.removeContentTypeParser(['text/plain']);
  // Bots' HTTP tools send "Content-Type: application/json" on every method, DELETE included, with no body.
  // An empty JSON body is therefore no body, for every route at once: a route without a body ignores it,
  // a route that needs one answers VALIDATION_ERROR. Anything else goes to Fastify's own parser (with its
  // __proto__ / constructor poisoning checks).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    return parseJson(request, text, done);
  });

  // (hooks on every request take a callback rather than being async: no promise per request and hook)
  app.addHook('onRequest', (request, reply, done) => {
    // every answer, not only /v1 ones: a path test missed absolute-form targets (GET http://host/v1/...);
    // the documentation's static files set their own caching, which replaces cache-control
    reply.headers({ 'x-request-id': request.id, 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' });
    done();
  });
  // the HTML pages (Swagger UI, the OAuth2 result page) must not be framed or leak the URL onward
  app.addHook('onSend', (_request, reply, payload, done) => {
    const type = reply.getHeader('content-type');
    if (typeof type === 'string' && type.startsWith('text/html')) reply.headers({ 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer' });
    done(null, payload);
  });
  // Fastify drains in-flight requests before onClose: only then are the sessions logged out
  app.addHook('preClose', async () => {
    accepting = false;
  });
  app.addHook('onClose', async () => {
    webhooks.close();
    // with replicas, the held sessions are handed over first; closeAll logs out of what is left
    await cluster?.stop();
    await pool.closeAll();
    await store.close();
    await services.oauth.close();
    await cluster?.close();
  });
  if (cluster) app.addHook('onReady', async () => cluster.start());

  await app.register(problemsPlugin);
  await app.register(sharedSchemasPlugin);
  // before auth: an address that keeps failing is refused before its key is checked
  await app.register(failedRequestsPlugin, { limiter: failures });
  await app.register(authPlugin, { keys, publicPaths: PUBLIC_V1_PATHS, forwarded: cluster?.forwarded });
  await app.register(rateLimitPlugin, { perMinute: config.MSB_RATE_LIMIT_PER_MINUTE });
  if (routing) await app.register(clusterRouting, routing);
  await app.register(openapiPlugin, { publicUrl: config.MSB_PUBLIC_URL });
  await app.register(healthRoutes, { isReady: () => accepting, sessionCount: () => pool.size });
  await app.register(sessionRoutes, { pool, outbound, config, services, secrets });
  await app.register(messageRoutes, { pool, events });
  await app.register(changeRoutes, { pool });
  await app.register(sendRoutes, {
    pool,
    config,
    idempotency: cluster?.idempotency ?? new MemoryIdempotencyStore({ ttlMs: config.MSB_IDEMPOTENCY_TTL_MS, maxKeys: config.MSB_IDEMPOTENCY_MAX_KEYS }),
    quota: new SendQuota(config.MSB_SEND_PER_MINUTE),
  });
  await app.register(claimRoutes, {
    pool,
    claims: new ClaimService(cluster?.leases ?? new MemoryLeaseStore({ maxFinished: config.MSB_CLAIM_MAX_FINISHED }), { keyword: config.MSB_CLAIM_KEYWORD }),
  });
  await app.register(eventRoutes, { events, heartbeatMs: config.MSB_EVENTS_HEARTBEAT_MS, streamsPerPrincipal: config.MSB_EVENT_STREAMS_PER_PRINCIPAL });
  await app.register(oauthRoutes, { pool, config, services });
  await app.register(metricsRoutes, { registry: metrics.registry });
  await restoreSessions(store, pool, prepareDeps, principalNamed, logger);
  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
