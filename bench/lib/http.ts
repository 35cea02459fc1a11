// A minimal keep-alive HTTP/1.1 JSON client for the benchmark (node:http, no dependency), so that the
// client's own overhead stays small and the same for every call. Only 127.0.0.1 is ever used.
import http from 'node:http';

export interface HttpResponse {
  status: number;
  text: string;
  /** Wall time of the exchange in milliseconds. */
  ms: number;
}

export class HttpClient {
  readonly #agent: http.Agent;
  readonly #port: number;
  readonly #timeoutMs: number;
  readonly #headers: Record<string, string>;

  constructor(port: number, opts: { maxSockets?: number; timeoutMs?: number; headers?: Record<string, string> } = {}) {
    this.#port = port;
    this.#headers = opts.headers ?? {};
    this.#timeoutMs = opts.timeoutMs ?? 60_000;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 1, maxFreeSockets: opts.maxSockets ?? 1 });
  }

  request(method: string, path: string, body?: unknown): Promise<HttpResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: this.#port,
          method,
          path,
          agent: this.#agent,
          headers: payload ? { ...this.#headers, 'content-type': 'application/json', 'content-length': payload.length } : this.#headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
          res.on('error', reject);
        },
      );
      req.setTimeout(this.#timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer within ${this.#timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Sends the request and fails unless the status is one of `expect`. */
  async expect(method: string, path: string, expect: number[], body?: unknown): Promise<HttpResponse> {
    const res = await this.request(method, path, body);
    if (!expect.includes(res.status)) {
      throw new Error(`${method} ${path} answered ${res.status} (expected ${expect.join('/')}): ${res.text.slice(0, 500)}`);
    }
    return res;
  }

  close(): void {
    this.#agent.destroy();
  }
}
