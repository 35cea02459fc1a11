import type { SpecialUse } from '../../domain/mail.js';

/**
 * How an Exchange folder tree reads as paths. A path is the display names from the mailbox root ("Top of
 * Information Store", msgfolderroot) joined with "/"; a "/" or "\" inside a display name is escaped with "\"
 * ("Q1\/Q2"). The well-known folders have fixed, English paths whatever the mailbox's language ("Inbox",
 * not "Posteingang"), and their usual other names reach them too ("INBOX", "Sent", "Trash", "Junk"), so a bot
 * written against one mailbox works against another. Their subfolders hang below those paths ("Inbox/Invoices").
 */

export interface WellKnownFolder {
  /** The DistinguishedFolderId (lower-case, as on the wire). */
  key: string;
  /** Its path in this service. */
  path: string;
  specialUse: SpecialUse | null;
  /** Lower-case names that also reach it (the path itself included). */
  aliases: readonly string[];
}

export const WELL_KNOWN_FOLDERS: readonly WellKnownFolder[] = [
  { key: 'inbox', path: 'Inbox', specialUse: 'inbox', aliases: ['inbox'] },
  { key: 'sentitems', path: 'Sent Items', specialUse: 'sent', aliases: ['sent items', 'sent', 'sent mail'] },
  { key: 'drafts', path: 'Drafts', specialUse: 'drafts', aliases: ['drafts'] },
  { key: 'deleteditems', path: 'Deleted Items', specialUse: 'trash', aliases: ['deleted items', 'trash', 'deleted'] },
  { key: 'junkemail', path: 'Junk Email', specialUse: 'junk', aliases: ['junk email', 'junk e-mail', 'junk', 'spam'] },
  { key: 'archive', path: 'Archive', specialUse: 'archive', aliases: ['archive'] },
  { key: 'outbox', path: 'Outbox', specialUse: null, aliases: ['outbox'] },
];

export const PATH_DELIMITER = '/';

/** The well-known folder a path's first segment names, if any. */
export function wellKnownByName(segment: string): WellKnownFolder | undefined {
  const lower = segment.toLowerCase();
  return WELL_KNOWN_FOLDERS.find((f) => f.aliases.includes(lower));
}

/** One display name as a path segment. */
export function escapeSegment(name: string): string {
  return name.replace(/[\\/]/g, (c) => `\\${c}`);
}

/** The display names of a path; undefined when it has an empty segment or a dangling "\". */
export function splitPath(path: string): string[] | undefined {
  const segments: string[] = [];
  let current = '';
  for (let i = 0; i < path.length; i += 1) {
    const c = path[i]!;
    if (c === '\\') {
      const next = path[i + 1];
      if (next === undefined) return undefined;
      current += next;
      i += 1;
    } else if (c === PATH_DELIMITER) {
      segments.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  segments.push(current);
  return segments.every((s) => s.length > 0) ? segments : undefined;
}

/** A path below `parent` ("" = the root). */
export function childPath(parent: string, displayName: string): string {
  return parent ? `${parent}${PATH_DELIMITER}${escapeSegment(displayName)}` : escapeSegment(displayName);
}
