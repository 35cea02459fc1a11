import { createHmac, timingSafeEqual } from 'node:crypto';
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';
import type { Principal } from '../security/api-keys.js';

export const REPLICA_HEADER = 'x-msb-replica';

/** How far the clock of the replica that signed may be from ours: a captured request replays only this long. */
const MAX_SKEW_MS = 30_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Signs and checks requests between replicas: HMAC-SHA256 with MSB_REPLICA_SECRET over the method, the
 * URL, the sending replica, the time and the caller's principal. A replica believes a forwarded principal
 * only with a valid signature; the caller's API key itself is never passed on.
 */
export class ReplicaSigner {
  readonly #secret: string;
  readonly #me: string;

  constructor(secret: string, me: string) {
    this.#secret = secret;
    this.#me = me;
  }

  sign(method: string, url: string, principal: Principal | undefined, now = Date.now()): string {
    const name = principal?.name ?? '-';
    const role = principal?.role ?? '-';
    return `v1;${this.#me};${now};${name};${role};${this.#mac(method, url, this.#me, now, name, role)}`;
  }

  /** The signing replica and the principal it vouches for; undefined when the signature is not valid. */
  verify(header: string, method: string, url: string, now = Date.now()): { replica: string; principal: Principal | undefined } | undefined {
    const parts = header.split(';');
    if (parts.length !== 6 || parts[0] !== 'v1') return undefined;
    const [, replica, ts, name, role, mac] = parts as [string, string, string, string, string, string];
    const at = Number(ts);
    if (!Number.isSafeInteger(at) || Math.abs(now - at) > MAX_SKEW_MS) return undefined;
    const expected = Buffer.from(this.#mac(method, url, replica, at, name, role));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    if (name === '-') return { replica, principal: undefined };
    if (!NAME.test(name) || (role !== 'bot' && role !== 'admin')) return undefined;
    return { replica, principal: { name, role } };
  }

  #mac(method: string, url: string, replica: string, at: number, name: string, role: string): string {
    return createHmac('sha256', this.#secret).update(['msb-replica-v1', method.toUpperCase(), url, replica, String(at), name, role].join('\n')).digest('base64url');
  }
}

/** Headers that belong to one connection (RFC 9110 7.6.1), or to this replica's own answer. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host', 'content-length', 'authorization', 'cookie', REPLICA_HEADER]);
const NOT_RETURNED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'trailer', 'upgrade', 'date']);

/** A request that no byte crosses for this long is given up (backstop; a dead replica's calls end sooner, see abort). */
const IDLE_MS = 300_000;

/**
 * Forwards HTTP requests to the replica that holds a session: the request (its JSON body as parsed and
 * validated here) goes on signed, the answer comes back as it is, streamed (downloads). Calls to a
 * replica that dies are ended at once (abort), so no request waits for a peer that is gone.
 */
export class Forwarder {
  readonly #signer: ReplicaSigner;
  // idle sockets are dropped well before the peer's keep-alive timeout (Fastify: 72 s), which would otherwise
  // close one just as a request goes out on it; beyond 64 calls at once to one peer they queue here, so a
  // busy replica does not take a peer's MSB_MAX_CONNECTIONS
  readonly #agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 64, timeout: 30_000 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 64, timeout: 30_000 }),
  };
  readonly #inflight = new Map<string, Set<ClientRequest>>();

  constructor(signer: ReplicaSigner) {
    this.#signer = signer;
  }

  /** Answers `reply` with what `target` answers to this request. */
  async forward(request: FastifyRequest, reply: FastifyReply, target: { id: string; url: string }, principal: Principal | undefined): Promise<FastifyReply> {
    const url = new URL(request.url, target.url);
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    }
    headers['x-request-id'] = String(request.id);
    headers[REPLICA_HEADER] = this.#signer.sign(request.method, request.url, principal);
    // the body was parsed (and validated) here; it goes on as JSON, which is all the routes take
    const body = request.body === undefined || request.body === null ? undefined : Buffer.from(JSON.stringify(request.body));
    if (body) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(body.length);
    } else {
      delete headers['content-type'];
    }
    let upstream: IncomingMessage;
    try {
      upstream = await this.#send(url, request.method, headers, body, target.id, reply);
    } catch (err) {
      // a kept-alive socket the peer closed at that very moment: a read is safely sent once more
      if (!(err instanceof StaleSocket) || (request.method !== 'GET' && request.method !== 'HEAD')) throw err instanceof StaleSocket ? err.error : err;
      upstream = await this.#send(url, request.method, headers, body, target.id, reply);
    }
    reply.code(upstream.statusCode ?? 502);
    for (const [name, value] of Object.entries(upstream.headers)) {
      if (value !== undefined && !NOT_RETURNED.has(name)) reply.header(name, value);
    }
    return reply.send(upstream);
  }

  /** Ends every call in flight to a replica (it stopped heartbeating). */
  abort(replicaId: string): void {
    const calls = this.#inflight.get(replicaId);
    if (!calls) return;
    for (const call of calls) call.destroy(new AppError('SESSION_RECONNECTING', 'the replica holding this session went away; it is being taken over', { retryAfterSeconds: 2 }));
    this.#inflight.delete(replicaId);
  }

  close(): void {
    for (const id of [...this.#inflight.keys()]) this.abort(id);
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  #send(url: URL, method: string, headers: Record<string, string | string[]>, body: Buffer | undefined, replicaId: string, reply: FastifyReply): Promise<IncomingMessage> {
    const calls = this.#inflight.get(replicaId) ?? new Set<ClientRequest>();
    this.#inflight.set(replicaId, calls);
    return new Promise<IncomingMessage>((resolve, reject) => {
      const secure = url.protocol === 'https:';
      const call = (secure ? https : http).request(url, { method, headers, agent: secure ? this.#agents.https : this.#agents.http });
      calls.add(call);
      const done = () => {
        calls.delete(call);
        if (calls.size === 0 && this.#inflight.get(replicaId) === calls) this.#inflight.delete(replicaId);
      };
      call.setTimeout(IDLE_MS, () => call.destroy(new AppError('SESSION_RECONNECTING', 'the replica holding this session stopped answering', { retryAfterSeconds: 2 })));
      let ended = false;
      call.once('response', (res) => {
        res.once('end', () => (ended = true));
        res.once('close', done);
        resolve(res);
      });
      call.once('error', (err) => {
        done();
        const error = isAppErrorLike(err) ? err : new AppError('SESSION_RECONNECTING', 'the replica holding this session could not be reached; it is moving to another one', { retryAfterSeconds: 2 });
        reject(call.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? new StaleSocket(error) : error);
      });
      // the caller went away: so does the forwarded call
      reply.raw.once('close', () => {
        if (!ended && !call.destroyed) call.destroy();
      });
      call.end(body);
    });
  }
}

/** A request that failed on a kept-alive socket before any answer: the peer had closed it. */
class StaleSocket extends Error {
  constructor(readonly error: AppError) {
    super(error.message);
  }
}

function isAppErrorLike(err: unknown): err is AppError {
  return err instanceof AppError;
}
