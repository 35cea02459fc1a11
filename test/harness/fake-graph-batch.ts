// JSON batching in the fake Graph (POST /v1.0/$batch), as Graph answers it: up to 20 requests with unique
// ids and relative URLs, run 4 at a time, each answered as if it came alone (the batch's Authorization,
// its own Prefer header) and each counted against its mailbox's 4 concurrent requests (a fifth is its own
// 429 MailboxConcurrency); the answer is 200 with one response per request: id, status, headers (such as
// Retry-After) and body.
import type { IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ScriptedAnswer, GraphRequestRecord } from './fake-graph.js';
import { graphError, parseBody, type Reply } from './fake-graph-json.js';

/** What a request is made of: the server's own requests and those inside a JSON batch alike. */
export interface Incoming {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

export interface BatchDependencies {
  /** Answers one request as the server would (recorded as a request inside a batch). */
  handle: (req: Incoming, raw: Buffer) => Promise<{ reply: Reply; scripted: ScriptedAnswer | undefined }>;
  inFlight: Map<string, number>;
  maxInFlight: Map<string, number>;
  requests: GraphRequestRecord[];
  concurrency: number;
  /** The mailbox a path names ("me" or the {id} of /users/{id}). */
  mailboxOf: (path: string) => string;
}

type Item = { id?: unknown; method?: unknown; url?: unknown; headers?: Record<string, unknown>; body?: unknown };

export function batchRunner(deps: BatchDependencies): (outer: Incoming, text: string) => Promise<Reply> {
  async function inner(outer: Incoming, r: Item): Promise<Record<string, unknown>> {
    const url = `/v1.0${r.url as string}`;
    const mailbox = deps.mailboxOf(new URL(url, 'https://graph.invalid').pathname);
    const prefer = Object.entries(r.headers ?? {}).find(([k]) => k.toLowerCase() === 'prefer')?.[1];
    const now = (deps.inFlight.get(mailbox) ?? 0) + 1;
    deps.inFlight.set(mailbox, now);
    deps.maxInFlight.set(mailbox, Math.max(deps.maxInFlight.get(mailbox) ?? 0, now));
    try {
      if (now > deps.concurrency) {
        deps.requests.push({ at: performance.now(), method: String(r.method), path: url, query: {}, mailbox, status: 429, retryAfter: '1', inBatch: true });
        return { id: r.id, status: 429, headers: { 'Retry-After': '1', 'Content-Type': 'application/json' }, body: graphError(429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.').json };
      }
      const headers: IncomingHttpHeaders = { authorization: outer.headers.authorization, ...(typeof prefer === 'string' ? { prefer } : {}) };
      const { reply, scripted } = await deps.handle({ method: String(r.method).toUpperCase(), url, headers }, Buffer.from(r.body !== undefined ? JSON.stringify(r.body) : ''));
      let json = reply.json;
      if (scripted?.rewrite && json && typeof json === 'object') json = scripted.rewrite(json as Record<string, unknown>);
      const out: Record<string, string> = {};
      if (reply.headers?.['retry-after']) out['Retry-After'] = reply.headers['retry-after'];
      if (json !== undefined) out['Content-Type'] = 'application/json';
      return { id: r.id, status: reply.status, headers: out, ...(json !== undefined ? { body: json } : reply.bytes ? { body: reply.bytes.toString('base64') } : {}) };
    } finally {
      deps.inFlight.set(mailbox, (deps.inFlight.get(mailbox) ?? 1) - 1);
    }
  }

  return async function batch(outer: Incoming, text: string): Promise<Reply> {
    const list = parseBody(text).requests;
    if (!Array.isArray(list) || list.length === 0) return graphError(400, 'BadRequest', 'Invalid batch payload format.');
    if (list.length > 20) return graphError(400, 'BadRequest', 'Exceeded the maximum number of 20 requests allowed in a batch.');
    const items = list as Item[];
    const ids = new Set<string>();
    for (const r of items) {
      if (typeof r?.id !== 'string' || ids.has(r.id) || typeof r.method !== 'string' || typeof r.url !== 'string' || !r.url.startsWith('/')) {
        return graphError(400, 'BadRequest', 'Each request of a batch needs a unique id, a method and a relative url.');
      }
      ids.add(r.id);
    }
    const responses: Record<string, unknown>[] = new Array(items.length);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const i = next++;
        responses[i] = await inner(outer, items[i]!);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    return { status: 200, json: { responses } };
  };
}
