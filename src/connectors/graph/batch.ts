import { AppError } from '../../errors.js';
import type { GraphClient } from './client.js';

/** One request of a JSON batch, its URL relative to the version root ("/me/messages/{id}/move"). */
export interface BatchRequest {
  method: 'GET' | 'PATCH' | 'POST' | 'DELETE';
  url: string;
  body?: unknown;
}

/** One response of a JSON batch, after any retries of a throttled request. */
export interface BatchResponse {
  status: number;
  body: unknown;
}

export interface BatchContext {
  client: GraphClient;
  /** https://<host>/v1.0/me or .../users/{id}: gives the batch URL and the base of relative URLs. */
  mailboxUrl: string;
  host: string;
  /** Budget of one batch, its retries included (timeouts.commandMs). */
  budgetMs: () => number;
  /** Most bytes of one batch's JSON answer (MSB_PARSE_MAX_BYTES: a response may carry a whole message). */
  maxBytes: number;
}

/** Graph's limit: at most 20 requests in one batch. */
export const BATCH_SIZE = 20;
/** Outlook runs at most 4 requests of a batch at once, each counting against the mailbox's 4. */
const RUN_AT_ONCE = 4;
/** Statuses of one response that Graph means as "try again": throttled, or a passing failure. */
const RETRYABLE = new Set([429, 500, 502, 503, 504]);

/** The mailbox part of a relative URL: "/me" or "/users/{id}". */
export function relativeBase(mailboxUrl: string): string {
  return new URL(mailboxUrl).pathname.replace(/^\/v1\.0/, '');
}

function header(headers: unknown, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  for (const [key, value] of Object.entries(headers as Record<string, unknown>)) {
    if (key.toLowerCase() === name && typeof value === 'string') return value;
  }
  return undefined;
}

/**
 * Sends `requests` through Microsoft Graph's JSON batching (POST /$batch, 20 to a batch, one batch at a
 * time: a batch holds as many of the mailbox's 4 slots as Outlook runs of it at once). Each response is
 * handed to `onResponse` with its request's index as soon as its batch is settled, in request order
 * within a batch. A response that is throttled (429, with its own Retry-After) or a passing 5xx is sent
 * again in the next round of the same batch, after the longest Retry-After of the round, while the
 * batch's budget allows and at most MSB_GRAPH_MAX_ATTEMPTS times; then the whole call stops with
 * GRAPH_THROTTLED / GRAPH_UNAVAILABLE (the caller reports what was done). A batch request that fails
 * as a whole throws the same errors as any other request.
 */
export async function runBatches(ctx: BatchContext, requests: readonly BatchRequest[], onResponse: (index: number, response: BatchResponse) => void | Promise<void>): Promise<void> {
  const url = new URL(`${new URL(ctx.mailboxUrl).origin}/v1.0/$batch`);
  for (let start = 0; start < requests.length; start += BATCH_SIZE) {
    const indexes = requests.slice(start, start + BATCH_SIZE).map((_, i) => start + i);
    await runOne(ctx, url, requests, indexes, onResponse);
  }
}

async function runOne(
  ctx: BatchContext,
  url: URL,
  requests: readonly BatchRequest[],
  indexes: number[],
  onResponse: (index: number, response: BatchResponse) => void | Promise<void>,
): Promise<void> {
  const budget = ctx.budgetMs();
  const deadline = Date.now() + budget;
  const settled = new Map<number, BatchResponse>();
  let pending = indexes;
  for (let attempt = 1; pending.length > 0; attempt++) {
    const left = deadline - Date.now();
    if (left <= 0) throw new AppError('MAIL_TIMEOUT', `Microsoft Graph ${ctx.host}: a batch did not complete within ${budget} ms`);
    const body = {
      requests: pending.map((index) => {
        const r = requests[index]!;
        return {
          id: String(index),
          method: r.method,
          url: r.url,
          // the outer request's headers do not reach the requests inside: each asks for immutable ids itself
          headers: { Prefer: 'IdType="ImmutableId"', ...(r.body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
          ...(r.body !== undefined ? { body: r.body } : {}),
        };
      }),
    };
    const answer = await ctx.client.json({
      method: 'POST',
      url,
      body,
      budgetMs: left,
      maxBytes: ctx.maxBytes,
      slots: Math.min(RUN_AT_ONCE, pending.length),
      what: 'batch',
    });
    if (answer.tooLarge) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${ctx.host}: a batch answer was larger than ${ctx.maxBytes} bytes`);
    const responses = (answer.body as { responses?: unknown } | undefined)?.responses;
    if (!Array.isArray(responses)) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${ctx.host}: the batch answer is not JSON with a responses array`);
    const byId = new Map<number, { status: number; headers: unknown; body: unknown }>();
    for (const r of responses as { id?: unknown; status?: unknown; headers?: unknown; body?: unknown }[]) {
      const index = typeof r?.id === 'string' && /^\d{1,9}$/.test(r.id) ? Number(r.id) : -1;
      if (pending.includes(index) && Number.isInteger(r.status)) byId.set(index, { status: r.status as number, headers: r.headers, body: r.body });
    }
    const again: { index: number; status: number; body: unknown; delay: number }[] = [];
    for (const index of pending) {
      const r = byId.get(index);
      // Graph answers every request of a batch; one left out is a broken answer, not a success
      if (!r) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${ctx.host}: the batch answer left out request ${index}`);
      if (RETRYABLE.has(r.status)) again.push({ index, status: r.status, body: r.body, delay: ctx.client.retryDelay(header(r.headers, 'retry-after'), attempt) });
      else settled.set(index, { status: r.status, body: r.body });
    }
    if (again.length === 0) break;
    const wait = Math.max(...again.map((a) => a.delay));
    if (attempt >= ctx.client.maxAttempts || Date.now() + wait >= deadline) {
      // waiting past the deadline would only turn a clear "retry later" into a timeout; what did succeed
      // is handed over first, so that the caller can say what was done
      await hand(indexes, settled, onResponse);
      const first = again[0]!;
      throw ctx.client.errorOf({ status: first.status, body: first.body, attempts: attempt, retryAfterSeconds: wait / 1000 });
    }
    pending = again.map((a) => a.index);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  await hand(indexes, settled, onResponse);
}

/** Hands the settled responses over in request order (also the ones settled before the batch stopped). */
async function hand(indexes: number[], settled: Map<number, BatchResponse>, onResponse: (index: number, response: BatchResponse) => void | Promise<void>): Promise<void> {
  for (const index of indexes) {
    const r = settled.get(index);
    if (r) await onResponse(index, r);
  }
}
