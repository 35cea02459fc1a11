import type { LookupFunction } from 'node:net';
import { Agent, request } from 'node:https';
import type { SecureContext } from 'node:tls';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { pinnedLookup } from '../net/pinned-lookup.js';

/** The last transport failure seen, kept because MSAL reports a failed discovery only as "endpoints_resolution_error". */
export interface TransportFailure {
  code?: string;
  message: string;
  at: number;
  /** The error itself when it is already one of ours (e.g. the outbound policy refused the host). */
  error?: unknown;
}

/** Checks a destination and returns the address to connect to (the outbound policy). */
export type DestinationGuard = (host: string, port: number) => Promise<string>;

const MAX_BODY = 1_048_576;

function hasOAuthError(body: unknown): boolean {
  return typeof body === 'object' && body !== null && typeof (body as { error?: unknown }).error === 'string' && (body as { error: string }).error !== '';
}

/**
 * MSAL's HTTP client over node:https with our trust (Node's roots + MSB_EXTRA_CA_FILE) and a deadline.
 * MSAL's own client uses fetch, which cannot take a per-client CA; this one never turns verification off.
 */
export class HttpsNetworkClient implements INetworkModule {
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #guard: DestinationGuard | undefined;
  lastFailure: TransportFailure | undefined;

  /** `guard`: for an identity provider a caller named, every request first passes the outbound policy. */
  constructor(secureContext: SecureContext, timeoutMs: number, guard?: DestinationGuard) {
    this.#agent = new Agent({ keepAlive: true, maxSockets: 16, secureContext, minVersion: 'TLSv1.2' });
    this.#timeoutMs = timeoutMs;
    this.#guard = guard;
  }

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return this.#send<T>('GET', url, options, timeout);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.#send<T>('POST', url, options);
  }

  close(): void {
    this.#agent.destroy();
  }

  async #send<T>(method: string, url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    let lookup: LookupFunction | undefined;
    if (this.#guard) {
      const target = new URL(url);
      try {
        lookup = pinnedLookup(await this.#guard(target.hostname, Number(target.port || 443)));
      } catch (err) {
        this.lastFailure = { message: err instanceof Error ? err.message : String(err), at: Date.now(), error: err };
        throw err;
      }
    }
    return this.#request<T>(method, url, options, timeout, lookup);
  }

  #request<T>(method: string, url: string, options: NetworkRequestOptions | undefined, timeout: number | undefined, lookup: LookupFunction | undefined): Promise<NetworkResponse<T>> {
    const deadline = Math.min(timeout ?? this.#timeoutMs, this.#timeoutMs);
    return new Promise((resolve, reject) => {
      // the first failure is the reason: after a destroy (answer too large, deadline) Node also reports the
      // abort (ECONNRESET), which must not replace it
      let failed = false;
      const fail = (err: NodeJS.ErrnoException) => {
        if (failed) return;
        failed = true;
        this.lastFailure = { ...(err.code ? { code: err.code } : {}), message: err.message, at: Date.now() };
        reject(err);
      };
      const req = request(url, { method, agent: this.#agent, headers: options?.headers ?? {}, timeout: deadline, ...(lookup ? { lookup } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY) req.destroy(Object.assign(new Error('identity provider answer too large'), { code: 'EMSGSIZE' }));
          else chunks.push(chunk);
        });
        res.on('error', fail);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : {};
          } catch {
            body = undefined;
          }
          if (status >= 200 && status <= 299 && body === undefined) {
            fail(Object.assign(new Error(`identity provider answered HTTP ${status} with a body that is not JSON`), { code: 'EBADRESPONSE' }));
            return;
          }
          // MSAL reads the body, not the status: a 5xx with an empty body would pass as a token answer
          // without a token (and a resource would then get an empty bearer). An error answer that does not
          // say what went wrong (no body, not JSON, no `error`) is given an RFC 6749 error saying so.
          if ((status < 200 || status > 299) && !hasOAuthError(body)) {
            body = { error: `http_${status}`, error_description: `the identity provider answered HTTP ${status} without an OAuth2 error` };
          }
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
          }
          resolve({ headers, body: body as T, status });
        });
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${deadline} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', fail);
      req.end(options?.body);
    });
  }
}
