// The fake Graph's delta query on a folder's messages (GET /mailFolders/{id}/messages/delta), as Graph
// v1.0 answers it: the first round lists the folder (only a `receivedDateTime ge|gt` $filter and
// $select are allowed; the page size comes from Prefer: odata.maxpagesize), pages through @odata.nextLink
// ($skiptoken) and ends with an @odata.deltaLink ($deltatoken); a later round with the deltatoken answers
// what changed since: messages created, moved in or updated (whole), and messages that left the folder
// as { id, "@removed": { reason } }. A state Graph no longer knows answers 410 SyncStateNotFound, which
// expire() provokes for every token handed out.
import { randomBytes } from 'node:crypto';
import { graphError, messageJson, splitTop, type Reply, type Representation } from './fake-graph-json.js';
import type { FakeMailbox } from './fake-graph-mailbox.js';

interface Scope {
  folderId: string;
  filter?: { op: 'ge' | 'gt'; at: number };
  select?: string[];
}

interface Page extends Scope {
  /** The entries still to hand out, as JSON. */
  remaining: Record<string, unknown>[];
  /** The change number the round started at: the next round reports what changed after it. */
  until: number;
}

export class DeltaStates {
  readonly #tokens = new Map<string, Scope & { since: number }>();
  readonly #pages = new Map<string, Page>();

  /** Every state handed out so far is forgotten: the next request with one answers 410. */
  expire(): void {
    this.#tokens.clear();
    this.#pages.clear();
  }

  /** One delta request on `folderId` of `mb`; `url` is the request's, `prefer` its Prefer header. */
  answer(mb: FakeMailbox, folderId: string, url: URL, origin: string, rep: Representation, prefer: string): Reply {
    const params = url.searchParams;
    if (params.has('$expand') || params.has('$search') || params.has('$top')) {
      return graphError(400, 'ErrorInvalidUrlQuery', 'The query parameter is not supported with delta: use $select, $filter on receivedDateTime, and Prefer: odata.maxpagesize.');
    }
    const size = Number(/odata\.maxpagesize=(\d+)/i.exec(prefer)?.[1] ?? 10);
    const base = `${origin}${url.pathname}`;
    const skip = params.get('$skiptoken');
    const token = params.get('$deltatoken');
    let page: Page;
    if (skip !== null) {
      const found = this.#pages.get(skip);
      if (!found) return gone();
      this.#pages.delete(skip);
      page = found;
    } else if (token !== null) {
      const state = this.#tokens.get(token);
      if (!state || state.folderId !== folderId) return gone();
      page = { ...state, remaining: this.#changes(mb, state, rep), until: mb.changeNumber };
    } else {
      const scope = parseScope(folderId, params);
      if (typeof scope === 'string') return graphError(400, 'ErrorInvalidUrlQueryFilter', scope);
      const items = [...mb.messages.values()].filter((m) => m.folderId === folderId && inScope(scope, m.receivedDateTime));
      items.sort((a, b) => Date.parse(b.receivedDateTime) - Date.parse(a.receivedDateTime) || b.seq - a.seq);
      page = { ...scope, remaining: items.map((m) => messageJson(mb, m, rep, scope.select)), until: mb.changeNumber };
    }
    const value = page.remaining.slice(0, size);
    const rest = page.remaining.slice(size);
    if (rest.length > 0) {
      const next = randomBytes(12).toString('base64url');
      this.#pages.set(next, { ...page, remaining: rest });
      return { status: 200, json: { value, '@odata.nextLink': `${base}?$skiptoken=${next}` } };
    }
    const delta = randomBytes(12).toString('base64url');
    this.#tokens.set(delta, { folderId: page.folderId, ...(page.filter ? { filter: page.filter } : {}), ...(page.select ? { select: page.select } : {}), since: page.until });
    return { status: 200, json: { value, '@odata.deltaLink': `${base}?$deltatoken=${delta}` } };
  }

  /** What changed in the folder after `state.since`: messages in it (whole), then the ones that left. */
  #changes(mb: FakeMailbox, state: Scope & { since: number }, rep: Representation): Record<string, unknown>[] {
    const present = [...mb.messages.values()].filter((m) => m.folderId === state.folderId && m.changed > state.since && inScope(state, m.receivedDateTime));
    present.sort((a, b) => a.changed - b.changed);
    const here = new Set(present.map((m) => m.immutableId));
    const left = mb.tombstones.filter((t) => t.folderId === state.folderId && t.changed > state.since && !here.has(t.immutableId) && mb.find(t.immutableId)?.folderId !== state.folderId);
    const removed = new Map(left.map((t) => [t.immutableId, t]));
    return [
      ...present.map((m) => messageJson(mb, m, rep, state.select)),
      ...[...removed.values()].map((t) => ({ '@odata.type': '#microsoft.graph.message', id: rep.immutable ? t.immutableId : t.restId, '@removed': { reason: 'deleted' } })),
    ];
  }
}

function gone(): Reply {
  return graphError(410, 'SyncStateNotFound', 'The sync state generation was not found: restart the synchronization.');
}

function inScope(scope: Scope, received: string): boolean {
  if (!scope.filter) return true;
  const at = Date.parse(received);
  return scope.filter.op === 'ge' ? at >= scope.filter.at : at > scope.filter.at;
}

/** The first round's $filter (receivedDateTime ge|gt only) and $select; a string is Graph's complaint. */
function parseScope(folderId: string, params: URLSearchParams): Scope | string {
  const filter = params.get('$filter');
  const order = params.get('$orderby');
  if (order !== null && !/^\s*receivedDateTime\s+desc\s*$/i.test(order)) return 'Delta supports $orderby=receivedDateTime desc only.';
  const select = params.get('$select');
  const scope: Scope = { folderId, ...(select ? { select: splitTop(select) } : {}) };
  if (filter === null) return scope;
  const m = /^\s*receivedDateTime\s+(ge|gt)\s+(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?Z)\s*$/i.exec(filter);
  if (!m) return 'Delta supports $filter on receivedDateTime with ge or gt only.';
  return { ...scope, filter: { op: m[1]!.toLowerCase() as 'ge' | 'gt', at: Date.parse(m[2]!) } };
}
