import type * as EwsApi from 'ews-javascript-api';
import { AppError } from '../../errors.js';
import type { Folder } from '../../domain/mail.js';
import type { EwsRequest } from './context.js';
import { prop } from './item-mapping.js';
import { xmlText } from './xml-text.js';
import { PATH_DELIMITER, WELL_KNOWN_FOLDERS, childPath, splitPath, wellKnownByName, type WellKnownFolder } from './folder-paths.js';

/** A folder the service resolved: its EWS FolderId and its path here. */
export interface ResolvedFolder {
  id: string;
  path: string;
}

/** FindFolder pages of this many; a mailbox's folder list stops at MAX_FOLDERS (a bound, logged when hit). */
const FOLDER_PAGE = 500;
const MAX_FOLDERS = 10_000;
/** Deeper than any Outlook lets one nest; a bound on the walk up from a message's folder. */
const MAX_DEPTH = 64;

/** Folder classes of mail folders; a folder without a class is taken as mail too (IMAP-created ones). */
function isMailFolder(folderClass: string | null): boolean {
  return folderClass === null || folderClass === '' || /^IPF\.(Note|Imap)(\.|$)/i.test(folderClass);
}

/**
 * The folders of one mailbox as paths (see folder-paths.ts). The ids of the well-known folders never change,
 * so they are read once per session (one GetFolder); the Archive, which the library cannot name that way,
 * is learned from the folder list (Exchange 2013+), and until then reached by its display name. Everything
 * else is asked for when needed: the tree changes under a running session.
 */
export class EwsFolders {
  readonly #request: EwsRequest;
  readonly #exchange2013: boolean;
  #wellKnown: Promise<Map<string, WellKnownFolder | 'root'>> | undefined;

  constructor(request: EwsRequest, exchange2013: boolean) {
    this.#request = request;
    this.#exchange2013 = exchange2013;
  }

  /** FolderId -> the well-known folder it is (or the root). */
  wellKnown(): Promise<Map<string, WellKnownFolder | 'root'>> {
    this.#wellKnown ??= this.#readWellKnown();
    this.#wellKnown.catch(() => (this.#wellKnown = undefined));
    return this.#wellKnown;
  }

  /** The FolderId of a well-known folder (its DistinguishedFolderId key, e.g. "deleteditems"), if the mailbox has it. */
  async wellKnownId(key: string): Promise<string | undefined> {
    for (const [id, folder] of await this.wellKnown()) if (folder !== 'root' && folder.key === key) return id;
    return undefined;
  }

  /** Every mail folder of the mailbox: FindFolder (deep) from the root, in pages. */
  async list(onTruncated: (count: number) => void): Promise<Folder[]> {
    const wellKnown = await this.wellKnown();
    const all: { id: string; parent: string | null; name: string; folderClass: string | null; distinguished: string | null }[] = [];
    let offset = 0;
    for (;;) {
      const page = await this.#request('FindFolder', async (service, ews) => {
        const view = new ews.FolderView(FOLDER_PAGE, offset, ews.OffsetBasePoint.Beginning);
        view.Traversal = ews.FolderTraversal.Deep;
        const props = [ews.FolderSchema.DisplayName, ews.FolderSchema.ParentFolderId, ews.FolderSchema.FolderClass];
        // Exchange 2013 names the well-known folders in DistinguishedFolderId: the only way to learn the Archive's
        if (this.#exchange2013) props.push(ews.FolderSchema.WellKnownFolderName);
        view.PropertySet = new ews.PropertySet(ews.BasePropertySet.IdOnly, props);
        const found = await service.FindFolders(ews.WellKnownFolderName.MsgFolderRoot, view);
        if (!found) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS FindFolder returned no answer');
        return {
          more: found.MoreAvailable,
          next: found.NextPageOffset,
          folders: found.Folders.map((f) => ({
            id: f.Id.UniqueId,
            parent: f.ParentFolderId?.UniqueId ?? null,
            name: f.DisplayName ?? '',
            folderClass: f.FolderClass ?? null,
            distinguished: this.#exchange2013 ? (prop<string>(f, ews.FolderSchema.WellKnownFolderName) ?? null) : null,
          })),
        };
      }, 'folder');
      all.push(...page.folders);
      if (!page.more || page.folders.length === 0) break;
      if (all.length >= MAX_FOLDERS) {
        onTruncated(all.length);
        break;
      }
      offset = page.next ?? offset + page.folders.length;
    }
    for (const f of all) {
      const wk = WELL_KNOWN_FOLDERS.find((w) => w.key === f.distinguished?.toLowerCase());
      if (wk && !wellKnown.has(f.id)) wellKnown.set(f.id, wk);
    }

    const byId = new Map(all.map((f) => [f.id, f]));
    const paths = new Map<string, string>();
    const pathOf = (id: string, depth: number): string => {
      const known = paths.get(id);
      if (known !== undefined) return known;
      const wk = wellKnown.get(id);
      const f = byId.get(id);
      let path: string;
      if (wk === 'root' || !f || depth > MAX_DEPTH) path = '';
      else if (wk) path = wk.path;
      else path = childPath(f.parent ? pathOf(f.parent, depth + 1) : '', f.name);
      paths.set(id, path);
      return path;
    };
    return all
      .filter((f) => isMailFolder(f.folderClass) || wellKnown.get(f.id))
      .map((f) => {
        const wk = wellKnown.get(f.id);
        return {
          path: pathOf(f.id, 0),
          name: f.name,
          delimiter: PATH_DELIMITER,
          specialUse: wk && wk !== 'root' ? wk.specialUse : null,
        };
      });
  }

  /** The folder a path names: a well-known name first, then display names walked down (one FindFolder each). */
  async resolve(path: string): Promise<ResolvedFolder> {
    const segments = splitPath(path);
    if (!segments) throw notFound(path);
    const wellKnown = await this.wellKnown();
    let current: ResolvedFolder | undefined;
    const wk = wellKnownByName(segments[0]!);
    if (wk) {
      const id = [...wellKnown].find(([, v]) => v !== 'root' && v.key === wk.key)?.[0];
      if (id) current = { id, path: wk.path };
    }
    let rest = segments;
    if (current) rest = segments.slice(1);
    else current = { id: [...wellKnown].find(([, v]) => v === 'root')?.[0] ?? '', path: '' };
    if (!current.id) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS GetFolder did not return the mailbox root');
    for (const segment of rest) {
      const parent: ResolvedFolder = current;
      const children = await this.#request('FindFolder', async (service, ews) => {
        const view = new ews.FolderView(10);
        view.Traversal = ews.FolderTraversal.Shallow;
        view.PropertySet = new ews.PropertySet(ews.BasePropertySet.IdOnly, [ews.FolderSchema.DisplayName]);
        return service.FindFolders(new ews.FolderId(parent.id), new ews.SearchFilter.IsEqualTo(ews.FolderSchema.DisplayName, xmlText(segment)), view);
      }, 'folder');
      // Exchange compares display names without regard to case; an exact match wins over another casing
      const candidates = (children?.Folders ?? []).filter((f) => (f.DisplayName ?? '').toLowerCase() === segment.toLowerCase());
      const match = candidates.find((f) => f.DisplayName === segment) ?? candidates[0];
      if (!match) throw notFound(path);
      const id = match.Id.UniqueId;
      const known = wellKnown.get(id);
      current = { id, path: known && known !== 'root' ? known.path : childPath(parent.path, match.DisplayName) };
    }
    return current;
  }

  /** The path of the folder with this id (a message's ParentFolderId): well-known, or walked up with GetFolder. */
  async pathOf(folderId: string): Promise<string> {
    const wellKnown = await this.wellKnown();
    const names: string[] = [];
    let id = folderId;
    for (let depth = 0; depth < MAX_DEPTH; depth += 1) {
      const known = wellKnown.get(id);
      if (known) return [known === 'root' ? '' : known.path, ...names].filter((s) => s !== '').join(PATH_DELIMITER);
      const folderIdNow = id;
      const folder = await this.#request('GetFolder', async (service, ews) =>
        ews.Folder.Bind(service, new ews.FolderId(folderIdNow), new ews.PropertySet(ews.BasePropertySet.IdOnly, [ews.FolderSchema.DisplayName, ews.FolderSchema.ParentFolderId])), 'folder');
      if (!folder) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS GetFolder returned no folder');
      names.unshift(childPath('', folder.DisplayName ?? ''));
      const parent = folder.ParentFolderId?.UniqueId;
      if (!parent) break;
      id = parent;
    }
    return names.join(PATH_DELIMITER);
  }

  async #readWellKnown(): Promise<Map<string, WellKnownFolder | 'root'>> {
    const map = new Map<string, WellKnownFolder | 'root'>();
    const read = (keys: readonly string[]) =>
      this.#request('GetFolder', async (service, ews) => {
        // the library exports GetFolderRequest without types; it is the only way to ask for several folders at once
        const GetFolderRequest = (ews as unknown as { GetFolderRequest: new (s: EwsApi.ExchangeService, mode: EwsApi.ServiceErrorHandling) => GetFolderBatch }).GetFolderRequest;
        const request = new GetFolderRequest(service, ews.ServiceErrorHandling.ReturnErrors);
        const names = ews.WellKnownFolderName as unknown as Record<string, number>;
        const ids = keys.map((key) => new ews.FolderId(names[Object.keys(names).find((n) => n.toLowerCase() === key) ?? ''] as EwsApi.WellKnownFolderName));
        request.FolderIds.AddRange(ids);
        request.PropertySet = new ews.PropertySet(ews.BasePropertySet.IdOnly);
        const responses = await request.Execute();
        if (!responses) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS GetFolder returned no answer');
        return responses.Responses.map((r): string | null => (r.Result === ews.ServiceResult.Success ? (r.Folder?.Id?.UniqueId ?? null) : null));
      });
    // "archive" is left out: the library refuses it as a DistinguishedFolderId (list() learns it instead)
    const core = ['msgfolderroot', ...WELL_KNOWN_FOLDERS.filter((f) => f.key !== 'archive').map((f) => f.key)];
    const ids = await read(core);
    ids.forEach((id, i) => {
      if (!id) return;
      const key = core[i]!;
      map.set(id, key === 'msgfolderroot' ? 'root' : WELL_KNOWN_FOLDERS.find((f) => f.key === key)!);
    });
    if (![...map.values()].includes('root')) throw new AppError('MAIL_PROTOCOL_ERROR', 'EWS GetFolder did not return the mailbox root');
    return map;
  }
}

interface GetFolderBatch {
  FolderIds: { AddRange(ids: EwsApi.FolderId[]): void };
  PropertySet: EwsApi.PropertySet;
  Execute(): Promise<EwsApi.ServiceResponseCollection<EwsApi.GetFolderResponse> | null>;
}

function notFound(path: string): AppError {
  return new AppError('FOLDER_NOT_FOUND', `no folder "${path}" in this mailbox (see GET /folders; paths are display names joined with "/")`);
}
