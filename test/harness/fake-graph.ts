// A local HTTPS stand-in for the few Microsoft Graph calls the outlook session type makes:
// GET /v1.0/me/mailFolders/inbox and GET /v1.0/users/{id}/mailFolders/inbox, answering the folder's
// totalItemCount / unreadItemCount like Graph does. Bearer tokens are checked against the fake
// identity provider (its principal()), and their `scp` claim like Graph checks permissions: delegated
// tokens need Mail.Read (Mail.Read.Shared for another user's mailbox, which that user must have
// shared), app-only tokens a /.default scope and a /users/{id} path. Error answers have Graph's shape
// ({ error: { code, message } }); tests can queue scripted answers (401/403/404/429 with Retry-After,
// 5xx) and revoke tokens. Every request is recorded with its arrival time (performance.now()).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { makeCerts } from './certs.js';
import type { TokenPrincipal } from './fake-ews.js';

export interface InboxCounts {
  total: number;
  unread: number;
}

/** One answer to give instead of the normal one, used once, in order. */
export interface ScriptedAnswer {
  status: number;
  /** Retry-After header value (seconds, or an HTTP date). */
  retryAfter?: string;
  code?: string;
  message?: string;
  /** A body that is not JSON (what a gateway in front of Graph may send). */
  html?: boolean;
}

export interface GraphRequestRecord {
  /** performance.now() when the request arrived. */
  at: number;
  path: string;
  /** "me" or the {id} of /users/{id}. */
  mailbox: string;
  token?: string;
  /** The token's user, or "app". */
  principal?: string;
  scope?: string;
  clientRequestId?: string;
  status: number;
  retryAfter?: string;
}

export interface FakeGraph {
  /** host:port, what MSB_GRAPH_HOST takes. */
  host: string;
  port: number;
  origin: string;
  requests: GraphRequestRecord[];
  /** Inbox counts by lower-case mailbox address. */
  mailboxes: Record<string, InboxCounts>;
  /** Answers to give before the normal ones. */
  script: ScriptedAnswer[];
  /** Tokens answered 401 although the identity provider still knows them (revoked). */
  revoked: Set<string>;
  close(): Promise<void>;
}

export interface FakeGraphOptions {
  verifyToken: (token: string) => TokenPrincipal | undefined;
  mailboxes: Record<string, InboxCounts>;
  /** Mailbox -> the users it is shared with (what Mail.Read.Shared may open). */
  shared?: Record<string, string[]>;
}

/** The `scp` claim of the fake identity provider's JWT access tokens. */
function scopeOf(token: string): string {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { scp?: unknown };
    return typeof claims.scp === 'string' ? claims.scp : '';
  } catch {
    return '';
  }
}

const INBOX = /^\/v1\.0\/(?:me|users\/([^/]+))\/mailFolders\/inbox$/i;

/** Starts the fake on a free loopback port with a certificate signed by the test CA (makeCerts). */
export async function startFakeGraph(options: FakeGraphOptions): Promise<FakeGraph> {
  const certs = await makeCerts();
  const requests: GraphRequestRecord[] = [];
  const script: ScriptedAnswer[] = [];
  const revoked = new Set<string>();
  const mailboxes = Object.fromEntries(Object.entries(options.mailboxes).map(([k, v]) => [k.toLowerCase(), v]));
  const shared = Object.fromEntries(Object.entries(options.shared ?? {}).map(([k, v]) => [k.toLowerCase(), v.map((u) => u.toLowerCase())]));

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://graph.invalid');
    const match = INBOX.exec(url.pathname);
    const record: GraphRequestRecord = { at: performance.now(), path: url.pathname, mailbox: match?.[1] ? decodeURIComponent(match[1]).toLowerCase() : 'me', status: 0 };
    requests.push(record);
    const requestId = req.headers['client-request-id'];
    if (typeof requestId === 'string') record.clientRequestId = requestId;
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      if (headers['retry-after']) record.retryAfter = headers['retry-after'];
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': randomUUID(), ...headers }).end(JSON.stringify(body));
    };
    const fail = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
      send(status, { error: { code, message, innerError: { date: new Date().toISOString(), 'request-id': randomUUID() } } }, headers);

    const authorization = req.headers.authorization ?? '';
    if (!authorization.startsWith('Bearer ')) return fail(401, 'InvalidAuthenticationToken', 'Access token is empty.');
    const token = authorization.slice(7);
    record.token = token;
    record.scope = scopeOf(token);
    const principal = options.verifyToken(token);
    if (principal) record.principal = principal.user ?? 'app';

    const scripted = script.shift();
    if (scripted) {
      const headers: Record<string, string> = scripted.retryAfter !== undefined ? { 'retry-after': scripted.retryAfter } : {};
      if (scripted.html) {
        record.status = scripted.status;
        res.writeHead(scripted.status, { 'content-type': 'text/html', ...headers }).end('<html><body>Service Unavailable</body></html>');
        return;
      }
      return fail(scripted.status, scripted.code ?? `Scripted${scripted.status}`, scripted.message ?? 'The fake was told to answer this.', headers);
    }
    if (!principal || revoked.has(token)) return fail(401, 'InvalidAuthenticationToken', 'Access token has expired or is not yet valid.');
    if (req.method !== 'GET' || !match) return fail(404, 'UnknownError', 'The fake answers GET .../mailFolders/inbox only.');

    let mailbox: string;
    if (principal.appOnly) {
      if (!record.scope.endsWith('/.default')) return fail(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
      if (!match[1]) return fail(400, 'BadRequest', '/me request is only valid with delegated authentication flow.');
      mailbox = record.mailbox;
    } else {
      const user = principal.user!.toLowerCase();
      mailbox = match[1] ? record.mailbox : user;
      const own = mailbox === user;
      const needed = own ? /\/Mail\.Read(\.Shared)?(\s|$)/ : /\/Mail\.Read\.Shared(\s|$)/;
      if (!needed.test(record.scope)) return fail(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
      if (!own && mailboxes[mailbox] && !shared[mailbox]?.includes(user)) return fail(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
    }
    const counts = mailboxes[mailbox];
    if (!counts) return fail(404, 'ErrorInvalidUser', `The requested user '${mailbox}' is invalid.`);
    send(200, {
      '@odata.context': `https://graph.microsoft.com/v1.0/$metadata#users('${mailbox}')/mailFolders(displayName,totalItemCount,unreadItemCount)/$entity`,
      id: 'AAMkAGInbox',
      displayName: 'Inbox',
      totalItemCount: counts.total,
      unreadItemCount: counts.unread,
    });
  }

  const server: Server = createServer({ key: certs.keyPem, cert: certs.certPem }, (req, res) => {
    req.resume();
    req.on('end', () => handle(req, res));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    port,
    origin: `https://127.0.0.1:${port}`,
    requests,
    mailboxes,
    script,
    revoked,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
