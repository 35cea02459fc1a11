import type { IncomingHttpHeaders } from 'node:http';
import { request, type Agent } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';

/** One answer of Microsoft Graph: the status, the headers and the JSON body (undefined when it was not JSON). */
export interface GraphAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: unknown;
}

const MAX_BODY = 1_048_576;

/** A lookup that answers with the address the outbound policy approved, so a second DNS answer cannot swap it. */
function pinned(address: string): LookupFunction {
  const family = isIP(address);
  return (_hostname, options, callback) => {
    if (options.all) (callback as (err: null, all: { address: string; family: number }[]) => void)(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

/**
 * GET one Graph URL with a bearer token over `agent` (our trust, TLS 1.2+), connecting to `address`
 * while the certificate is still verified against the URL's host name. Rejects with Node's error
 * (code ECONNREFUSED, ETIMEDOUT, a TLS code...) when no answer came within `timeoutMs`.
 */
export function graphGet(agent: Agent, url: URL, address: string, token: string, timeoutMs: number, requestId: string): Promise<GraphAnswer> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const req = request(
      url,
      {
        method: 'GET',
        agent,
        lookup: pinned(address),
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          'user-agent': 'mail-session-broker',
          // Graph echoes it in its answers and logs: lets an administrator find our request in Microsoft's traces
          'client-request-id': requestId,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY) req.destroy(Object.assign(new Error('Graph answer too large'), { code: 'EMSGSIZE' }));
          else chunks.push(chunk);
        });
        res.on('error', fail);
        res.on('end', () => {
          clearTimeout(timer);
          let body: unknown;
          try {
            // a gateway in front of Graph may answer 502/503 with HTML: the status still says what happened
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      },
    );
    function fail(err: Error): void {
      clearTimeout(timer);
      reject(err);
    }
    // a deadline for the whole exchange, not only for an idle socket: a trickling answer cannot hold the session
    timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
    req.on('error', fail);
    req.end();
  });
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
