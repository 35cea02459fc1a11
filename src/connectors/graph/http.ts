import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { request, type Agent } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';

/** One answer of Microsoft Graph: the status, the headers and the JSON body (undefined when it was not JSON). */
export interface GraphAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: unknown;
  /** The body was larger than the request's maxBytes: it was not read (body is undefined). */
  tooLarge?: boolean;
}

/** An answer whose body is handed over unread (a 2xx of a streaming request). */
export interface GraphStreamAnswer extends GraphAnswer {
  stream?: IncomingMessage;
}

export type GraphMethod = 'GET' | 'PATCH' | 'POST' | 'DELETE' | 'PUT';

export interface GraphRequest {
  method: GraphMethod;
  url: URL;
  /** The address the outbound policy approved; the certificate is still checked against the URL's host. */
  address: string;
  /** Bearer token; absent for a pre-authenticated URL (an attachment upload session), which must get none. */
  token?: string;
  /** Until the whole JSON answer is read; for a stream, until its headers arrived. */
  timeoutMs: number;
  requestId: string;
  /** Prefer header values, sent as one header line each (as Graph's documentation shows them). */
  prefer: readonly string[];
  /** A JSON body (PATCH, POST), or bytes sent as they are (an upload chunk, with `headers`). */
  body?: unknown;
  /** More request headers (Content-Range of an upload chunk). */
  headers?: Record<string, string>;
  /** Most bytes of a JSON answer read; a larger one resolves with tooLarge. */
  maxBytes: number;
}

/** Error bodies of streaming requests are read up to this (Graph's error objects are small). */
const MAX_ERROR_BODY = 65_536;

/** A lookup that answers with the address the outbound policy approved, so a second DNS answer cannot swap it. */
function pinned(address: string): LookupFunction {
  const family = isIP(address);
  return (_hostname, options, callback) => {
    if (options.all) (callback as (err: null, all: { address: string; family: number }[]) => void)(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

function parseJson(chunks: Buffer[]): unknown {
  try {
    // a gateway in front of Graph may answer 502/503 with HTML: the status still says what happened
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

function failure(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * Sends one request over `agent` (our trust, TLS 1.2+) and, for a JSON request, reads the whole answer
 * within `timeoutMs` (a deadline for the whole exchange, not only for an idle socket: a trickling answer
 * cannot hold the session). With `stream`, a 2xx answer resolves as soon as its headers arrived, with the
 * body unread; the caller owns it from then on. Rejects with Node's error (code ECONNREFUSED, ETIMEDOUT,
 * ECONNRESET for an answer cut short, a TLS code...) when no complete answer came.
 */
function exchange(agent: Agent, req: GraphRequest, stream: boolean): Promise<GraphStreamAnswer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const raw = Buffer.isBuffer(req.body);
    const payload = req.body === undefined ? undefined : raw ? (req.body as Buffer) : Buffer.from(JSON.stringify(req.body), 'utf8');
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const outgoing = request(
      req.url,
      {
        method: req.method,
        agent,
        lookup: pinned(req.address),
        headers: {
          ...(req.token !== undefined ? { authorization: `Bearer ${req.token}` } : {}),
          accept: 'application/json',
          'user-agent': 'mail-session-broker',
          // Graph echoes it in its answers and logs: lets an administrator find our request in Microsoft's traces
          'client-request-id': req.requestId,
          prefer: [...req.prefer],
          // Graph wants Content-Length on every POST, also an empty one (an action without parameters)
          ...(req.method === 'POST' || req.method === 'PUT' || payload ? { 'content-length': String(payload?.length ?? 0) } : {}),
          ...(payload ? { 'content-type': raw ? 'application/octet-stream' : 'application/json' } : {}),
          ...req.headers,
        },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (stream && status >= 200 && status < 300) {
          settle(() => resolve({ status, headers: res.headers, body: undefined, stream: res }));
          return;
        }
        const limit = stream ? MAX_ERROR_BODY : req.maxBytes;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= limit) {
            chunks.push(chunk);
            return;
          }
          // answered, not failed: the caller decides what a body too large means (a truncated message, a problem)
          settle(() => resolve({ status, headers: res.headers, body: undefined, tooLarge: true }));
          outgoing.destroy();
        });
        res.on('end', () => settle(() => resolve({ status, headers: res.headers, body: parseJson(chunks) })));
        // the connection closed before the answer was complete (truncated JSON is not a valid answer)
        res.on('close', () => settle(() => reject(failure('ECONNRESET', 'the answer was cut short'))));
        res.on('error', (err) => settle(() => reject(err)));
      },
    );
    const timer = setTimeout(() => outgoing.destroy(failure('ETIMEDOUT', `no answer within ${req.timeoutMs} ms`)), req.timeoutMs);
    outgoing.on('error', (err) => settle(() => reject(err)));
    outgoing.end(payload);
  });
}

/** One Graph request whose JSON answer is read whole (at most `maxBytes`). */
export function graphCall(agent: Agent, req: GraphRequest): Promise<GraphAnswer> {
  return exchange(agent, req, false);
}

/** One Graph request whose 2xx body is streamed (`/$value`); other answers are read as JSON errors. */
export function graphOpen(agent: Agent, req: GraphRequest): Promise<GraphStreamAnswer> {
  return exchange(agent, req, true);
}

/** Retry-After as milliseconds: delay-seconds or an HTTP date (RFC 9110); undefined when absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d{1,9}$/.test(text)) return Number(text) * 1000;
  // an HTTP date names its day and month; Date.parse would also read "-1" or "2026" as dates
  const at = /^[A-Za-z]{3},/.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Graph's error object: { error: { code, message } }. */
export function graphError(body: unknown): { code?: string; message?: string } {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return {
    ...(typeof error?.code === 'string' ? { code: error.code.slice(0, 100) } : {}),
    ...(typeof error?.message === 'string' ? { message: error.message } : {}),
  };
}
