import { AppError, isAppError } from '../../errors.js';
import {
  encodeId,
  partialFailure,
  type FlagChange,
  type MessageDeleter,
  type MessageFilter,
  type MessageFlagger,
  type MessageMover,
  type MessageSummary,
  type MessageTagger,
  type MovedMessage,
} from '../../domain/mail.js';
import { relativeBase, runBatches, type BatchRequest, type BatchResponse } from './batch.js';
import type { GraphClient } from './client.js';
import { SUMMARY_EXPAND, SUMMARY_SELECT, toSummary, type GraphMessage } from './convert.js';
import type { GraphFolders } from './folders.js';
import { graphId } from './ids.js';
import { buildFilter, pagingOf, queryString } from './query.js';

export interface ChangeContext {
  client: GraphClient;
  folders: GraphFolders;
  /** https://<host>/v1.0/me or .../users/{id} */
  mailboxUrl: string;
  host: string;
  /** Budget of one Graph request (or one batch), retries included (timeouts.commandMs). */
  budgetMs: () => number;
  /** Most bytes of one JSON answer that may carry whole messages (a batch of PATCH or move answers). */
  parseMaxBytes: number;
}

/** Most messages one bulk call acts on: the ids are listed first, so they are held in memory. */
export const MAX_BULK = 100_000;
/** Ids this session moved to Deleted Items and still answers 404 for (see delete()). */
const TRASHED_REMEMBERED = 10_000;
/** Graph's largest page of messages. */
const ID_PAGE = 1000;

/** A moved (or created) message's id from Graph's answer, when it is one. */
function idOf(body: unknown): string | undefined {
  const id = (body as { id?: unknown } | null | undefined)?.id;
  return typeof id === 'string' && id.length > 0 && id.length <= 1024 ? id : undefined;
}

/** Graph answered that the message is not there (any more): the id names nothing. */
function gone(r: BatchResponse): boolean {
  const code = (r.body as { error?: { code?: unknown } } | undefined)?.error?.code;
  return r.status === 404 || (r.status === 400 && (code === 'ErrorInvalidIdMalformed' || code === 'ErrorInvalidId'));
}

/**
 * Changing mail through Microsoft Graph: flags (PATCH isRead / flag), moves (POST .../move, which keeps
 * the immutable id), deletes (a move to Deleted Items, or POST .../permanentDelete), categories for work
 * claims, and the bulk forms of each through JSON batching.
 *
 * Graph's immutable id survives a move to Deleted Items, so an id deleted to the trash still names the
 * message there. So that a delete retried after a lost answer does not destroy the message for good,
 * the session remembers the ids it moved there (the last 10,000) and answers their next non-permanent
 * delete 404 MESSAGE_NOT_FOUND, as the other protocols do; `permanent` removes them.
 */
export class GraphChanges implements MessageFlagger, MessageMover, MessageDeleter, MessageTagger {
  readonly #ctx: ChangeContext;
  readonly #trashed = new Map<string, true>();

  constructor(ctx: ChangeContext) {
    this.#ctx = ctx;
  }

  async update(id: string, change: FlagChange): Promise<MessageSummary> {
    const mid = messageId(id);
    await this.#call('PATCH', `/messages/${encodeURIComponent(mid)}`, patchOf(change), 'update message');
    return this.#summary(mid);
  }

  async updateMany(folder: string, where: MessageFilter, change: FlagChange): Promise<{ updated: number }> {
    const { ids } = await this.#matching(folder, where);
    const base = relativeBase(this.#ctx.mailboxUrl);
    let updated = 0;
    await this.#bulk(
      ids.map((mid) => ({ method: 'PATCH', url: `${base}/messages/${encodeURIComponent(mid)}`, body: patchOf(change) })),
      () => (updated += 1),
      () => ({ updated }),
    );
    return { updated };
  }

  async move(id: string, to: string): Promise<{ id: string; folder: string }> {
    const mid = messageId(id);
    const target = await this.#ctx.folders.resolve(to);
    const answer = await this.#call('POST', `/messages/${encodeURIComponent(mid)}/move`, { destinationId: target.id }, 'move message');
    const moved = idOf(answer);
    if (!moved) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${this.#ctx.host}: the moved message came without an id`);
    this.#trashed.delete(mid);
    this.#trashed.delete(moved);
    return { id: encodeId(moved), folder: target.path };
  }

  async moveMany(folder: string, where: MessageFilter, to: string): Promise<{ moved: number; messages: MovedMessage[] }> {
    const target = await this.#ctx.folders.resolve(to);
    const { ids } = await this.#matching(folder, where);
    const base = relativeBase(this.#ctx.mailboxUrl);
    const messages: MovedMessage[] = [];
    await this.#bulk(
      ids.map((mid) => ({ method: 'POST', url: `${base}/messages/${encodeURIComponent(mid)}/move`, body: { destinationId: target.id } })),
      (index, r) => {
        const moved = idOf(r.body);
        this.#trashed.delete(ids[index]!);
        messages.push({ id: encodeId(ids[index]!), newId: moved ? encodeId(moved) : null });
      },
      () => ({ moved: messages.length, messages: [...messages] }),
    );
    return { moved: messages.length, messages };
  }

  /**
   * To Deleted Items by an explicit move (Graph's own DELETE also lands there, but from Deleted Items it
   * goes to the hidden Recoverable Items, which is neither "in the trash" nor "removed for good"); a
   * message already in Deleted Items, or `permanent`, goes through permanentDelete (gone for the user).
   */
  async delete(id: string, options: { permanent: boolean }): Promise<void> {
    const mid = messageId(id);
    const path = `/messages/${encodeURIComponent(mid)}`;
    if (options.permanent) {
      await this.#call('POST', `${path}/permanentDelete`, undefined, 'delete message for good');
      this.#trashed.delete(mid);
      return;
    }
    if (this.#trashed.has(mid)) {
      throw new AppError('MESSAGE_NOT_FOUND', 'this session already deleted the message (it is in Deleted Items: delete it with permanent=true to remove it for good)');
    }
    const [message, trash] = await Promise.all([
      this.#call('GET', `${path}?$select=id,parentFolderId`, undefined, 'message folder'),
      this.#trash(),
    ]);
    const parent = (message as { parentFolderId?: unknown } | undefined)?.parentFolderId;
    if (trash === undefined || parent === trash) {
      await this.#call('POST', `${path}/permanentDelete`, undefined, 'delete message for good');
      this.#trashed.delete(mid);
      return;
    }
    await this.#call('POST', `${path}/move`, { destinationId: trash }, 'delete message');
    this.#remember(mid);
  }

  async deleteMany(folder: string, where: MessageFilter, options: { permanent: boolean }): Promise<{ deleted: number }> {
    const { ids, folderId } = await this.#matching(folder, where);
    const trash = options.permanent ? undefined : await this.#trash();
    const forGood = options.permanent || trash === undefined || folderId === trash;
    const base = relativeBase(this.#ctx.mailboxUrl);
    let deleted = 0;
    await this.#bulk(
      ids.map((mid) =>
        forGood
          ? { method: 'POST', url: `${base}/messages/${encodeURIComponent(mid)}/permanentDelete` }
          : { method: 'POST', url: `${base}/messages/${encodeURIComponent(mid)}/move`, body: { destinationId: trash } },
      ),
      (index) => {
        deleted += 1;
        if (forGood) this.#trashed.delete(ids[index]!);
        else this.#remember(ids[index]!);
      },
      () => ({ deleted }),
    );
    return { deleted };
  }

  /**
   * Adds the category, keeping the message's others (Graph's PATCH replaces the whole list); a message
   * that has it already is not changed. Another client changing the categories between the two
   * requests could lose its change: Graph has no "add to the list".
   */
  async tag(id: string, keyword: string): Promise<void> {
    const mid = messageId(id);
    const path = `/messages/${encodeURIComponent(mid)}`;
    const message = await this.#call('GET', `${path}?$select=id,categories`, undefined, 'message categories');
    const current = (message as { categories?: unknown } | undefined)?.categories;
    const list = Array.isArray(current) ? current.filter((c): c is string => typeof c === 'string') : [];
    if (list.some((c) => c.toLowerCase() === keyword.toLowerCase())) return;
    await this.#call('PATCH', path, { categories: [...list, keyword] }, 'tag message');
  }

  /** One request about one message; answers its JSON body. */
  async #call(method: 'GET' | 'PATCH' | 'POST', path: string, body: unknown, what: string): Promise<unknown> {
    const c = this.#ctx;
    const answer = await c.client.json({
      method,
      url: new URL(`${c.mailboxUrl}${path}`),
      ...(body !== undefined ? { body } : {}),
      budgetMs: c.budgetMs(),
      maxBytes: c.parseMaxBytes,
      item: 'message',
      what,
    });
    return answer.body;
  }

  /** The summary as the reader lists it (the attachments and MAPI properties expanded). */
  async #summary(mid: string): Promise<MessageSummary> {
    const c = this.#ctx;
    const params = queryString([['$select', SUMMARY_SELECT], ['$expand', SUMMARY_EXPAND]]);
    const body = await this.#call('GET', `/messages/${encodeURIComponent(mid)}?${params}`, undefined, 'message summary');
    if (!idOf(body)) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${c.host}: the message came without JSON`);
    const message = body as GraphMessage;
    const folder = typeof message.parentFolderId === 'string' ? await c.folders.pathOf(message.parentFolderId) : '';
    return toSummary(message, folder);
  }

  /** The id of Deleted Items; undefined for a mailbox without one (then deletes are for good). */
  async #trash(): Promise<string | undefined> {
    try {
      return await this.#ctx.folders.wellKnown('deleteditems');
    } catch (err) {
      if (isAppError(err) && err.code === 'FOLDER_NOT_FOUND') return undefined;
      throw err;
    }
  }

  #remember(mid: string): void {
    this.#trashed.delete(mid);
    this.#trashed.set(mid, true);
    if (this.#trashed.size > TRASHED_REMEMBERED) this.#trashed.delete(this.#trashed.keys().next().value!);
  }

  /**
   * Every message of the folder matching the filter, oldest first: ids only, all pages, listed before
   * anything changes (acting while paging would shift Graph's $skip positions). At most MAX_BULK.
   */
  async #matching(folder: string, where: MessageFilter): Promise<{ ids: string[]; folderId: string }> {
    const c = this.#ctx;
    const source = await c.folders.resolve(folder);
    const params: [string, string][] = [
      ['$filter', buildFilter(where)],
      ['$orderby', 'receivedDateTime asc'],
      ['$top', String(ID_PAGE)],
      ['$select', 'id'],
    ];
    const base = `${c.mailboxUrl}/mailFolders/${encodeURIComponent(source.id)}/messages`;
    const origin = new URL(c.mailboxUrl).origin;
    const ids: string[] = [];
    let paging: [string, string][] = [];
    for (;;) {
      const answer = await c.client.json({ url: new URL(`${base}?${queryString([...params, ...paging])}`), budgetMs: c.budgetMs(), item: 'folder', what: 'list message ids' });
      const body = answer.body as { value?: unknown; '@odata.nextLink'?: unknown } | undefined;
      if (answer.tooLarge || !body || !Array.isArray(body.value)) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${c.host}: a page of message ids is not JSON with a value array`);
      for (const item of body.value) {
        const id = idOf(item);
        if (id && graphId(encodeId(id)) && ids.length < MAX_BULK) ids.push(id);
      }
      const next = body['@odata.nextLink'];
      if (next === undefined || next === null || body.value.length === 0 || ids.length >= MAX_BULK) break;
      paging = pagingOf(next, origin, c.host);
    }
    return { ids, folderId: source.id };
  }

  /**
   * Runs the batch requests; a success is handed to `done`, a message gone meanwhile is skipped, any other
   * answer stops the call with what was done so far (partialFailure): retrying is safe, the filter selects
   * what is left.
   */
  async #bulk(requests: BatchRequest[], done: (index: number, r: BatchResponse) => void, partial: () => Record<string, unknown>): Promise<void> {
    const c = this.#ctx;
    const batch = { client: c.client, mailboxUrl: c.mailboxUrl, host: c.host, budgetMs: c.budgetMs, maxBytes: c.parseMaxBytes };
    try {
      await runBatches(batch, requests, (index, r) => {
        if (r.status >= 200 && r.status < 300) done(index, r);
        else if (!gone(r)) throw c.client.errorOf({ status: r.status, body: r.body, item: 'message', write: true });
      });
    } catch (err) {
      throw partialFailure(isAppError(err) ? err : new AppError('INTERNAL_ERROR', 'unexpected error', {}, { cause: err }), partial());
    }
  }
}

function patchOf(change: FlagChange): Record<string, unknown> {
  return {
    ...(change.seen !== undefined ? { isRead: change.seen } : {}),
    ...(change.flagged !== undefined ? { flag: { flagStatus: change.flagged ? 'flagged' : 'notFlagged' } } : {}),
  };
}

function messageId(id: string): string {
  const mid = graphId(id);
  if (!mid) throw new AppError('MESSAGE_NOT_FOUND', 'no message with this id in this session');
  return mid;
}
