import type { Logger } from 'pino';
import { AppError, isAppError } from '../../errors.js';
import { encodeId, type MailWatcher, type MessageSummary, type WatchListener } from '../../domain/mail.js';
import { relativeBase, runBatches } from './batch.js';
import type { GraphClient } from './client.js';
import { SUMMARY_EXPAND, SUMMARY_SELECT, toSummary, type GraphMessage } from './convert.js';
import type { GraphFolders } from './folders.js';
import { graphError } from './http.js';
import { queryString } from './query.js';

export interface WatchContext {
  client: GraphClient;
  folders: GraphFolders;
  /** https://<host>/v1.0/me or .../users/{id} */
  mailboxUrl: string;
  host: string;
  budgetMs: () => number;
  parseMaxBytes: number;
  logger: Logger;
}

/** The baseline asks for mail received from this long before the watch started: clocks differ. */
const CLOCK_MARGIN_MS = 10 * 60_000;
/** Delta pages read per folder and check; what is left is read at the next check. */
const MAX_PAGES = 50;
const PAGE_SIZE = 100;
/** Ids known per folder (the baseline and what was reported), so that an update is not new mail. */
const KNOWN_MAX = 10_000;
/** Graph's answers when a delta state is no longer valid: the synchronization starts over. */
const RESTART_CODES = new Set(['SyncStateNotFound', 'SyncStateInvalid', 'ResyncRequired', 'syncStateNotFound']);

interface Watched {
  /** The path as the session named it. */
  asked: string;
  /** The folder's path as events name it. */
  path: string;
  id: string;
  /** The @odata.deltaLink (or a @odata.nextLink not yet read to its end) of the last check. */
  link: string | undefined;
  known: Map<string, true>;
}

function iso(at: number): string {
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * New mail in the watched folders through Graph's delta query on each folder's messages. start() sets a
 * baseline (GET .../mailFolders/{id}/messages/delta with `receivedDateTime ge` a little before now, read
 * to its @odata.deltaLink) and reports nothing; each poll() follows the deltaLink: a message not seen
 * before is new mail (its summary read in a batch, then reported), one seen before was only changed (read,
 * flagged), one `@removed` left the folder. A state Graph no longer knows (410) starts a new baseline and
 * reports mailbox.reset: what happened in between is unknown. The links survive a reconnect, so mail that
 * came while the session was reconnecting is reported once it is back.
 */
export class GraphWatcher implements MailWatcher {
  readonly #ctx: WatchContext;
  readonly #watched = new Map<string, Watched>();
  #wanted: string[] = [];
  #listener: WatchListener | undefined;

  constructor(ctx: WatchContext) {
    this.#ctx = ctx;
  }

  /**
   * Sets the baselines of the folders not watched yet. A failure that may pass (throttling, the network)
   * is not fatal: the folders left are set up at the next check.
   */
  async start(folders: readonly string[], listener: WatchListener): Promise<void> {
    this.#listener = listener;
    this.#wanted = [...folders];
    try {
      await this.#setUp();
    } catch (err) {
      this.#ctx.logger.warn({ code: isAppError(err) ? err.code : 'INTERNAL_ERROR' }, 'watching could not start yet: tried again at the next check');
    }
  }

  async poll(): Promise<void> {
    await this.#setUp();
    for (const watched of [...this.#watched.values()]) {
      try {
        await this.#check(watched);
      } catch (err) {
        if (!isAppError(err) || err.code !== 'FOLDER_NOT_FOUND') throw err;
        this.#ctx.logger.warn({ code: err.code }, 'a watched folder is gone: no longer watched');
        this.#watched.delete(watched.id);
      }
    }
  }

  /** Resolves the wanted folders and sets the baseline of each one not watched yet; folders no longer wanted are dropped. */
  async #setUp(): Promise<void> {
    const wanted = new Set<string>();
    for (const path of this.#wanted) {
      // a folder set up once is known by its id (which a rename keeps): no request per check
      const known = [...this.#watched.values()].find((w) => w.asked === path);
      if (known) {
        wanted.add(known.id);
        continue;
      }
      try {
        const folder = await this.#ctx.folders.resolve(path);
        wanted.add(folder.id);
        if (this.#watched.has(folder.id)) continue;
        const watched: Watched = { asked: path, path: folder.path, id: folder.id, link: undefined, known: new Map() };
        await this.#baseline(watched);
        this.#watched.set(folder.id, watched);
      } catch (err) {
        if (!isAppError(err) || err.code !== 'FOLDER_NOT_FOUND') throw err;
        // not there: not watched (and not asked for again until the next connect)
        this.#ctx.logger.warn({ code: err.code }, 'a watched folder does not exist: not watched');
        this.#wanted = this.#wanted.filter((p) => p !== path);
      }
    }
    for (const id of [...this.#watched.keys()]) if (!wanted.has(id)) this.#watched.delete(id);
  }

  stop(): void {
    this.#listener = undefined;
  }

  async #baseline(watched: Watched): Promise<void> {
    const c = this.#ctx;
    const params = queryString([['$select', 'id,receivedDateTime'], ['$filter', `receivedDateTime ge ${iso(Date.now() - CLOCK_MARGIN_MS)}`]]);
    watched.known.clear();
    watched.link = `${c.mailboxUrl}/mailFolders/${encodeURIComponent(watched.id)}/messages/delta?${params}`;
    const round = await this.#read(watched, Infinity);
    if (round === 'restart') throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${c.host}: a new delta query was answered "start over"`);
    for (const id of round.changed) this.#know(watched, id);
    watched.link = round.link;
  }

  async #check(watched: Watched): Promise<void> {
    const round = await this.#read(watched, MAX_PAGES);
    if (round === 'restart') {
      this.#ctx.logger.info('Graph forgot the delta state of a watched folder: new baseline, mailbox.reset');
      await this.#baseline(watched);
      this.#listener?.reset(watched.path);
      return;
    }
    const fresh = [...new Set(round.changed.filter((id) => !watched.known.has(id)))];
    const summaries = await this.#summaries(fresh, watched.path);
    // the link moves on only once everything of the round could be reported
    watched.link = round.link;
    const listener = this.#listener;
    for (const id of fresh) {
      this.#know(watched, id);
      const summary = summaries.get(id);
      if (summary) listener?.newMessage(summary);
    }
    for (const id of round.removed) {
      watched.known.delete(id);
      listener?.deleted(encodeId(id), watched.path);
    }
  }

  /** Follows the folder's link through at most `maxPages` pages: what changed and what left, and the next link. */
  async #read(watched: Watched, maxPages: number): Promise<{ changed: string[]; removed: string[]; link: string } | 'restart'> {
    const c = this.#ctx;
    const changed: string[] = [];
    const removed: string[] = [];
    let url = watched.link!;
    for (let page = 0; ; page++) {
      const answer = await c.client.json({
        url: this.#checked(url),
        budgetMs: c.budgetMs(),
        maxBytes: c.parseMaxBytes,
        prefer: [`odata.maxpagesize=${PAGE_SIZE}`],
        item: 'folder',
        expect: [400, 410],
        what: 'delta',
      });
      if (answer.status === 410 || answer.status === 400) {
        const code = graphError(answer.body).code;
        if (answer.status === 410 || RESTART_CODES.has(code ?? '')) return 'restart';
        throw c.client.errorOf({ status: answer.status, body: answer.body });
      }
      const body = answer.body as { value?: unknown; '@odata.nextLink'?: unknown; '@odata.deltaLink'?: unknown } | undefined;
      if (answer.tooLarge || !body || !Array.isArray(body.value)) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${c.host}: a delta page is not JSON with a value array`);
      for (const item of body.value as { id?: unknown; '@removed'?: unknown }[]) {
        if (typeof item?.id !== 'string' || item.id.length === 0 || item.id.length > 1024) continue;
        (item['@removed'] !== undefined ? removed : changed).push(item.id);
      }
      const delta = body['@odata.deltaLink'];
      const next = body['@odata.nextLink'];
      // checked when received, so that a link that may not be followed is never kept
      if (typeof delta === 'string') return { changed, removed, link: this.#checked(delta).href };
      if (typeof next !== 'string') throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${c.host}: a delta page has neither a next nor a delta link`);
      url = this.#checked(next).href;
      // the rest is read at the next check, from where this one stopped
      if (page + 1 >= maxPages) return { changed, removed, link: url };
    }
  }

  /** A link from Graph is followed only to the session's own Graph origin and to a delta query. */
  #checked(link: string): URL {
    const c = this.#ctx;
    let url: URL;
    try {
      url = new URL(link);
    } catch {
      throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${c.host}: a delta link is not a URL`);
    }
    if (url.origin !== new URL(c.mailboxUrl).origin || !/^\/v1\.0\/.+\/messages\/delta$/i.test(url.pathname)) {
      throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${c.host}: a delta link points elsewhere (${url.origin}): not followed`);
    }
    return url;
  }

  /** The summaries of new messages as the list shows them, 20 to a batch; one gone meanwhile is left out. */
  async #summaries(ids: string[], folder: string): Promise<Map<string, MessageSummary>> {
    const c = this.#ctx;
    const out = new Map<string, MessageSummary>();
    if (ids.length === 0) return out;
    const base = relativeBase(c.mailboxUrl);
    const params = queryString([['$select', SUMMARY_SELECT], ['$expand', SUMMARY_EXPAND]]);
    const requests = ids.map((id) => ({ method: 'GET' as const, url: `${base}/messages/${encodeURIComponent(id)}?${params}` }));
    await runBatches({ client: c.client, mailboxUrl: c.mailboxUrl, host: c.host, budgetMs: c.budgetMs, maxBytes: c.parseMaxBytes }, requests, (index, r) => {
      const id = (r.body as { id?: unknown } | undefined)?.id;
      if (r.status === 200 && typeof id === 'string') out.set(ids[index]!, toSummary(r.body as GraphMessage, folder));
      else if (r.status !== 404) throw c.client.errorOf({ status: r.status, body: r.body, item: 'message' });
    });
    return out;
  }

  #know(watched: Watched, id: string): void {
    watched.known.set(id, true);
    if (watched.known.size > KNOWN_MAX) watched.known.delete(watched.known.keys().next().value!);
  }
}
