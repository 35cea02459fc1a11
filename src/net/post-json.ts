import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pinnedLookup } from './pinned-lookup.js';
import type { SecureContext } from 'node:tls';

/**
 * POSTs `body` to `url`, connecting to `address` (already checked by the outbound policy; TLS still
 * verifies the URL's host name), and resolves with the status code. The whole exchange has a deadline;
 * the answer's body is read and dropped (at most 64 KiB), so a receiver cannot hold memory.
 */
export function postJson(
  url: URL,
  address: string,
  body: string,
  headers: Record<string, string>,
  options: { timeoutMs: number; secureContext?: SecureContext },
): Promise<number> {
  const { timeoutMs } = options;
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method: 'POST',
        lookup: pinnedLookup(address),
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
        minVersion: 'TLSv1.2',
        ...(options.secureContext ? { secureContext: options.secureContext } : {}),
        // a fresh connection per delivery: no pooled socket outlives the policy check that allowed it
        agent: false,
      },
      (res) => {
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > 65_536) res.destroy();
        });
        res.on('error', () => {});
        res.on('close', () => {
          clearTimeout(timer);
          resolve(res.statusCode ?? 0);
        });
      },
    );
    const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}
