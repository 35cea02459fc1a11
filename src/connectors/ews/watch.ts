import type * as EwsApi from 'ews-javascript-api';
import { AppError, isAppError } from '../../errors.js';
import { encodeId, type MailWatcher, type WatchListener } from '../../domain/mail.js';
import { ewsCodeOf, type EwsContext } from './context.js';
import type { EwsReader } from './messages.js';

/** Changes one SyncFolderItems answers at most (Exchange's own limit is 512). */
const SYNC_PAGE = 512;
/** SyncFolderItems calls one poll makes per folder at most; what is left comes at the next poll. */
const PAGES_PER_POLL = 10;
/**
 * SyncFolderItems calls start() makes per folder for the baseline (10,240 items); a larger folder finishes
 * its baseline over the next polls, and mail that arrives meanwhile is taken as part of it (not reported).
 */
const BASELINE_PAGES_AT_START = 20;
/** GetItem for new mail asks for at most this many at once. */
const SUMMARY_BATCH = 100;

interface Watched {
  path: string;
  id: string;
  /** Exchange's SyncState: where the next SyncFolderItems starts. null: no baseline yet. */
  state: string | null;
  /** The baseline is being taken: what SyncFolderItems answers is what was there, not new. */
  baseline: boolean;
}

type Page = { kind: 'changes'; created: string[]; deleted: string[]; state: string; more: boolean } | { kind: 'invalid' };

/**
 * New mail in the watched folders, by asking (EWS tells nothing by itself over plain requests):
 * SyncFolderItems on each folder with the folder's SyncState. start() takes the baseline: from no state,
 * Exchange answers every item already there as created, which is only walked through (ids only) to reach
 * a SyncState for "now". Each poll() then asks for what changed since: a created item is message.new with
 * its summary (one GetItem for the lot, as a page of the list), a deleted one message.deleted (a message
 * moved away shows as deleted here and created where it went). Read-flag and other changes are not events.
 *
 * The SyncStates outlive a reconnect (start() after it continues from them), so mail that arrived while
 * the session was reconnecting is reported too. A SyncState Exchange no longer accepts
 * (ErrorInvalidSyncStateData) is dropped: the baseline is taken again and the folder reports mailbox.reset,
 * since what arrived in between cannot be told apart from what was there.
 */
export class EwsWatcher implements MailWatcher {
  readonly #ctx: EwsContext;
  readonly #reader: EwsReader;
  /** By folder id: the same folder under two names is watched once. */
  readonly #watched = new Map<string, Watched>();
  #listener: WatchListener | undefined;

  constructor(ctx: EwsContext, reader: EwsReader) {
    this.#ctx = ctx;
    this.#reader = reader;
  }

  async start(folders: readonly string[], listener: WatchListener): Promise<void> {
    this.#listener = listener;
    const wanted = new Set<string>();
    for (const path of folders) {
      let resolved;
      try {
        resolved = await this.#ctx.folders.resolve(path);
      } catch (err) {
        if (!isAppError(err) || err.code !== 'FOLDER_NOT_FOUND') throw err;
        this.#ctx.logger.warn({ code: err.code }, 'EWS: a watched folder does not exist; it is not watched');
        continue;
      }
      wanted.add(resolved.id);
      if (!this.#watched.has(resolved.id)) this.#watched.set(resolved.id, { path: resolved.path, id: resolved.id, state: null, baseline: true });
    }
    for (const id of this.#watched.keys()) if (!wanted.has(id)) this.#watched.delete(id);
    for (const folder of this.#watched.values()) if (folder.baseline) await this.#sync(folder, BASELINE_PAGES_AT_START);
  }

  async poll(): Promise<void> {
    for (const folder of [...this.#watched.values()]) {
      try {
        await this.#sync(folder, PAGES_PER_POLL);
      } catch (err) {
        // a folder deleted while watched: stop watching it; anything else is the connection's (the session reconnects)
        if (!isAppError(err) || err.code !== 'FOLDER_NOT_FOUND') throw err;
        this.#ctx.logger.warn({ code: err.code }, 'EWS: a watched folder is gone; it is no longer watched');
        this.#watched.delete(folder.id);
      }
    }
  }

  stop(): void {
    this.#listener = undefined;
  }

  /** Up to `maxPages` SyncFolderItems calls on one folder, reporting what they find unless taking the baseline. */
  async #sync(folder: Watched, maxPages: number): Promise<void> {
    for (let pages = 0; pages < maxPages; pages += 1) {
      const page = await this.#page(folder);
      if (page.kind === 'invalid') {
        this.#ctx.logger.warn('EWS: Exchange refused the SyncState of a watched folder; taking the baseline again');
        folder.state = null;
        folder.baseline = true;
        this.#listener?.reset(folder.path);
        continue;
      }
      if (!folder.baseline) await this.#report(folder, page.created, page.deleted);
      folder.state = page.state;
      if (!page.more) {
        folder.baseline = false;
        return;
      }
    }
  }

  async #page(folder: Watched): Promise<Page> {
    return this.#ctx.request('SyncFolderItems', async (service, ews) => {
      let changes: EwsApi.ChangeCollection<EwsApi.ItemChange>;
      try {
        changes = await service.SyncFolderItems(new ews.FolderId(folder.id), new ews.PropertySet(ews.BasePropertySet.IdOnly), null as never, SYNC_PAGE, ews.SyncFolderItemsScope.NormalItems, folder.state as string);
      } catch (err) {
        if (ewsCodeOf(ews, err) === 'ErrorInvalidSyncStateData') return { kind: 'invalid' } as const;
        throw err;
      }
      if (!changes || typeof changes.SyncState !== 'string' || changes.SyncState === '') throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS SyncFolderItems answered no SyncState');
      const created: string[] = [];
      const deleted: string[] = [];
      for (const change of changes.GetEnumerator()) {
        const id = change.ItemId?.UniqueId;
        if (!id) continue;
        if (change.ChangeType === ews.ChangeType.Create) created.push(id);
        else if (change.ChangeType === ews.ChangeType.Delete) deleted.push(id);
      }
      return { kind: 'changes', created, deleted, state: changes.SyncState, more: changes.MoreChangesAvailable } as const;
    }, 'folder');
  }

  async #report(folder: Watched, created: string[], deleted: string[]): Promise<void> {
    for (const id of deleted) this.#listener?.deleted(encodeId(id), folder.path);
    for (let i = 0; i < created.length; i += SUMMARY_BATCH) {
      const summaries = await this.#reader.summaries(created.slice(i, i + SUMMARY_BATCH), folder.path, false);
      for (const summary of summaries) this.#listener?.newMessage(summary);
    }
  }
}
