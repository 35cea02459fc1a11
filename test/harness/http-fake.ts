// The plumbing every local HTTP(S) fake shares (identity provider, generic token endpoint, introspection,
// EWS, Graph): reading a body, listening on a free loopback port, closing with open keep-alive sockets, and
// the ledger of access tokens a token endpoint issued, which the resource fakes ask about.
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export function readText(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** An application/x-www-form-urlencoded body (token and introspection requests, sign-in forms). */
export async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new URLSearchParams(await readText(req));
}

/** Listens on a free port of 127.0.0.1; resolves the port. */
export function listenLoopback(server: HttpServer | HttpsServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Closes the server and every connection (the service's keep-alive sockets would hold it open). */
export function closeServer(server: HttpServer | HttpsServer): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** Access tokens a fake issued, each with what it grants and when it expires. */
export class TokenLedger<G> {
  /** Every token issued (for the leak checks). */
  readonly issued: string[] = [];
  readonly #tokens = new Map<string, { grant: G; expiresAt: number }>();

  /** Records `token` as valid for `lifetimeSeconds`; returns it. */
  issue(token: string, grant: G, lifetimeSeconds: number): string {
    this.#tokens.set(token, { grant, expiresAt: Date.now() + lifetimeSeconds * 1000 });
    this.issued.push(token);
    return token;
  }

  /** What an unexpired token grants, or undefined for an unknown or expired one. */
  lookup(token: string): G | undefined {
    const entry = this.#tokens.get(token);
    return entry && entry.expiresAt > Date.now() ? entry.grant : undefined;
  }
}
