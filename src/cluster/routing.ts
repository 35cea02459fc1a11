import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import type { SessionPool } from '../domain/pool.js';
import type { SessionView } from '../domain/session.js';
import { AppError } from '../errors.js';
import type { OAuthBroker } from '../oauth/broker.js';
import { CALLBACK_PATH } from '../oauth/broker.js';
import type { Principal } from '../security/api-keys.js';
import type { Coordinator } from './coordinator.js';
import type { Directory, DirectoryEntry } from './directory.js';
import { REPLICA_HEADER, type Forwarder, type ReplicaSigner } from './forwarding.js';
import type { Membership } from './membership.js';
import type { OAuthStates } from './oauth-states.js';
import type { Ownership } from './ownership.js';
import { sessionId, unavailable, type RedisConnection } from './redis.js';
import type { Touches } from './touches.js';
import type { RedisSessionStore } from '../store/redis-session-store.js';

export interface RoutingOptions {
  config: Config;
  pool: SessionPool;
  redis: RedisConnection;
  store: RedisSessionStore;
  directory: Directory;
  ownership: Ownership;
  membership: Membership;
  coordinator: Coordinator;
  forwarder: Forwarder;
  signer: ReplicaSigner;
  touches: Touches;
  oauthStates: OAuthStates;
  broker: OAuthBroker;
}

const SESSION_ROUTE = '/v1/sessions/:name';

/** A Redis call that fails while routing is STORE_UNAVAILABLE (it decides who answers). */
async function lookup<T>(promise: Promise<T>, what: string): Promise<T> {
  try {
    return await promise;
  } catch {
    throw unavailable(what);
  }
}

/**
 * Any replica accepts any request (README, "Running more than one replica"). Before a route's handler,
 * this decides who answers: this replica (it holds the session, or nobody does), the shared directory
 * (list, and inspect from the last published view), or the replica that holds the session, to which the
 * request is forwarded signed, with the caller's principal. Routes themselves know nothing of replicas.
 */
export const clusterRouting = fp(
  async (app: FastifyInstance, o: RoutingOptions) => {
    const { pool, membership, coordinator } = o;
    const me = membership.me.id;

    // what a replica whose Redis is gone asks its peers (see Outage)
    app.get('/internal/cluster/health', { schema: { hide: true } }, async (request) => {
      const header = request.headers[REPLICA_HEADER];
      if (typeof header !== 'string' || !o.signer.verify(header, request.method, request.url)) {
        throw new AppError('UNAUTHENTICATED', 'only the other replicas may ask this');
      }
      return { replica: me, redis: o.redis.up };
    });

    const forward = (request: FastifyRequest, reply: FastifyReply, replica: string, principal: Principal | undefined) => {
      const url = membership.urlOf(replica);
      if (!url) throw new AppError('SESSION_RECONNECTING', 'the replica holding this session is not reachable; it is being taken over', { retryAfterSeconds: 2 });
      return o.forwarder.forward(request, reply, { id: replica, url }, principal);
    };

    /** The replica to forward to when another live one holds the session; throws while it is between owners. */
    const holderElsewhere = async (id: string, name: string): Promise<string | undefined> => {
      const holder = await lookup(o.ownership.holder(id), 'finding the replica that holds this session');
      if (holder !== undefined && holder !== me && membership.isLive(holder)) return holder;
      if (holder === me) return undefined;
      if (await lookup(o.store.exists(id), 'finding the replica that holds this session')) {
        throw new AppError('SESSION_RECONNECTING', `session "${name}" is moving to another replica; try again shortly`, { retryAfterSeconds: 2 });
      }
      // Redis may have lost its data, and the holder not written it again yet
      await coordinator.confirmAbsent('finding this session');
      return undefined;
    };

    /** A view from the directory as this replica shows it: between owners it is reconnecting. */
    const shown = (entry: DirectoryEntry): SessionView =>
      membership.isLive(entry.replica) ? entry.view : { ...entry.view, state: 'reconnecting', reconnect: { attempt: 0, nextAttemptAt: null } };

    app.addHook('preHandler', async (request, reply) => {
      const route = request.routeOptions.url;
      if (route === undefined || !(route === '/v1/sessions' || route.startsWith(SESSION_ROUTE) || route === CALLBACK_PATH)) return;
      const principal = request.principal as Principal | null;

      if (route === CALLBACK_PATH) {
        // the sign-in was started by the replica that held the session then; it keeps the PKCE verifier
        const state = (request.query as { state?: string }).state;
        if (!state || o.broker.knowsState(state) || request.viaReplica) return;
        const replica = await o.oauthStates.replicaOf(state).catch(() => undefined);
        if (replica && replica !== me && membership.isLive(replica)) return forward(request, reply, replica, undefined);
        return;
      }
      if (!principal) return;

      if (route === '/v1/sessions' && request.method === 'GET') {
        const all = (request.query as { all?: boolean }).all === true;
        if (all && principal.role !== 'admin') return; // the route answers FORBIDDEN
        // a list missing what the replicas have not written again yet would look like lost sessions
        await coordinator.confirmAbsent('listing sessions');
        const entries = await lookup(o.directory.list(all ? undefined : principal.name), 'listing sessions');
        const views = new Map<string, SessionView>();
        for (const entry of entries) views.set(sessionId(entry.view.owner, entry.view.name), shown(entry));
        for (const session of pool.list(all ? undefined : principal.name)) views.set(sessionId(session.owner, session.name), session.view());
        const sessions = [...views.values()].sort((a, b) => (a.owner === b.owner ? (a.name < b.name ? -1 : 1) : a.owner < b.owner ? -1 : 1));
        return reply.send({ sessions });
      }

      if (route === '/v1/sessions' && request.method === 'POST') {
        if (request.viaReplica) return;
        const name = (request.body as { name?: unknown })?.name;
        if (typeof name !== 'string' || pool.find(principal.name, name)) return;
        o.redis.require('creating a session');
        const id = sessionId(principal.name, name);
        const holder = await holderElsewhere(id, name);
        if (holder) return forward(request, reply, holder, principal);
        const preferred = membership.preferred(id);
        if (preferred !== me && membership.isLive(preferred)) return forward(request, reply, preferred, principal);
        return;
      }

      // a route that names a session
      const name = (request.params as { name: string }).name;
      const asked = (request.query as { owner?: string } | undefined)?.owner;
      const owner = asked !== undefined && principal.role === 'admin' ? asked : principal.name;
      const id = sessionId(owner, name);
      if (pool.find(owner, name)) {
        if (!coordinator.mayUse(owner, name)) {
          throw new AppError('SESSION_RECONNECTING', `session "${name}" is moving to another replica; try again shortly`, { retryAfterSeconds: 2 });
        }
        if (request.method === 'DELETE') o.redis.require('closing a session');
        return;
      }
      if (request.viaReplica) {
        // sent here as the holder, which this replica no longer is: the caller's replica asks again
        if (await lookup(o.store.exists(id), 'finding the replica that holds this session')) {
          throw new AppError('SESSION_RECONNECTING', `session "${name}" is moving to another replica; try again shortly`, { retryAfterSeconds: 2 });
        }
        await coordinator.confirmAbsent('finding this session');
        return;
      }
      const query = request.query as { refresh?: boolean } | undefined;
      if (route === SESSION_ROUTE && request.method === 'GET' && !query?.refresh) {
        const entry = await lookup(o.directory.get(owner, name), 'reading the session directory');
        if (entry) {
          const view = shown(entry);
          const age = view.mailbox ? Date.now() - Date.parse(view.mailbox.checkedAt) : Infinity;
          // a session between states (connecting, awaiting a sign-in...) is asked live: its holder knows better
          const fresh = (view.state === 'connected' && age <= o.config.MSB_SUMMARY_MAX_AGE_MS) || view.state === 'failed';
          if (!membership.isLive(entry.replica) || fresh) {
            // an inspect renews the session's expiry: its holder hears of it (batched)
            if (membership.isLive(entry.replica)) o.touches.add(entry.replica, id);
            const now = new Date();
            const renewed = view.idleTimeoutMs > 0 && view.state !== 'closed' ? new Date(now.getTime() + view.idleTimeoutMs).toISOString() : view.expiresAt;
            return reply.send({ ...view, lastUsedAt: now.toISOString(), expiresAt: renewed });
          }
        }
      }
      const holder = await holderElsewhere(id, name);
      if (holder) return forward(request, reply, holder, principal);
    });
  },
  { name: 'cluster-routing', dependencies: ['auth'] },
);
