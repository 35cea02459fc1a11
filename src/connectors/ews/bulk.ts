import type * as EwsApi from 'ews-javascript-api';
import { AppError, isAppError } from '../../errors.js';
import { partialFailure, type MessageFilter } from '../../domain/mail.js';
import { atLeast, ewsCodeOf, type EwsContext } from './context.js';
import type { ResolvedFolder } from './folders.js';
import { listFilter } from './search-filter.js';

/**
 * The bulk changes ("Move all", delete and update by filter): one FindItem with the list's restriction
 * (search-filter.ts), paged, gives every matching item of the folder, oldest first; then the change goes
 * out in batches of BATCH item ids, one request each. All ids are gathered before the first change, so a
 * change that takes a message out of the filter (a move, or seen with status=unread) cannot shift the pages.
 */
export const BATCH = 100;
/** Entries a FindItem page asks for (Exchange Online answers at most 1000: EWSFindCountLimit). */
const FIND_PAGE = 1000;

/** Every item of `folder` that matches `where`, oldest first, with `props` loaded besides the ItemId. */
export async function findAll(ctx: EwsContext, folder: ResolvedFolder, where: MessageFilter, props?: (ews: typeof EwsApi) => EwsApi.PropertyDefinitionBase[]): Promise<EwsApi.Item[]> {
  const items: EwsApi.Item[] = [];
  let offset = 0;
  for (;;) {
    const page = await ctx.request('FindItem', async (service, ews) => {
      const view = new ews.ItemView(FIND_PAGE, offset, ews.OffsetBasePoint.Beginning);
      view.PropertySet = new ews.PropertySet(ews.BasePropertySet.IdOnly, props?.(ews) ?? []);
      view.OrderBy.Add(ews.ItemSchema.DateTimeReceived, ews.SortDirection.Ascending);
      const filter = listFilter(ews, where, undefined);
      const parent = new ews.FolderId(folder.id);
      const results = await (filter ? service.FindItems(parent, filter, view) : service.FindItems(parent, view));
      if (!results) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS FindItem returned no answer');
      return { items: results.Items, more: results.MoreAvailable, next: results.NextPageOffset };
    }, 'folder');
    items.push(...page.items);
    if (!page.more || page.items.length === 0) return items;
    offset = typeof page.next === 'number' && page.next > offset ? page.next : offset + page.items.length;
  }
}

/** What became of one item of a batch. */
export type Outcome<R> = { done: R } | { gone: true } | { skipped: true } | { error: AppError };

/**
 * One response of a batch answer as an Outcome: Success is done; an id that no longer resolves (another
 * client moved or deleted the message since the FindItem) is gone, which a bulk call does not count; any
 * other ResponseClass="Error" is an error, reported (it stops the bulk call after its batch).
 */
export function outcomeOf<R>(ctx: EwsContext, ews: typeof EwsApi, response: EwsApi.ServiceResponse, done: () => R): Outcome<R> {
  if (response.Result !== ews.ServiceResult.Error) return { done: done() };
  const error = ctx.itemError(ewsCodeOf(ews, response) ?? 'ErrorInternalServerError', response.ErrorMessage ?? '', 'message');
  return error.code === 'MESSAGE_NOT_FOUND' ? { gone: true } : { error };
}

/**
 * Runs `act` over `items` in batches of BATCH and gathers what was done. A batch in which Exchange refused
 * an item, or a request that failed outright, ends the call with partialFailure: `partial(done)` says what
 * the batches before it (and the items of its own batch that succeeded) did.
 */
export async function inBatches<T, R>(items: readonly T[], act: (batch: T[]) => Promise<Outcome<R>[]>, partial: (done: R[]) => Record<string, unknown>): Promise<R[]> {
  const done: R[] = [];
  for (let i = 0; i < items.length; i += BATCH) {
    let outcomes: Outcome<R>[];
    try {
      outcomes = await act(items.slice(i, i + BATCH));
    } catch (err) {
      throw partialFailure(isAppError(err) ? err : new AppError('INTERNAL_ERROR', 'unexpected error', {}, { cause: err }), partial(done));
    }
    let failed: AppError | undefined;
    for (const o of outcomes) {
      if ('done' in o) done.push(o.done);
      else if ('error' in o) failed ??= o.error;
    }
    if (failed) throw partialFailure(failed, partial(done));
  }
  return done;
}

/**
 * MoveItem for these ItemIds, each response with the item's new id where Exchange tells it. Built as a
 * request, not through service.MoveItems, which refuses sessions older than Exchange 2010 SP1 even without
 * ReturnNewItemIds; that element came with 2010 SP1, before which Exchange answers the new ids unasked.
 */
export async function moveItems(service: EwsApi.ExchangeService, ews: typeof EwsApi, itemIds: readonly string[], folderId: string): Promise<EwsApi.MoveCopyItemResponse[]> {
  const request = new ews.MoveItemRequest(service, ews.ServiceErrorHandling.ReturnErrors);
  request.ItemIds.AddRange(itemIds.map((id) => new ews.ItemId(id)));
  request.DestinationFolderId = new ews.FolderId(folderId);
  if (atLeast(service, ews, 'Exchange2010_SP1')) request.ReturnNewItemIds = true;
  const responses = await request.Execute();
  if (!responses || responses.Count !== itemIds.length) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS MoveItem answered another number of items than it was given');
  return responses.Responses;
}

/** DeleteItem for these ItemIds in one request, with no read receipt going out for an unread message (Exchange 2013+). */
export async function deleteItems(service: EwsApi.ExchangeService, ews: typeof EwsApi, itemIds: readonly string[], hard: boolean): Promise<EwsApi.ServiceResponse[]> {
  const mode = hard ? ews.DeleteMode.HardDelete : ews.DeleteMode.MoveToDeletedItems;
  const responses = await service.DeleteItems(itemIds.map((id) => new ews.ItemId(id)), mode, null as never, null as never, atLeast(service, ews, 'Exchange2013'));
  if (!responses || responses.Count !== itemIds.length) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS DeleteItem answered another number of items than it was given');
  return responses.Responses;
}
