// The fake EWS's changes, in Exchange's SOAP: UpdateItem (IsRead, the follow-up flag as item:Flag on
// Exchange 2013+ or PidTagFlagStatus 0x1090 before, Categories; ChangeKey conflicts under NeverOverwrite),
// MoveItem (the message gets a new ItemId in its new folder, as on Exchange; ReturnNewItemIds), DeleteItem
// (MoveToDeletedItems, SoftDelete, HardDelete) and SyncFolderItems (a SyncState per folder over the
// mailbox's change log; an initial sync answers what is there as created).
import type { FakeMailbox, FakeMessage } from './fake-ews-store.js';
import { ItemError, SoapFault, all, attr, esc, first, folderFrom, itemFrom, responseMessage, stringOf, textOf, wrap, type MailOptions } from './fake-ews-mail.js';

type Node = Record<string, unknown>;

const VERSIONS = ['Exchange2007_SP1', 'Exchange2010', 'Exchange2010_SP1', 'Exchange2010_SP2', 'Exchange2013', 'Exchange2013_SP1'];

/** Whether a request's RequestServerVersion is at least `min` (later versions than the list knows are). */
export function versionAtLeast(version: string, min: string): boolean {
  const i = VERSIONS.indexOf(version);
  return i < 0 || i >= VERSIONS.indexOf(min);
}

/** The item a change names, unless the test told the fake to refuse it. */
function target(box: FakeMailbox, node: Node | undefined, options: MailOptions): FakeMessage {
  const m = itemFrom(box, node);
  const code = options.itemErrors.get(m.id);
  if (code) throw new ItemError(code, `The fake was told to refuse this item (${code}).`);
  return m;
}

function idXml(m: FakeMessage): string {
  return `<t:ItemId Id="${esc(m.id)}" ChangeKey="${esc(m.changeKey)}"/>`;
}

const FLAG_STATUS: Record<string, number | null> = { NotFlagged: null, Complete: 1, Flagged: 2 };

/** One SetItemField / DeleteItemField on a message. */
function setField(m: FakeMessage, update: Node, remove: boolean, version: string): void {
  const uri = attr(first(update, 'FieldURI'), 'FieldURI');
  const ext = first(update, 'ExtendedFieldURI');
  const value = first(update, 'Message') ?? first(update, 'Item');
  if (ext && Number(attr(ext, 'PropertyTag')) === 0x1090) {
    m.flagStatus = remove ? null : Number(textOf(first(first(value, 'ExtendedProperty'), 'Value')));
    return;
  }
  switch (uri) {
    case 'message:IsRead':
      if (remove) throw new ItemError('ErrorInvalidPropertyDelete', 'IsRead cannot be deleted.');
      m.isRead = textOf(first(value, 'IsRead')) === 'true';
      return;
    case 'item:Flag': {
      if (!versionAtLeast(version, 'Exchange2013')) throw new SoapFault('ErrorSchemaValidation', `The element Flag is not valid in ${version} (Exchange 2013 added it).`);
      const status = remove ? 'NotFlagged' : textOf(first(first(value, 'Flag'), 'FlagStatus'));
      if (!(status in FLAG_STATUS)) throw new SoapFault('ErrorSchemaValidation', `Not a FlagStatus: ${status}`);
      m.flagStatus = FLAG_STATUS[status]!;
      return;
    }
    case 'item:Categories':
      m.categories = remove ? [] : all(first(value, 'Categories'), 'String').map((s) => stringOf(s, 'String'));
      return;
    default:
      throw new ItemError('ErrorInvalidPropertySet', `The fake does not update ${uri ?? 'this extended property'}.`);
  }
}

/** Where a sync stands: the change counter it has seen up to, and, during an initial sync, how far it walked. */
interface SyncState {
  f: string;
  s: number;
  e: number;
  /** During an initial sync: the `seq` of the last message it answered. */
  o?: number;
}

function readState(box: FakeMailbox, folderId: string, text: string): SyncState | undefined {
  if (!text) return undefined;
  let state: SyncState;
  try {
    state = JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as SyncState;
  } catch {
    throw new ItemError('ErrorInvalidSyncStateData', 'Synchronization state data is corrupt or otherwise invalid.');
  }
  if (state.f !== folderId || state.e !== box.syncEpoch || typeof state.s !== 'number') throw new ItemError('ErrorInvalidSyncStateData', 'Synchronization state data is corrupt or otherwise invalid.');
  return state;
}

function writeState(state: SyncState): string {
  return Buffer.from(JSON.stringify(state)).toString('base64');
}

/** Answers a change operation, or undefined when `operation` is not one. */
export function answerChange(box: FakeMailbox, operation: string, op: Node, options: MailOptions): string | undefined {
  switch (operation) {
    case 'UpdateItem': {
      if (attr(op, 'SuppressReadReceipts') !== undefined && !versionAtLeast(options.version, 'Exchange2013')) throw new SoapFault('ErrorSchemaValidation', 'SuppressReadReceipts needs Exchange2013.');
      const neverOverwrite = attr(op, 'ConflictResolution') === 'NeverOverwrite';
      return wrap('UpdateItem', all(first(op, 'ItemChanges'), 'ItemChange').map((change) => responseMessage('UpdateItem', () => {
        const idNode = first(change, 'ItemId');
        const m = target(box, idNode, options);
        const key = attr(idNode, 'ChangeKey');
        if (neverOverwrite && key !== undefined && key !== m.changeKey) throw new ItemError('ErrorIrresolvableConflict', 'The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.');
        const updates = first(change, 'Updates');
        if (all(updates, 'AppendToItemField').length > 0) throw new ItemError('ErrorInvalidPropertyAppend', 'This property does not support append.');
        for (const set of all(updates, 'SetItemField')) setField(m, set, false, options.version);
        for (const del of all(updates, 'DeleteItemField')) setField(m, del, true, options.version);
        box.changed(m);
        return `<m:Items><t:Message>${idXml(m)}</t:Message></m:Items><m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>`;
      })));
    }
    case 'MoveItem': {
      const to = first(op, 'ToFolderId');
      const kind = first(to, 'FolderId') ? 'FolderId' : 'DistinguishedFolderId';
      const asked = first(op, 'ReturnNewItemIds');
      if (asked && !versionAtLeast(options.version, 'Exchange2010_SP1')) throw new SoapFault('ErrorSchemaValidation', 'ReturnNewItemIds needs Exchange2010_SP1.');
      // before 2010 SP1 Exchange answered the new ids unasked; since, only when asked
      const returnIds = asked ? textOf(asked) === 'true' : !versionAtLeast(options.version, 'Exchange2010_SP1');
      return wrap('MoveItem', all(first(op, 'ItemIds'), 'ItemId').map((node) => responseMessage('MoveItem', () => {
        const m = target(box, node, options);
        let folder;
        try {
          folder = folderFrom(box, first(to, kind)!, kind);
        } catch {
          throw new ItemError('ErrorToFolderNotFound', 'The destination folder could not be found.');
        }
        box.move(m, folder);
        return returnIds ? `<m:Items><t:Message>${idXml(m)}</t:Message></m:Items>` : '<m:Items/>';
      })));
    }
    case 'DeleteItem': {
      const type = attr(op, 'DeleteType');
      if (type !== 'HardDelete' && type !== 'SoftDelete' && type !== 'MoveToDeletedItems') throw new SoapFault('ErrorSchemaValidation', `DeleteType ${type} is not valid.`);
      if (attr(op, 'SuppressReadReceipts') !== undefined && !versionAtLeast(options.version, 'Exchange2013')) throw new SoapFault('ErrorSchemaValidation', 'SuppressReadReceipts needs Exchange2013.');
      return wrap('DeleteItem', all(first(op, 'ItemIds'), 'ItemId').map((node) => responseMessage('DeleteItem', () => {
        const m = target(box, node, options);
        if (type === 'MoveToDeletedItems') box.move(m, box.folder('deleteditems'));
        else box.remove(m);
        return '';
      })));
    }
    case 'SyncFolderItems': {
      const max = Number(textOf(first(op, 'MaxChangesReturned')));
      if (!Number.isInteger(max) || max < 1 || max > 512) throw new SoapFault('ErrorInvalidSyncStateData', 'MaxChangesReturned must be 1 to 512.');
      if (first(first(op, 'ItemShape'), 'AdditionalProperties')) throw new SoapFault('ErrorInvalidOperation', 'The fake syncs with IdOnly shapes only.');
      const ids: [string, Node][] = ['FolderId', 'DistinguishedFolderId'].flatMap((k) => all(first(op, 'SyncFolderId'), k).map((n): [string, Node] => [k, n]));
      return wrap('SyncFolderItems', [responseMessage('SyncFolderItems', () => {
        const [kind, node] = ids[0] ?? [];
        if (!kind || !node) throw new SoapFault('ErrorSchemaValidation', 'SyncFolderId is missing.');
        const folder = (() => {
          try {
            return folderFrom(box, node, kind);
          } catch {
            throw new ItemError('ErrorSyncFolderNotFound', 'The specified folder could not be found in the store.');
          }
        })();
        const state = readState(box, folder.id, textOf(first(op, 'SyncState')));
        let changes: string[];
        let next: SyncState;
        let last: boolean;
        if (!state || state.o !== undefined) {
          // the initial sync: what the folder held when it began, as created, in pages
          const begin = state ?? { f: folder.id, s: box.seq, e: box.syncEpoch, o: 0 };
          const rest = box.messages.filter((m) => m.folderId === folder.id && m.seq <= begin.s && m.seq > begin.o!).sort((a, b) => a.seq - b.seq);
          const page = rest.slice(0, max);
          last = page.length === rest.length;
          changes = page.map((m) => `<t:Create><t:Message>${idXml(m)}</t:Message></t:Create>`);
          next = last ? { f: folder.id, s: begin.s, e: box.syncEpoch } : { ...begin, o: page.at(-1)!.seq };
        } else {
          // what entered since (and is still there), and what left of what had been there
          const entered = box.messages.filter((m) => m.folderId === folder.id && m.seq > state.s).map((m) => ({ seq: m.seq, xml: `<t:Create><t:Message>${idXml(m)}</t:Message></t:Create>` }));
          const left = box.changes
            .filter((c) => c.folderId === folder.id && c.kind === 'delete' && c.seq > state.s && (c.enteredSeq ?? 0) <= state.s)
            .map((c) => ({ seq: c.seq, xml: `<t:Delete><t:ItemId Id="${esc(c.itemId)}" ChangeKey="AAAAAA=="/></t:Delete>` }));
          const ordered = [...entered, ...left].sort((a, b) => a.seq - b.seq);
          const page = ordered.slice(0, max);
          last = page.length === ordered.length;
          changes = page.map((c) => c.xml);
          next = { f: folder.id, s: last ? box.seq : page.at(-1)!.seq, e: box.syncEpoch };
        }
        return `<m:SyncState>${writeState(next)}</m:SyncState><m:IncludesLastItemInRange>${last}</m:IncludesLastItemInRange><m:Changes>${changes.join('')}</m:Changes>`;
      })]);
    }
    default:
      return undefined;
  }
}
