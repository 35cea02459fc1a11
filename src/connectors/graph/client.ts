import { randomUUID } from 'node:crypto';
import { Agent } from 'node:https';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../../errors.js';
import type { ConnectorContext } from '../../domain/connector.js';
import type { AccessTokens } from '../../oauth/access-tokens.js';
import { outboundSecureContext } from '../../net/trust.js';
import { toGraphError, type GraphItem, type GraphPermission } from './errors.js';
import { graphCall, graphError, graphOpen, retryAfterMs, type GraphAnswer, type GraphMethod, type GraphStreamAnswer } from './http.js';
import type { MailboxLimiter } from './mailbox-limiter.js';

/** How one Graph host and mailbox is reached; a part of GraphSettings. */
export interface GraphEndpoint {
  host: string;
  port: number;
  /** "me", or the user / shared mailbox opened through /users/{id} (for messages). */
  mailbox: string;
  ca?: string;
  extraCaFile: string;
  /** Most attempts of one request answered 429 / 5xx (MSB_GRAPH_MAX_ATTEMPTS). */
  maxAttempts: number;
  /** First backoff when Graph gives no Retry-After; doubles per attempt. */
  retryBaseMs?: number;
  /**
   * Sessions with the same key share Graph's 4 concurrent requests (app + mailbox); undefined when the
   * mailbox is not known before sign-in (then the session's own serial queue is the bound).
   */
  limiterKey?: string;
}

export interface GraphCall {
  method?: GraphMethod;
  url: URL;
  /** For this request and its retries. */
  budgetMs: number;
  /** Prefer values besides IdType="ImmutableId", which every request carries. */
  prefer?: readonly string[];
  body?: unknown;
  /** More request headers (an upload chunk's Content-Range). */
  headers?: Record<string, string>;
  /**
   * A URL Graph handed out with its own authorization (an attachment upload session): it gets no token,
   * and its host (which may be another Microsoft host) passes the outbound policy like any other.
   */
  preauthenticated?: boolean;
  /** Slots of the mailbox's 4 this request takes (a JSON batch: as many of its requests as run at once). */
  slots?: number;
  /** What a 403 names: Mail.ReadWrite (default for changes) or Mail.Send. */
  permission?: GraphPermission;
  /** Statuses besides 2xx that are answered rather than thrown (a delta query's 410 "start over"). */
  expect?: readonly number[];
  /** Most bytes of the JSON answer (default 1 MiB); a larger one comes back with tooLarge. */
  maxBytes?: number;
  /** What a 404 names (see toGraphError). */
  item?: GraphItem;
  /** Log label: what the request is for (never the URL, which may carry search words). */
  what: string;
}

/** Ids that survive moves between folders (not a move to another mailbox or an archive). */
const IMMUTABLE_IDS = 'IdType="ImmutableId"';
const DEFAULT_MAX_JSON = 1_048_576;

/**
 * Plain HTTPS to Microsoft Graph for one session. Before each request the Graph host passes the outbound
 * policy and only then is a token asked for, so a forbidden destination never costs (or receives) a token;
 * each attempt takes a slot of the mailbox's limiter. 429 and 5xx are retried, waiting at least
 * Retry-After, while the call's budget allows; a 401 gets one fresh token before it counts as refused.
 */
export class GraphClient {
  readonly #endpoint: GraphEndpoint;
  readonly #ctx: ConnectorContext;
  readonly #tokens: AccessTokens;
  readonly #limiter: MailboxLimiter;
  /** Without a shared key, a limiter key of this session alone. */
  readonly #key: string;
  #agent: Agent | undefined;

  constructor(endpoint: GraphEndpoint, ctx: ConnectorContext, tokens: AccessTokens, limiter: MailboxLimiter) {
    this.#endpoint = endpoint;
    this.#ctx = ctx;
    this.#tokens = tokens;
    this.#limiter = limiter;
    this.#key = endpoint.limiterKey ?? `session:${randomUUID()}`;
  }

  /** A 2xx JSON answer (body may be undefined when it was not JSON, or tooLarge set); anything else throws. */
  json(call: GraphCall): Promise<GraphAnswer> {
    return this.#send(call, false);
  }

  /** A 2xx answer whose body streams; the mailbox slot is held until the stream closes. */
  async open(call: GraphCall): Promise<{ headers: GraphAnswer['headers']; stream: Readable }> {
    const answer = (await this.#send(call, true)) as GraphStreamAnswer;
    return { headers: answer.headers, stream: answer.stream! };
  }

  /** Most attempts of one request answered 429 / 5xx (MSB_GRAPH_MAX_ATTEMPTS). */
  get maxAttempts(): number {
    return this.#endpoint.maxAttempts;
  }

  /**
   * The error for an answer that did not come through #send (one response of a JSON batch), mapped like
   * the answers of single requests.
   */
  errorOf(answer: { status: number; body: unknown; item?: GraphItem; permission?: GraphPermission; attempts?: number; retryAfterSeconds?: number; write?: boolean }): AppError {
    const e = this.#endpoint;
    const said = graphError(answer.body);
    return toGraphError({
      host: e.host,
      port: e.port,
      mailbox: e.mailbox,
      status: answer.status,
      ...(said.code ? { graphCode: said.code } : {}),
      ...(said.message ? { graphMessage: said.message } : {}),
      ...(answer.item ? { item: answer.item } : {}),
      ...(answer.permission ? { permission: answer.permission } : {}),
      ...(answer.write ? { write: true } : {}),
      ...(answer.attempts !== undefined ? { attempts: answer.attempts } : {}),
      ...(answer.retryAfterSeconds !== undefined ? { retryAfterSeconds: answer.retryAfterSeconds } : {}),
    });
  }

  /** The wait before trying again after a 429 / 5xx: Retry-After when given, else backoff (see #delay). */
  retryDelay(retryAfter: string | string[] | undefined, attempt: number): number {
    return this.#delay({ status: 429, headers: { 'retry-after': retryAfter } as GraphAnswer['headers'], body: undefined }, attempt);
  }

  close(): void {
    this.#tokens.close();
    this.#agent?.destroy();
    this.#agent = undefined;
  }

  async #send(call: GraphCall, stream: boolean): Promise<GraphStreamAnswer> {
    const e = this.#endpoint;
    const deadline = Date.now() + call.budgetMs;
    const pre = call.preauthenticated === true;
    const target = pre ? { host: call.url.hostname, port: call.url.port ? Number(call.url.port) : 443 } : { host: e.host, port: e.port };
    if (pre && call.url.protocol !== 'https:') throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${e.host} handed out an upload URL that is not https: not followed`);
    const address = await this.#ctx.outbound.check(target.host, target.port);
    let token = pre ? undefined : await this.#tokens.token();
    let renewed = false;
    const where = {
      host: target.host,
      port: target.port,
      mailbox: e.mailbox,
      ...(call.item ? { item: call.item } : {}),
      ...(call.method !== undefined && call.method !== 'GET' ? { write: true } : {}),
      ...(call.permission ? { permission: call.permission } : {}),
    };
    for (let attempt = 1; ; attempt++) {
      // an upload URL carries its own authorization in its query: never in a log or an error message
      const secrets = token ? [token.reveal()] : [call.url.search, call.url.href];
      const release = await this.#slot(deadline, call.budgetMs, call.slots ?? 1);
      const left = deadline - Date.now();
      if (left <= 0) {
        release();
        throw new AppError('MAIL_TIMEOUT', `Microsoft Graph ${e.host}: no answer within ${call.budgetMs} ms`);
      }
      let answer: GraphStreamAnswer;
      const started = Date.now();
      try {
        const request = {
          method: call.method ?? 'GET',
          url: call.url,
          address,
          ...(token ? { token: token.reveal() } : {}),
          timeoutMs: left,
          requestId: randomUUID(),
          prefer: [IMMUTABLE_IDS, ...(call.prefer ?? [])],
          ...(call.body !== undefined ? { body: call.body } : {}),
          ...(call.headers ? { headers: call.headers } : {}),
          maxBytes: call.maxBytes ?? DEFAULT_MAX_JSON,
        } as const;
        answer = stream ? await graphOpen(this.#agent ??= this.#newAgent(), request) : await graphCall(this.#agent ??= this.#newAgent(), request);
      } catch (err) {
        release();
        throw toGraphError({ ...where, transport: err, secrets });
      }
      const { status } = answer;
      this.#ctx.logger.debug({ what: call.what, status, attempt, ms: Date.now() - started }, 'Graph answered');
      if ((status >= 200 && status < 300) || call.expect?.includes(status)) {
        if (answer.stream) answer.stream.once('close', release);
        else release();
        return answer;
      }
      release();
      const said = graphError(answer.body);
      this.#ctx.logger.debug({ what: call.what, status, graphCode: said.code, attempt }, 'Graph answered with an error');
      if (status === 401 && !renewed && token) {
        // a token can be refused before its expiry (revoked, password changed): one fresh token decides
        renewed = true;
        token = await this.#tokens.token({ fresh: true });
        continue;
      }
      const retryable = status === 429 || status >= 500;
      const wait = retryable ? this.#delay(answer, attempt) : 0;
      const error = () =>
        toGraphError({ ...where, status, graphCode: said.code, graphMessage: said.message, attempts: attempt, secrets, ...(retryable ? { retryAfterSeconds: wait / 1000 } : {}) });
      // waiting past the deadline would only turn a clear "retry later" into a timeout
      if (!retryable || attempt >= e.maxAttempts || Date.now() + wait >= deadline) throw error();
      this.#ctx.logger.info({ what: call.what, status, attempt, waitMs: wait }, 'Graph asked to retry later: waiting');
      await sleep(wait);
    }
  }

  /** A slot of the mailbox's 4 concurrent requests, waiting at most until the call's deadline. */
  async #slot(deadline: number, budgetMs: number, slots: number): Promise<() => void> {
    const release = await this.#limiter.acquire(this.#key, deadline, slots);
    if (release) return release;
    throw new AppError(
      'GRAPH_THROTTLED',
      `Microsoft Graph ${this.#endpoint.host}: 4 requests to mailbox ${this.#endpoint.mailbox} were in flight for ${budgetMs} ms (Graph's per-mailbox limit; other sessions on the same mailbox): retry after retryAfterSeconds`,
      { retryAfterSeconds: 1 },
    );
  }

  /** At least Retry-After when Graph sends one; else exponential backoff with jitter. */
  #delay(answer: GraphAnswer, attempt: number): number {
    const asked = retryAfterMs(answer.headers['retry-after']);
    if (asked !== undefined) return asked;
    const base = (this.#endpoint.retryBaseMs ?? 500) * 2 ** (attempt - 1);
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  #newAgent(): Agent {
    const e = this.#endpoint;
    // as many sockets as Graph allows requests in flight per mailbox
    return new Agent({ keepAlive: true, maxSockets: 4, secureContext: outboundSecureContext(e.extraCaFile, e.ca), minVersion: 'TLSv1.2' });
  }
}
