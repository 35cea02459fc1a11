import { AppError } from '../../errors.js';
import type { Folder, SpecialUse } from '../../domain/mail.js';
import type { GraphClient } from './client.js';
import { pagingOf, queryString } from './query.js';

/** A mail folder as Graph gives it ($select=id,displayName,parentFolderId,childFolderCount). */
export interface GraphFolder {
  id: string;
  displayName: string;
  parentFolderId?: string;
  childFolderCount?: number;
}

export interface FolderContext {
  client: GraphClient;
  /** https://<host>/v1.0/me or .../users/{id} */
  mailboxUrl: string;
  host: string;
  budgetMs: () => number;
}

/** Graph's well-known folder names (they work in any mailbox language) and the roles they stand for. */
const WELL_KNOWN: readonly [string, SpecialUse][] = [
  ['sentitems', 'sent'],
  ['drafts', 'drafts'],
  ['deleteditems', 'trash'],
  ['junkemail', 'junk'],
  ['archive', 'archive'],
];
const SELECT = 'id,displayName,parentFolderId,childFolderCount';
/** Bounds of one folder listing: a hostile or huge mailbox cannot make it endless. */
const MAX_FOLDERS = 5_000;
const MAX_DEPTH = 64;
const MAX_PAGES = 50;
/** Folder paths change rarely (a rename, a move); a cached answer is at most this old. */
const CACHE_MS = 300_000;

/** Graph's hierarchy has no delimiter of its own: paths join display names with "/". */
export const DELIMITER = '/';

function asFolder(value: unknown): GraphFolder | undefined {
  const f = value as Partial<GraphFolder> | null;
  if (typeof f !== 'object' || f === null || typeof f.id !== 'string' || f.id.length === 0 || f.id.length > 512 || typeof f.displayName !== 'string') return undefined;
  return {
    id: f.id,
    displayName: f.displayName.slice(0, 1024),
    ...(typeof f.parentFolderId === 'string' ? { parentFolderId: f.parentFolderId } : {}),
    ...(Number.isInteger(f.childFolderCount) ? { childFolderCount: f.childFolderCount } : {}),
  };
}

/**
 * The folder tree of one Graph mailbox: the listing with special uses, and the path <-> id mapping the
 * other operations need. A path is the display names from the top of the mailbox joined with "/"
 * ("Inbox/Invoices"); "INBOX" (any case) always names the Inbox, whatever its display name. Display
 * names may themselves contain "/": resolving matches the longest name that fits.
 */
export class GraphFolders {
  readonly #ctx: FolderContext;
  #inbox: GraphFolder | undefined;
  #special: Map<string, SpecialUse> | undefined;
  readonly #wellKnown = new Map<string, string>();
  readonly #paths = new Map<string, { path: string; at: number }>();
  readonly #ids = new Map<string, { id: string; path: string; at: number }>();

  constructor(ctx: FolderContext) {
    this.#ctx = ctx;
  }

  /** The Inbox as connect() read it: its id, display name, and (as its parent) the top of the mailbox. */
  setInbox(inbox: GraphFolder): void {
    this.#inbox = inbox;
    this.#remember(inbox.id, inbox.displayName);
  }

  /** Every folder, parents before their children, with Graph's well-known folders as special uses. */
  async list(): Promise<Folder[]> {
    const special = await this.#specialUses();
    const top = await this.#children(undefined);
    const seen = new Set<string>();
    const out: Folder[] = [];
    // breadth-first over levels, so that the requests of one level can run side by side (the mailbox
    // limiter keeps them within Graph's 4); the answer is then ordered parents-first, depth-first
    const childrenOf = new Map<string | undefined, GraphFolder[]>([[undefined, top]]);
    let level: { folder: GraphFolder; path: string }[] = [];
    const take = (folder: GraphFolder, parentPath: string | undefined) => {
      if (seen.has(folder.id)) return false;
      seen.add(folder.id);
      if (seen.size > MAX_FOLDERS) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${this.#ctx.host}: the mailbox has more than ${MAX_FOLDERS} folders`);
      const path = parentPath === undefined ? folder.displayName : `${parentPath}${DELIMITER}${folder.displayName}`;
      this.#remember(folder.id, path);
      level.push({ folder, path });
      return true;
    };
    childrenOf.set(undefined, top.filter((f) => take(f, undefined)));
    const pathOf = new Map<string, string>();
    for (let depth = 0; level.length > 0 && depth < MAX_DEPTH; depth++) {
      const current = level;
      level = [];
      for (const { folder, path } of current) pathOf.set(folder.id, path);
      const parents = current.filter(({ folder }) => (folder.childFolderCount ?? 1) > 0);
      const lists = await Promise.all(parents.map(({ folder }) => this.#children(folder.id)));
      parents.forEach(({ folder, path }, i) => childrenOf.set(folder.id, lists[i]!.filter((child) => take(child, path))));
    }
    const walk = (parent: string | undefined) => {
      for (const folder of childrenOf.get(parent) ?? []) {
        const role = folder.id === this.#inbox?.id ? 'inbox' : (special.get(folder.id) ?? null);
        out.push({ path: pathOf.get(folder.id)!, name: folder.displayName, delimiter: DELIMITER, specialUse: role });
        walk(folder.id);
      }
    };
    walk(undefined);
    return out;
  }

  /** The folder a path names, with its canonical path; FOLDER_NOT_FOUND when none does. */
  async resolve(path: string): Promise<{ id: string; path: string }> {
    const key = path.toLowerCase();
    const cached = this.#ids.get(key);
    if (cached && Date.now() - cached.at < CACHE_MS) return cached;
    let parent: { id: string | undefined; path: string | undefined } = { id: undefined, path: undefined };
    let rest = path;
    const inbox = /^inbox(?:\/|$)/i.exec(rest);
    if (inbox && this.#inbox) {
      parent = { id: this.#inbox.id, path: this.#inbox.displayName };
      rest = rest.slice(inbox[0].length);
    }
    for (let depth = 0; rest.length > 0; depth++) {
      if (depth >= MAX_DEPTH) throw this.#notFound(path);
      const children = await this.#children(parent.id);
      const lower = rest.toLowerCase();
      // the longest display name that is the whole rest or a prefix of it ending at a "/"; exact case first
      const fits = children
        .filter((c) => c.displayName.length > 0 && (lower === c.displayName.toLowerCase() || lower.startsWith(`${c.displayName.toLowerCase()}${DELIMITER}`)))
        .sort((a, b) => b.displayName.length - a.displayName.length || Number(rest.startsWith(b.displayName)) - Number(rest.startsWith(a.displayName)));
      const next = fits[0];
      if (!next) throw this.#notFound(path);
      const nextPath = parent.path === undefined ? next.displayName : `${parent.path}${DELIMITER}${next.displayName}`;
      parent = { id: next.id, path: nextPath };
      this.#remember(next.id, nextPath);
      rest = rest.slice(next.displayName.length + 1);
    }
    if (parent.id === undefined || parent.path === undefined) throw this.#notFound(path);
    const found = { id: parent.id, path: parent.path, at: Date.now() };
    this.#ids.set(key, found);
    return found;
  }

  /** The path of a folder id (a message's parentFolderId), walking up to the top of the mailbox. */
  async pathOf(id: string): Promise<string> {
    const names: string[] = [];
    let current: string | undefined = id;
    for (let depth = 0; current && depth < MAX_DEPTH; depth++) {
      const cached = this.#paths.get(current);
      if (cached && Date.now() - cached.at < CACHE_MS) {
        names.unshift(cached.path);
        break;
      }
      if (current === this.#inbox?.parentFolderId) break;
      let folder: GraphFolder | undefined;
      try {
        const answer = await this.#ctx.client.json({
          url: new URL(`${this.#ctx.mailboxUrl}/mailFolders/${encodeURIComponent(current)}?$select=${SELECT}`),
          budgetMs: this.#ctx.budgetMs(),
          item: 'folder',
          what: 'folder',
        });
        folder = asFolder(answer.body);
      } catch (err) {
        // a folder outside the visible tree (or gone meanwhile): the path is what was found below it
        if (err instanceof AppError && err.code === 'FOLDER_NOT_FOUND') break;
        throw err;
      }
      if (!folder) break;
      names.unshift(folder.displayName);
      current = folder.parentFolderId;
    }
    const path = names.join(DELIMITER);
    if (names.length > 0) this.#remember(id, path);
    return path;
  }

  /**
   * The id of a well-known folder ("deleteditems"); asked once per session (a well-known folder cannot
   * be deleted or renamed away). FOLDER_NOT_FOUND when the mailbox has none.
   */
  async wellKnown(name: string): Promise<string> {
    const cached = this.#wellKnown.get(name);
    if (cached) return cached;
    const answer = await this.#ctx.client.json({
      url: new URL(`${this.#ctx.mailboxUrl}/mailFolders/${name}?$select=${SELECT}`),
      budgetMs: this.#ctx.budgetMs(),
      item: 'folder',
      what: 'well-known folder',
    });
    const folder = asFolder(answer.body);
    if (!folder) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${this.#ctx.host}: the folder ${name} came without an id`);
    this.#wellKnown.set(name, folder.id);
    return folder.id;
  }

  /** After a folder turned out to be gone: forget what was cached. */
  forget(): void {
    this.#paths.clear();
    this.#ids.clear();
  }

  #remember(id: string, path: string): void {
    // a bound, not an LRU: the cache only saves requests
    if (this.#paths.size > MAX_FOLDERS) this.#paths.clear();
    this.#paths.set(id, { path, at: Date.now() });
  }

  #notFound(path: string): AppError {
    return new AppError('FOLDER_NOT_FOUND', `no folder "${path}" in this mailbox (GET /folders lists them; "/" separates levels)`);
  }

  /** The children of a folder (the top-level folders for undefined), following Graph's pages. */
  async #children(id: string | undefined): Promise<GraphFolder[]> {
    const base = id === undefined ? `${this.#ctx.mailboxUrl}/mailFolders` : `${this.#ctx.mailboxUrl}/mailFolders/${encodeURIComponent(id)}/childFolders`;
    let url: URL | undefined = new URL(`${base}?${queryString([['$top', '100'], ['$select', SELECT]])}`);
    const out: GraphFolder[] = [];
    const origin = new URL(this.#ctx.mailboxUrl).origin;
    for (let page = 0; url; page++) {
      if (page >= MAX_PAGES) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${this.#ctx.host}: a folder has more than ${MAX_PAGES} pages of child folders`);
      const answer = await this.#ctx.client.json({ url, budgetMs: this.#ctx.budgetMs(), ...(id ? { item: 'folder' as const } : {}), what: 'folders' });
      const body = answer.body as { value?: unknown; '@odata.nextLink'?: unknown } | undefined;
      if (!body || !Array.isArray(body.value)) throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${this.#ctx.host}: a folder listing came without a value array`);
      for (const item of body.value) {
        const folder = asFolder(item);
        if (folder) out.push(folder);
      }
      const next = body['@odata.nextLink'];
      if (next === undefined || next === null) break;
      pagingOf(next, origin, this.#ctx.host);
      url = new URL(next as string);
    }
    return out;
  }

  /** Graph v1.0 does not say which folder is which: the well-known names are asked once per session. */
  async #specialUses(): Promise<Map<string, SpecialUse>> {
    if (this.#special) return this.#special;
    const found = await Promise.all(
      WELL_KNOWN.map(async ([name, role]) => {
        try {
          const answer = await this.#ctx.client.json({
            url: new URL(`${this.#ctx.mailboxUrl}/mailFolders/${name}?$select=id`),
            budgetMs: this.#ctx.budgetMs(),
            item: 'folder',
            what: 'well-known folder',
          });
          const id = (answer.body as { id?: unknown } | undefined)?.id;
          return typeof id === 'string' ? ([id, role] as const) : undefined;
        } catch (err) {
          // a mailbox without an archive folder (it appears with the first One-Click Archive)
          if (err instanceof AppError && err.code === 'FOLDER_NOT_FOUND') return undefined;
          throw err;
        }
      }),
    );
    this.#special = new Map(found.filter((f) => f !== undefined));
    return this.#special;
  }
}
