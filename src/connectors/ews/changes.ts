import type * as EwsApi from 'ews-javascript-api';
import { AppError } from '../../errors.js';
import {
  encodeId,
  type FlagChange,
  type MessageDeleter,
  type MessageFilter,
  type MessageFlagger,
  type MessageMover,
  type MessageSummary,
  type MessageTagger,
  type MovedMessage,
} from '../../domain/mail.js';
import { atLeast, ewsCodeOf, itemIdOf, type EwsContext } from './context.js';
import { deleteItems, findAll, inBatches, moveItems, outcomeOf, type Outcome } from './bulk.js';
import { MAPI, extended, prop, summaryProperties, toSummary } from './item-mapping.js';
import { xmlText } from './xml-text.js';

/** PidTagFlagStatus, the follow-up flag every Exchange version keeps (2 = flagged). */
function flagStatus(ews: typeof EwsApi): EwsApi.ExtendedPropertyDefinition {
  return new ews.ExtendedPropertyDefinition(MAPI.flagStatus, ews.MapiPropertyType.Integer);
}

/**
 * Applies a flag change to a loaded item: IsRead (messages only), and the follow-up flag as the `Flag`
 * property on Exchange 2013+ or, before, PidTagFlagStatus set to 2 (flagged) or removed (the item must
 * have been loaded with it: a flag that is not there needs no removing). Answers false for an item that
 * cannot take the change (IsRead on something that is not a message).
 */
function applyChange(service: EwsApi.ExchangeService, ews: typeof EwsApi, item: EwsApi.Item, change: FlagChange): boolean {
  if (change.seen !== undefined) {
    if (!(item instanceof ews.EmailMessage)) return false;
    item.IsRead = change.seen;
  }
  if (change.flagged !== undefined) {
    if (atLeast(service, ews, 'Exchange2013')) {
      const flag = new ews.Flag();
      flag.FlagStatus = change.flagged ? ews.ItemFlagStatus.Flagged : ews.ItemFlagStatus.NotFlagged;
      item.Flag = flag;
    } else if (change.flagged) {
      item.SetExtendedProperty(flagStatus(ews), 2);
    } else if (extended(item, MAPI.flagStatus) !== undefined) {
      item.RemoveExtendedProperty(flagStatus(ews));
    }
  }
  return true;
}

/** How many times tag() reads and writes again when another client changed the message in between. */
const TAG_ATTEMPTS = 3;

/**
 * Changing messages through EWS: UpdateItem (IsRead, the follow-up flag, categories), MoveItem and
 * DeleteItem, for one message or, in batches, every message matching a filter (bulk.ts). Exchange gives
 * a message a new ItemId when it moves, so a moved (or deleted to Deleted Items) message's old id answers
 * MESSAGE_NOT_FOUND afterwards and never names another message.
 */
export class EwsChanges implements MessageFlagger, MessageMover, MessageDeleter, MessageTagger {
  readonly #ctx: EwsContext;

  constructor(ctx: EwsContext) {
    this.#ctx = ctx;
  }

  async update(id: string, change: FlagChange): Promise<MessageSummary> {
    const itemId = itemIdOf(id);
    const { summary, parent } = await this.#ctx.request('GetItem+UpdateItem', async (service, ews) => {
      const item = await ews.Item.Bind(service, new ews.ItemId(itemId), new ews.PropertySet(ews.BasePropertySet.IdOnly, [...summaryProperties(ews), ews.ItemSchema.ParentFolderId]));
      if (!item) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS GetItem returned no item');
      if (!applyChange(service, ews, item, change)) throw new AppError('OPERATION_NOT_SUPPORTED', 'only messages can be marked read or unread, not this kind of Exchange item');
      // no read receipt goes out on the bot's behalf (SuppressReadReceipts, Exchange 2013+)
      if (item.IsDirty) await (atLeast(service, ews, 'Exchange2013') ? item.Update(ews.ConflictResolutionMode.AlwaysOverwrite, true) : item.Update(ews.ConflictResolutionMode.AlwaysOverwrite));
      const summary = toSummary(item, '', ews);
      // the Flag property and PidTagFlagStatus are one on the server; the loaded item shows the latter
      if (change.seen !== undefined) summary.seen = change.seen;
      if (change.flagged !== undefined) summary.flagged = change.flagged;
      return { summary, parent: prop<EwsApi.FolderId>(item, ews.ItemSchema.ParentFolderId)?.UniqueId ?? null };
    }, 'message');
    summary.folder = parent ? await this.#ctx.folders.pathOf(parent) : '';
    return summary;
  }

  async updateMany(folder: string, where: MessageFilter, change: FlagChange): Promise<{ updated: number }> {
    const f = await this.#ctx.folders.resolve(folder);
    // PidTagFlagStatus is loaded where unflagging removes it (before Exchange 2013)
    const items = await findAll(this.#ctx, f, where, (ews) => (change.flagged === false ? [flagStatus(ews)] : []));
    const done = await inBatches(items, (batch) =>
      this.#ctx.request('UpdateItem', async (service, ews) => {
        const outcomes = new Map<EwsApi.Item, Outcome<true>>();
        const dirty: EwsApi.Item[] = [];
        for (const item of batch) {
          // an item that is not a message (a posted note) cannot be marked read: left alone, not counted
          if (!applyChange(service, ews, item, change)) outcomes.set(item, { skipped: true });
          else if (item.IsDirty) dirty.push(item);
          else outcomes.set(item, { done: true });
        }
        if (dirty.length > 0) {
          const suppress = atLeast(service, ews, 'Exchange2013');
          const responses = await service.UpdateItems(dirty, null as never, ews.ConflictResolutionMode.AlwaysOverwrite, ews.MessageDisposition.SaveOnly, null as never, suppress);
          if (!responses || responses.Count !== dirty.length) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS UpdateItem answered another number of items than it was given');
          responses.Responses.forEach((r, i) => outcomes.set(dirty[i]!, outcomeOf(this.#ctx, ews, r, () => true as const)));
        }
        return batch.map((item) => outcomes.get(item)!);
      }),
    (d) => ({ updated: d.length }));
    return { updated: done.length };
  }

  async move(id: string, to: string): Promise<{ id: string; folder: string }> {
    const itemId = itemIdOf(id);
    const target = await this.#ctx.folders.resolve(to);
    const newId = await this.#ctx.request('MoveItem', async (service, ews) => {
      const [r] = await moveItems(service, ews, [itemId], target.id);
      if (r!.Result === ews.ServiceResult.Error) throw { Response: r, message: r!.ErrorMessage };
      return r!.Item?.Id?.UniqueId;
    }, 'message');
    if (!newId) throw new AppError('MAIL_PROTOCOL_ERROR', `Exchange moved the message to "${target.path}" but did not answer its new ItemId: list that folder to find it`);
    return { id: encodeId(newId), folder: target.path };
  }

  async moveMany(folder: string, where: MessageFilter, to: string): Promise<{ moved: number; messages: MovedMessage[] }> {
    const [source, target] = [await this.#ctx.folders.resolve(folder), await this.#ctx.folders.resolve(to)];
    const ids = (await findAll(this.#ctx, source, where)).map((item) => item.Id.UniqueId);
    const partial = (messages: MovedMessage[]) => ({ moved: messages.length, messages });
    const messages = await inBatches(ids, (batch) =>
      this.#ctx.request('MoveItem', async (service, ews) => {
        const responses = await moveItems(service, ews, batch, target.id);
        return responses.map((r, i) => outcomeOf(this.#ctx, ews, r, () => ({ id: encodeId(batch[i]!), newId: r.Item?.Id?.UniqueId ? encodeId(r.Item.Id.UniqueId) : null })));
      }),
    partial);
    return partial(messages);
  }

  async delete(id: string, options: { permanent: boolean }): Promise<void> {
    const itemId = itemIdOf(id);
    const trash = options.permanent ? undefined : await this.#ctx.folders.wellKnownId('deleteditems');
    await this.#ctx.request('DeleteItem', async (service, ews) => {
      let hard = options.permanent;
      if (!hard) {
        // a message already in Deleted Items goes for good: moving it there again would change nothing
        const item = await ews.Item.Bind(service, new ews.ItemId(itemId), new ews.PropertySet(ews.BasePropertySet.IdOnly, [ews.ItemSchema.ParentFolderId]));
        hard = trash !== undefined && (item ? prop<EwsApi.FolderId>(item, ews.ItemSchema.ParentFolderId)?.UniqueId : undefined) === trash;
      }
      const [r] = await deleteItems(service, ews, [itemId], hard);
      if (r!.Result === ews.ServiceResult.Error) throw { Response: r, message: r!.ErrorMessage };
    }, 'message');
  }

  async deleteMany(folder: string, where: MessageFilter, options: { permanent: boolean }): Promise<{ deleted: number }> {
    const source = await this.#ctx.folders.resolve(folder);
    const hard = options.permanent || source.id === (await this.#ctx.folders.wellKnownId('deleteditems'));
    const ids = (await findAll(this.#ctx, source, where)).map((item) => item.Id.UniqueId);
    const done = await inBatches(ids, (batch) =>
      this.#ctx.request('DeleteItem', async (service, ews) => (await deleteItems(service, ews, batch, hard)).map((r) => outcomeOf(this.#ctx, ews, r, () => true as const))),
    (d) => ({ deleted: d.length }));
    return { deleted: done.length };
  }

  /**
   * Adds a category, keeping the ones the message has: EWS cannot append to Categories (AppendToItemField
   * takes only bodies and recipient lists), so the list is read and written whole, with the ChangeKey it
   * was read with and NeverOverwrite: a change another client made in between is a conflict, and the
   * list is read again, rather than a category lost.
   */
  async tag(id: string, keyword: string): Promise<void> {
    const itemId = itemIdOf(id);
    for (let attempt = 1; ; attempt += 1) {
      const outcome = await this.#ctx.request('GetItem+UpdateItem', async (service, ews) => {
        const item = await ews.Item.Bind(service, new ews.ItemId(itemId), new ews.PropertySet(ews.BasePropertySet.IdOnly, [ews.ItemSchema.Categories]));
        if (!item) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS GetItem returned no item');
        const categories = prop<EwsApi.StringList>(item, ews.ItemSchema.Categories)?.GetEnumerator() ?? [];
        if (categories.some((c) => c.toLowerCase() === keyword.toLowerCase())) return 'done';
        // written whole, so the ones read back (unescaped by the library) are escaped again
        item.Categories = new ews.StringList([...categories, keyword].map(xmlText));
        try {
          await item.Update(ews.ConflictResolutionMode.NeverOverwrite);
        } catch (err) {
          if (ewsCodeOf(ews, err) === 'ErrorIrresolvableConflict') return 'conflict';
          throw err;
        }
        return 'done';
      }, 'message');
      if (outcome === 'done') return;
      if (attempt >= TAG_ATTEMPTS) throw new AppError('MAIL_PROTOCOL_ERROR', `the message changed under every one of ${TAG_ATTEMPTS} attempts to add its category (ErrorIrresolvableConflict); try again`);
    }
  }
}
