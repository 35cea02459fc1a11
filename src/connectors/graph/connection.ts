import { randomUUID } from 'node:crypto';
import { Agent } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../../errors.js';
import { toGraphError } from './errors.js';
import type { AccessTokens } from '../../oauth/access-tokens.js';
import type { Connector, ConnectorContext, MailboxSummary } from '../../domain/connector.js';
import { graphError, graphGet, retryAfterMs, type GraphAnswer } from './http.js';
import { outboundSecureContext } from '../../net/trust.js';

/** Everything a Graph connector needs; tokens come from the session's AccessTokens. */
export interface GraphSettings {
  /** Graph host (e.g. graph.microsoft.com) and port. */
  host: string;
  port: number;
  /** The Inbox resource: https://<host>/v1.0/me/mailFolders/inbox or .../users/{id}/mailFolders/inbox. */
  inboxUrl: string;
  /** "me", or the user / shared mailbox opened through /users/{id}. */
  mailbox: string;
  ca?: string;
  extraCaFile: string;
  timeouts: { connectMs: number; commandMs: number };
  /** Most attempts of one request answered 429 / 5xx (MSB_GRAPH_MAX_ATTEMPTS). */
  maxAttempts: number;
  /** First backoff when Graph gives no Retry-After; doubles per attempt. */
  retryBaseMs?: number;
}

const SELECT = '?$select=displayName,totalItemCount,unreadItemCount';

/**
 * Outlook / Microsoft 365 through Microsoft Graph, plain HTTPS. Holds no connection: connect() proves
 * access with one GET of the Inbox folder, every summary() is one more. Before each request the Graph
 * host passes the outbound policy and only then is a token asked for, so a forbidden destination never
 * costs (or receives) a token. 429 and 5xx are retried, waiting at least Retry-After, while the
 * operation's deadline allows; a 401 gets one fresh token before it counts as refused.
 */
export class GraphConnector implements Connector {
  readonly persistent = false;
  readonly #settings: GraphSettings;
  readonly #ctx: ConnectorContext;
  readonly #tokens: AccessTokens;
  #agent: Agent | undefined;

  constructor(settings: GraphSettings, ctx: ConnectorContext, tokens: AccessTokens) {
    this.#settings = settings;
    this.#ctx = ctx;
    this.#tokens = tokens;
  }

  /** The GET that proves access also answers the first summary. */
  connect(): Promise<MailboxSummary> {
    return this.#readInbox(this.#settings.timeouts.connectMs);
  }

  async summary(): Promise<MailboxSummary> {
    return this.#readInbox(this.#settings.timeouts.commandMs);
  }

  async close(): Promise<void> {
    this.#tokens.close();
    this.#agent?.destroy();
    this.#agent = undefined;
  }

  async #readInbox(budgetMs: number): Promise<MailboxSummary> {
    const s = this.#settings;
    const deadline = Date.now() + budgetMs;
    const address = await this.#ctx.outbound.check(s.host, s.port);
    let token = await this.#tokens.token();
    const url = new URL(`${s.inboxUrl}${SELECT}`);
    let renewed = false;
    for (let attempt = 1; ; attempt++) {
      const left = deadline - Date.now();
      const secrets = [token.reveal()];
      if (left <= 0) throw new AppError('MAIL_TIMEOUT', `Microsoft Graph ${s.host}: no answer within ${budgetMs} ms`);
      let answer: GraphAnswer;
      try {
        answer = await graphGet(this.#agent ??= this.#newAgent(), url, address, token.reveal(), left, randomUUID());
      } catch (err) {
        throw toGraphError({ host: s.host, port: s.port, mailbox: s.mailbox, transport: err, secrets });
      }
      const { status } = answer;
      if (status === 200) return this.#toSummary(answer);
      const said = graphError(answer.body);
      this.#ctx.logger.debug({ status, graphCode: said.code, attempt }, 'Graph answered with an error');
      if (status === 401 && !renewed) {
        // a token can be refused before its expiry (revoked, password changed): one fresh token decides
        renewed = true;
        token = await this.#tokens.token({ fresh: true });
        continue;
      }
      const retryable = status === 429 || status >= 500;
      const wait = retryable ? this.#delay(answer, attempt) : 0;
      const error = () =>
        toGraphError({ host: s.host, port: s.port, mailbox: s.mailbox, status, graphCode: said.code, graphMessage: said.message, attempts: attempt, secrets, ...(retryable ? { retryAfterSeconds: wait / 1000 } : {}) });
      // waiting past the deadline would only turn a clear "retry later" into a timeout
      if (!retryable || attempt >= s.maxAttempts || Date.now() + wait >= deadline) throw error();
      this.#ctx.logger.info({ status, attempt, waitMs: wait }, 'Graph asked to retry later: waiting');
      await sleep(wait);
    }
  }

  /** At least Retry-After when Graph sends one; else exponential backoff with jitter. */
  #delay(answer: GraphAnswer, attempt: number): number {
    const asked = retryAfterMs(answer.headers['retry-after']);
    if (asked !== undefined) return asked;
    const base = (this.#settings.retryBaseMs ?? 500) * 2 ** (attempt - 1);
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  #toSummary(answer: GraphAnswer): MailboxSummary {
    const s = this.#settings;
    const folder = answer.body as { totalItemCount?: unknown; unreadItemCount?: unknown } | undefined;
    const total = folder?.totalItemCount;
    const unread = folder?.unreadItemCount;
    if (!Number.isInteger(total) || !Number.isInteger(unread)) {
      throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${s.host}: the Inbox folder came without totalItemCount / unreadItemCount`);
    }
    return { name: 'Inbox', messages: total as number, unseen: unread as number, checkedAt: new Date().toISOString() };
  }

  #newAgent(): Agent {
    const s = this.#settings;
    return new Agent({ keepAlive: true, maxSockets: 2, secureContext: outboundSecureContext(s.extraCaFile, s.ca), minVersion: 'TLSv1.2' });
  }
}
