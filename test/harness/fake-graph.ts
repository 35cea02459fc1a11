// A local HTTPS stand-in for the Microsoft Graph mail API the outlook session type uses, speaking its
// wire format: /v1.0/me/... and /v1.0/users/{id}/... for mailFolders (well-known names, childFolders),
// a folder's messages with $filter / $orderby (and Graph's InefficientFilter rule for the two together),
// $top, $select, $expand and @odata.nextLink paging, one message (GET, PATCH), its /$value (MIME), and
// its attachments and their /$value; the changes (PATCH isRead / flag / categories, POST .../move,
// DELETE, POST .../permanentDelete), sending (sendMail, drafts, reply / replyAll / forward and their
// create* drafts, attachments and upload sessions: fake-graph-actions.ts), the delta query on a folder
// (fake-graph-delta.ts), and JSON batching (fake-graph-batch.ts).
// Mailboxes hold folders and messages seeded from MIME (fake-graph-mailbox.ts). Bearer tokens are checked against the fake identity provider (principal())
// and their `scp` claim like Graph checks permissions: delegated tokens need Mail.Read or Mail.ReadWrite
// (the .Shared ones for another user's mailbox, which that user must have shared; changes need
// ReadWrite, sending Mail.Send), app-only tokens a /.default scope and a /users/{id} path. More than 4 requests in flight
// for one mailbox are answered 429 MailboxConcurrency, as Graph does. Error answers have Graph's shape;
// tests can queue scripted answers (errors with Retry-After, non-JSON, truncated, rewritten bodies) and
// revoke tokens. Every request is recorded with its arrival time (performance.now()).
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeCerts } from './certs.js';
import type { TokenPrincipal } from './fake-ews.js';
import { addAttachment, createDraft, createUploadSession, deleteMessage, messageAction, permissionOf, sendMail, uploadChunk, type ActionContext, type UploadSession } from './fake-graph-actions.js';
import type { SentRecord } from './fake-graph-compose.js';
import { batchRunner, type Incoming } from './fake-graph-batch.js';
import { DeltaStates } from './fake-graph-delta.js';
import { attachmentJson, folderJson, graphError, messageJson, ODataError, parseBody, splitTop, type Reply, type Representation } from './fake-graph-json.js';
import { FakeMailbox, type FakeMessage } from './fake-graph-mailbox.js';
import { checkOrderBy, FilterError, matches, parseFilter } from './odata-filter.js';

export { FakeMailbox } from './fake-graph-mailbox.js';

export interface InboxCounts {
  total: number;
  unread: number;
}

/** One answer to give instead of the normal one, used once, for the first request it matches. */
export interface ScriptedAnswer {
  /** Only a request whose "METHOD /path?query" matches (default: any). */
  match?: RegExp;
  /** An error answer with this status (and Graph's error object), unless raw / truncate / rewrite say otherwise. */
  status?: number;
  /** Retry-After header value (seconds, or an HTTP date). */
  retryAfter?: string;
  code?: string;
  message?: string;
  /** A body that is not JSON (what a gateway in front of Graph may send). */
  html?: boolean;
  /** This body as-is, with `status` (default 200). */
  raw?: string;
  /** The normal answer, but the connection closes after half of its body. */
  truncate?: boolean;
  /** The normal JSON answer, changed (e.g. its @odata.nextLink pointed elsewhere). */
  rewrite?: (body: Record<string, unknown>) => Record<string, unknown>;
}

export interface GraphRequestRecord {
  /** performance.now() when the request arrived. */
  at: number;
  method: string;
  path: string;
  /** The query string, decoded (for assertions on $filter and friends). */
  query: Record<string, string>;
  /** The Prefer header as received (several lines joined by ", "). */
  prefer?: string;
  /** "me" or the {id} of /users/{id}. (path is percent-decoded.) */
  mailbox: string;
  token?: string;
  /** The token's user, or "app". */
  principal?: string;
  scope?: string;
  clientRequestId?: string;
  status: number;
  retryAfter?: string;
  /** The JSON request body, when there was one. */
  body?: unknown;
  /** A request that came inside a JSON batch (the batch itself is recorded too). */
  inBatch?: boolean;
}

export interface FakeGraph {
  /** host:port, what MSB_GRAPH_HOST takes. */
  host: string;
  port: number;
  origin: string;
  requests: GraphRequestRecord[];
  /** The mailbox of an address (lower case), with its folders and messages. */
  mailbox(address: string): FakeMailbox;
  /** Answers to give before the normal ones. */
  script: ScriptedAnswer[];
  /** Tokens answered 401 although the identity provider still knows them (revoked). */
  revoked: Set<string>;
  /** Added before every answer, so that requests overlap (for the concurrency limit). */
  latencyMs: number;
  /** The most requests that were in flight at once, per mailbox. */
  maxInFlight: Map<string, number>;
  /** Every message sent (sendMail, a draft's send, reply, replyAll, forward), with its request body. */
  sent: SentRecord[];
  /** Forgets every delta state handed out: the next delta request with one answers 410. */
  expireDeltaTokens(): void;
  close(): Promise<void>;
}

export interface FakeGraphOptions {
  verifyToken: (token: string) => TokenPrincipal | undefined;
  /** Mailboxes by address, with the Inbox items the fake does not model (added to its counts). */
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

/** A path as its segments read (percent-decoded), for assertions and scripted matches. */
function decoded(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

const MAILBOX_PATH = /^\/v1\.0\/(?:me|users\/([^/]+))(\/.*)$/i;
const CONCURRENCY = 4;

const error = graphError;
const notFound = () => error(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');

/** Starts the fake on a free loopback port with a certificate signed by the test CA (makeCerts). */
export async function startFakeGraph(options: FakeGraphOptions): Promise<FakeGraph> {
  const certs = await makeCerts();
  const requests: GraphRequestRecord[] = [];
  const script: ScriptedAnswer[] = [];
  const revoked = new Set<string>();
  const inFlight = new Map<string, number>();
  const maxInFlight = new Map<string, number>();
  const boxes = new Map(Object.entries(options.mailboxes).map(([k, v]) => [k.toLowerCase(), new FakeMailbox(k.toLowerCase(), v)]));
  const sent: SentRecord[] = [];
  const uploads = new Map<string, UploadSession>();
  const delta = new DeltaStates();
  const shared = Object.fromEntries(Object.entries(options.shared ?? {}).map(([k, v]) => [k.toLowerCase(), v.map((u) => u.toLowerCase())]));
  let origin = '';
  const fake = { latencyMs: 0 };

  /** Who may do what: the mailbox the token opens, or the error Graph gives. */
  function authorize(principal: TokenPrincipal, scope: string, pathUser: string | undefined, need: 'read' | 'write' | 'send'): string | Reply {
    if (principal.appOnly) {
      if (!scope.endsWith('/.default')) return error(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
      if (!pathUser) return error(400, 'BadRequest', '/me request is only valid with delegated authentication flow.');
      return pathUser;
    }
    const user = principal.user!.toLowerCase();
    const mailbox = pathUser ?? user;
    const own = mailbox === user;
    const verbs = need === 'send' ? 'Send' : need === 'write' ? 'ReadWrite' : '(?:Read|ReadWrite)';
    const needed = new RegExp(own ? `/Mail\\.${verbs}(\\.Shared)?(\\s|$)` : `/Mail\\.${verbs}\\.Shared(\\s|$)`);
    if (!needed.test(scope)) return error(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
    if (!own && boxes.has(mailbox) && !shared[mailbox]?.includes(user)) return error(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
    return mailbox;
  }

  async function route(method: string, rest: string, url: URL, mb: FakeMailbox, rep: Representation, body: string, prefer: string): Promise<Reply> {
    const q = (name: string) => url.searchParams.get(name) ?? undefined;
    const select = q('$select') ? splitTop(q('$select')!) : undefined;
    const parts = rest.split('/').filter(Boolean).map(decodeURIComponent);
    const ctx: ActionContext = { mb, boxes, rep, origin, sent, uploads };
    if (parts[0]?.toLowerCase() === 'mailfolders') return folders(method, parts.slice(1), url, mb, rep, select, prefer);
    if (parts.length === 1 && parts[0]?.toLowerCase() === 'sendmail' && method === 'POST') return sendMail(ctx, body);
    if (parts.length === 1 && parts[0]?.toLowerCase() === 'messages' && method === 'POST') return createDraft(ctx, body);
    if (parts[0]?.toLowerCase() !== 'messages' || !parts[1]) return error(400, 'BadRequest', `Resource not found for the segment '${parts[0] ?? ''}'.`);
    if (!/^[A-Za-z0-9_=-]+$/.test(parts[1])) return error(400, 'ErrorInvalidIdMalformed', 'Id is malformed.');
    const m = mb.find(parts[1]);
    if (!m) return notFound();
    if (parts.length === 2 && method === 'GET') return { status: 200, json: messageJson(mb, m, rep, select, q('$expand')) };
    if (parts.length === 2 && method === 'PATCH') {
      const change = parseBody(body) as { isRead?: unknown; flag?: { flagStatus?: unknown }; categories?: unknown };
      if (change.flag !== undefined && !['flagged', 'notFlagged', 'complete'].includes(String(change.flag?.flagStatus))) {
        return error(400, 'RequestBodyRead', `The value '${String(change.flag?.flagStatus)}' is not a valid followupFlagStatus.`);
      }
      if (change.categories !== undefined && !(Array.isArray(change.categories) && change.categories.every((c) => typeof c === 'string'))) {
        return error(400, 'RequestBodyRead', 'categories must be a list of strings.');
      }
      if (typeof change.isRead === 'boolean') m.isRead = change.isRead;
      if (typeof change.flag?.flagStatus === 'string') m.flagged = change.flag.flagStatus === 'flagged';
      if (Array.isArray(change.categories)) m.categories = [...(change.categories as string[])];
      mb.touch(m);
      return { status: 200, json: messageJson(mb, m, rep) };
    }
    if (parts.length === 2 && method === 'DELETE') return deleteMessage(ctx, m);
    if (parts.length === 3 && parts[2] === '$value' && method === 'GET') return { status: 200, headers: { 'content-type': 'text/plain' }, bytes: m.mime };
    if (parts[2] === 'attachments' && method === 'GET') return attachments(parts.slice(3), m, select);
    if (parts[2] === 'attachments' && method === 'POST' && parts.length === 3) return addAttachment(ctx, m, body);
    if (parts[2] === 'attachments' && method === 'POST' && parts.length === 4 && parts[3]!.toLowerCase() === 'createuploadsession') return createUploadSession(ctx, m, body);
    if (parts.length === 3 && method === 'POST') return messageAction(ctx, m, parts[2]!, body);
    return error(405, 'ErrorInvalidRequest', 'The OData request is not supported.');
  }

  function attachments(parts: string[], m: FakeMessage, select: string[] | undefined): Reply {
    if (parts.length === 0) return { status: 200, json: { value: m.attachments.map((a) => attachmentJson(a, select)) } };
    if (!/^[A-Za-z0-9_=-]+$/.test(parts[0]!)) return error(400, 'ErrorInvalidIdMalformed', 'Id is malformed.');
    const a = m.attachments.find((x) => x.id === parts[0]);
    if (!a) return notFound();
    if (parts.length === 1) return { status: 200, json: attachmentJson(a, select) };
    if (parts[1] !== '$value') return error(400, 'BadRequest', `Resource not found for the segment '${parts[1]}'.`);
    if (a.kind === 'reference') return error(405, 'ErrorInvalidRequest', 'The $value of a reference attachment is not supported.');
    return { status: 200, headers: { 'content-type': a.contentType ?? 'message/rfc822' }, bytes: a.bytes };
  }

  /** A page of `items` at $skip / $top, with an @odata.nextLink carrying every parameter and the next $skip. */
  function page<T>(url: URL, items: T[], defaultTop: number): { value: T[]; '@odata.nextLink'?: string } | Reply {
    const top = Number(url.searchParams.get('$top') ?? defaultTop);
    const skip = Number(url.searchParams.get('$skip') ?? 0);
    if (!Number.isInteger(top) || top < 1 || top > 1000) return error(400, 'ErrorInvalidUrlQuery', `The value of $top must be between 1 and 1000.`);
    if (!Number.isInteger(skip) || skip < 0) return error(400, 'ErrorInvalidUrlQuery', 'Invalid value for $skip.');
    const value = items.slice(skip, skip + top);
    if (skip + top >= items.length) return { value };
    const next = new URL(url.pathname, origin);
    for (const [k, v] of url.searchParams) if (k !== '$skip') next.searchParams.append(k, v);
    next.searchParams.append('$skip', String(skip + top));
    return { value, '@odata.nextLink': next.toString() };
  }

  function folders(method: string, parts: string[], url: URL, mb: FakeMailbox, rep: Representation, select: string[] | undefined, prefer: string): Reply {
    if (method !== 'GET') return error(405, 'ErrorInvalidRequest', 'The OData request is not supported.');
    if (parts.length === 0) {
      const listed = page(url, mb.children(mb.rootId).map((f) => folderJson(mb, f, select)), 10);
      return 'status' in listed ? listed : { status: 200, json: listed };
    }
    const folder = mb.folder(parts[0]!);
    if (!folder) return /^[A-Za-z0-9_=-]+$/.test(parts[0]!) ? notFound() : error(400, 'ErrorInvalidIdMalformed', 'Id is malformed.');
    if (parts.length === 1) return { status: 200, json: folderJson(mb, folder, select) };
    if (parts[1]!.toLowerCase() === 'childfolders' && parts.length === 2) {
      const listed = page(url, mb.children(folder.id).map((f) => folderJson(mb, f, select)), 10);
      return 'status' in listed ? listed : { status: 200, json: listed };
    }
    if (parts[1]!.toLowerCase() === 'messages' && parts.length === 3 && parts[2]!.toLowerCase() === 'delta') return delta.answer(mb, folder.id, url, origin, rep, prefer);
    if (parts[1]!.toLowerCase() !== 'messages' || parts.length !== 2) return error(400, 'BadRequest', `Resource not found for the segment '${parts[1]}'.`);
    return listMessages(url, mb, folder.id, rep, select);
  }

  function listMessages(url: URL, mb: FakeMailbox, folderId: string, rep: Representation, select: string[] | undefined): Reply {
    const filterText = url.searchParams.get('$filter');
    const orderText = url.searchParams.get('$orderby');
    if (url.searchParams.has('$search') && (filterText || orderText)) {
      return error(400, 'ErrorInvalidUrlQuery', `The query parameter '${orderText ? '$orderBy' : '$filter'}' is not supported with '$search'.`);
    }
    let items = [...mb.messages.values()].filter((m) => m.folderId === folderId);
    const order = orderText ? /^\s*(\w+)(?:\s+(asc|desc))?\s*$/i.exec(orderText) : null;
    if (orderText && !order) return error(400, 'BadRequest', `Invalid $orderby clause '${orderText}'.`);
    if (filterText) {
      let tree;
      try {
        tree = parseFilter(filterText);
      } catch (err) {
        return error(400, 'BadRequest', err instanceof FilterError ? err.message : 'Invalid filter clause');
      }
      if (order && !checkOrderBy(tree, [order[1]!])) return error(400, 'InefficientFilter', 'The restriction or sort order is too complex for this operation.');
      items = items.filter((m) => matches(tree, messageJson(mb, m, rep)));
    }
    // Exchange's default order is newest first; ties keep the order of arrival
    const key = (order?.[1] ?? 'receivedDateTime').toLowerCase();
    if (key !== 'receiveddatetime' && key !== 'sentdatetime') return error(400, 'BadRequest', `The fake orders by receivedDateTime or sentDateTime only.`);
    const desc = order ? order[2]?.toLowerCase() === 'desc' : true;
    const value = (m: FakeMessage) => Date.parse(key === 'sentdatetime' ? m.sentDateTime : m.receivedDateTime);
    items.sort((a, b) => {
      const c = value(a) - value(b) || a.seq - b.seq;
      return desc ? -c : c;
    });
    const expand = url.searchParams.get('$expand') ?? undefined;
    let json;
    try {
      json = items.map((m) => messageJson(mb, m, rep, select, expand));
    } catch (err) {
      if (err instanceof ODataError) return error(err.status, err.code, err.message);
      throw err;
    }
    const listed = page(url, json, 10);
    return 'status' in listed ? listed : { status: 200, json: { '@odata.context': `${origin}/v1.0/$metadata#users('${mb.address}')/messages`, ...listed } };
  }

  async function handle(req: Incoming, raw: Buffer, inBatch: boolean): Promise<{ reply: Reply; scripted: ScriptedAnswer | undefined }> {
    const url = new URL(req.url, 'https://graph.invalid');
    const match = MAILBOX_PATH.exec(url.pathname);
    const prefer = req.headers.prefer;
    const upload = url.pathname.startsWith('/upload/');
    const text = upload ? '' : raw.toString('utf8');
    let body: unknown;
    try {
      body = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    const record: GraphRequestRecord = {
      at: performance.now(),
      method: req.method,
      path: decoded(url.pathname),
      query: Object.fromEntries(url.searchParams),
      ...(typeof prefer === 'string' ? { prefer } : {}),
      mailbox: match?.[1] ? decodeURIComponent(match[1]).toLowerCase() : 'me',
      status: 0,
      ...(body !== undefined ? { body } : {}),
      ...(inBatch ? { inBatch: true } : {}),
    };
    requests.push(record);
    const bearer = req.headers.authorization;
    if (upload && typeof bearer === 'string') record.token = bearer.replace(/^Bearer /, '');
    const requestId = req.headers['client-request-id'];
    if (typeof requestId === 'string') record.clientRequestId = requestId;
    const held: { scripted?: ScriptedAnswer } = {};
    let reply: Reply;
    try {
      reply = upload ? uploadChunk(uploads, url, req.headers, raw) : await answer(req, url, match, record, text, held);
    } catch (err) {
      if (!(err instanceof ODataError)) throw err;
      reply = error(err.status, err.code, err.message);
    }
    if (fake.latencyMs > 0) await sleep(fake.latencyMs);
    record.status = reply.status;
    if (reply.headers?.['retry-after']) record.retryAfter = reply.headers['retry-after'];
    return { reply, scripted: held.scripted };
  }

  async function answer(req: Incoming, url: URL, match: RegExpExecArray | null, record: GraphRequestRecord, body: string, held: { scripted?: ScriptedAnswer }): Promise<Reply> {
    const authorization = typeof req.headers.authorization === 'string' ? req.headers.authorization : '';
    if (!authorization.startsWith('Bearer ')) return error(401, 'InvalidAuthenticationToken', 'Access token is empty.');
    const token = authorization.slice(7);
    record.token = token;
    record.scope = scopeOf(token);
    const principal = options.verifyToken(token);
    if (principal) record.principal = principal.user ?? 'app';

    const line = `${record.method} ${record.path}${url.search}`;
    const at = script.findIndex((s) => !s.match || s.match.test(line));
    const scripted = at >= 0 ? script.splice(at, 1)[0] : undefined;
    if (scripted && !scripted.raw && !scripted.truncate && !scripted.rewrite) {
      const headers: Record<string, string> = scripted.retryAfter !== undefined ? { 'retry-after': scripted.retryAfter } : {};
      if (scripted.html) return { status: scripted.status ?? 503, headers: { ...headers, 'content-type': 'text/html' }, bytes: Buffer.from('<html><body>Service Unavailable</body></html>') };
      return error(scripted.status ?? 500, scripted.code ?? `Scripted${scripted.status}`, scripted.message ?? 'The fake was told to answer this.', headers);
    }
    if (scripted?.raw !== undefined) return { status: scripted.status ?? 200, headers: { 'content-type': 'application/json' }, bytes: Buffer.from(scripted.raw) };
    if (scripted) held.scripted = scripted;
    if (!principal || revoked.has(token)) return error(401, 'InvalidAuthenticationToken', 'Access token has expired or is not yet valid.');
    if (url.pathname === '/v1.0/$batch' && record.method === 'POST') return batch(req, body);
    if (!match) return error(400, 'BadRequest', 'Invalid version.');

    const parts = match[2]!.split('/').filter(Boolean);
    const mailbox = authorize(principal, record.scope, match[1] ? record.mailbox : undefined, permissionOf(record.method, parts));
    if (typeof mailbox !== 'string') return mailbox;
    const mb = boxes.get(mailbox);
    if (!mb) return error(404, 'ErrorInvalidUser', `The requested user '${mailbox}' is invalid.`);

    const tokens = (record.prefer ?? '').split(',').map((p) => p.trim());
    const bodyType = tokens.find((p) => /^outlook\.body-content-type=/i.test(p))?.split('=')[1]?.replaceAll('"', '').toLowerCase();
    const rep: Representation = { immutable: tokens.some((p) => /^IdType="?ImmutableId"?$/i.test(p)), ...(bodyType === 'text' || bodyType === 'html' ? { bodyType } : {}) };
    return route(record.method, match[2]!, url, mb, rep, body, record.prefer ?? '');
  }

  const batch = batchRunner({
    handle: (req, raw) => handle(req, raw, true),
    inFlight,
    maxInFlight,
    requests,
    concurrency: CONCURRENCY,
    mailboxOf: (path) => {
      const user = MAILBOX_PATH.exec(path)?.[1];
      return user ? decodeURIComponent(user).toLowerCase() : 'me';
    },
  });

  function write(res: ServerResponse, reply: Reply, scripted: ScriptedAnswer | undefined): void {
    let json = reply.json;
    if (scripted?.rewrite && json && typeof json === 'object') json = scripted.rewrite(json as Record<string, unknown>);
    const bytes = reply.bytes ?? (json === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(json)));
    const headers = { ...(bytes.length > 0 ? { 'content-type': 'application/json' } : {}), 'request-id': randomUUID(), ...reply.headers, 'content-length': String(bytes.length) };
    res.writeHead(reply.status, headers);
    if (scripted?.truncate) {
      res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => res.destroy());
      return;
    }
    // in pieces, as a large /$value arrives
    for (let i = 0; i < bytes.length; i += 65_536) res.write(bytes.subarray(i, i + 65_536));
    res.end();
  }

  const server: Server = createServer({ key: certs.keyPem, cert: certs.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'https://graph.invalid').pathname;
      const incoming = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
      const reply = () =>
        handle(incoming, Buffer.concat(chunks), false)
          .then(({ reply: r, scripted }) => write(res, r, scripted))
          .catch(() => res.destroy());
      // a batch is no mailbox request itself (the ones inside it are counted), nor is an upload chunk
      if (path === '/v1.0/$batch' || path.startsWith('/upload/')) return void reply();
      const user = MAILBOX_PATH.exec(path)?.[1];
      const mailbox = user ? decodeURIComponent(user).toLowerCase() : 'me';
      const now = (inFlight.get(mailbox) ?? 0) + 1;
      inFlight.set(mailbox, now);
      maxInFlight.set(mailbox, Math.max(maxInFlight.get(mailbox) ?? 0, now));
      res.once('close', () => inFlight.set(mailbox, (inFlight.get(mailbox) ?? 1) - 1));
      if (now > CONCURRENCY) {
        requests.push({ at: performance.now(), method: req.method ?? 'GET', path: decoded(path), query: {}, mailbox, status: 429, retryAfter: '1' });
        write(res, error(429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.', { 'retry-after': '1' }), undefined);
        return;
      }
      void reply();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  origin = `https://127.0.0.1:${port}`;
  return Object.assign(fake, {
    host: `127.0.0.1:${port}`,
    port,
    origin,
    requests,
    mailbox: (address: string) => boxes.get(address.toLowerCase())!,
    script,
    revoked,
    maxInFlight,
    sent,
    expireDeltaTokens: () => delta.expire(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
