import type { FetchMessageObject, ImapFlow } from 'imapflow';
import {
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
import { AppError, isAppError } from '../../errors.js';
import { ImapAccess, MARKS_QUERY, SUMMARY_QUERY, idOf, summaryOf, type OpenFolder } from './access.js';
import { encodeMessageId, messageCheck } from './ids.js';
import { matchesNothing } from './search.js';
import { readStructure } from './structure.js';
import { expunge, transfer, type Target } from './transfer.js';

/**
 * Bounds of one command of a bulk change. A UID set is sent packed ("1:500,502"), so mail that arrived together
 * makes a short command however many messages it holds: a chunk ends at CHUNK_MAX UIDs or when its packed set
 * reaches CHUNK_SET_CHARS (within every server's command line limit seen: Dovecot 64 KB, and RFC 7162's advice
 * of 8,192 octets). Each chunk is one FETCH of its ids (moves) and one STORE / MOVE: fewer, larger commands
 * cost the server less than many small ones (bench/mail-change.ts).
 */
export const CHUNK_MAX = 10_000;
const CHUNK_SET_CHARS = 8000;

/**
 * Changing mail through the session's IMAP connection: flags with UID STORE, moves with UID MOVE (or UID COPY,
 * then \Deleted and UID EXPUNGE where the server has no MOVE: transfer.ts), deletes to the Trash or for good,
 * and the claim keyword. Every single-message change first fetches the message and compares its check with
 * the id's (ids.ts): an id whose message was moved or deleted answers MESSAGE_NOT_FOUND and never acts on
 * another message, so repeating a move or a delete whose answer was lost is safe. Bulk changes act on the UID
 * set of one UID SEARCH, in chunks of CHUNK, and report what they did when they stop midway.
 */
export class ImapChanges implements MessageFlagger, MessageMover, MessageDeleter, MessageTagger {
  readonly #access: ImapAccess;
  /** The Trash folder's path, null when the mailbox has none; found once per connection (reset()). */
  #trash: string | null | undefined;

  constructor(access: ImapAccess) {
    this.#access = access;
  }

  /** Forgets what was learnt of the mailbox (a new connection may see other folders). */
  reset(): void {
    this.#trash = undefined;
  }

  async update(id: string, change: FlagChange): Promise<MessageSummary> {
    const { folder, ref } = await this.#access.openMessage(id, false);
    try {
      const row = await this.#access.fetchChecked(folder, ref, SUMMARY_QUERY);
      await this.#store(folder.client, [ref.uid], change);
      const summary = summaryOf(folder.mailbox, row, readStructure(row.bodyStructure));
      return { ...summary, ...(change.seen !== undefined ? { seen: change.seen } : {}), ...(change.flagged !== undefined ? { flagged: change.flagged } : {}) };
    } finally {
      await folder.release();
    }
  }

  async updateMany(path: string, where: MessageFilter, change: FlagChange): Promise<{ updated: number }> {
    if (matchesNothing(where)) return { updated: 0 };
    const folder = await this.#access.open(path, false);
    let updated = 0;
    try {
      const uids = await this.#access.matching(folder.client, where);
      for (const chunk of chunks(uids)) {
        await this.#store(folder.client, chunk, change);
        updated += chunk.length;
      }
      return { updated };
    } catch (err) {
      throw updated > 0 ? partialFailure(asAppError(err), { updated }) : err;
    } finally {
      await folder.release();
    }
  }

  async move(id: string, to: string): Promise<{ id: string; folder: string }> {
    const { folder, ref } = await this.#access.openMessage(id, false);
    try {
      const row = await this.#access.fetchChecked(folder, ref);
      const target = await this.#target(folder, to);
      const map = await transfer(this.#access, folder, [ref.uid], target);
      const newUid = map.get(ref.uid) ?? (await this.#findMoved(row, target));
      return { id: encodeMessageId(target.path, target.uidValidity, newUid, messageCheck(marksOf(row))), folder: target.path };
    } finally {
      await folder.release();
    }
  }

  async moveMany(path: string, where: MessageFilter, to: string): Promise<{ moved: number; messages: MovedMessage[] }> {
    if (matchesNothing(where)) return { moved: 0, messages: [] };
    const folder = await this.#access.open(path, false);
    const messages: MovedMessage[] = [];
    try {
      const target = await this.#target(folder, to);
      const uids = await this.#access.matching(folder.client, where);
      for (const chunk of chunks(uids)) {
        // the ids are made before the move, from what a move keeps (Message-ID, INTERNALDATE, size)
        const rows = await this.#access.cmd('FETCH', (c) => c.fetchAll(chunk, MARKS_QUERY, { uid: true }));
        if (!rows.length) continue; // expunged by someone else since the search
        const map = await transfer(this.#access, folder, rows.map((r) => r.uid), target);
        for (const row of rows) {
          const newUid = map.get(row.uid);
          messages.push({ id: idOf(folder.mailbox, row), newId: newUid === undefined ? null : encodeMessageId(target.path, target.uidValidity, newUid, messageCheck(marksOf(row))) });
        }
      }
      return { moved: messages.length, messages };
    } catch (err) {
      throw messages.length > 0 ? partialFailure(asAppError(err), { moved: messages.length, messages }) : err;
    } finally {
      await folder.release();
    }
  }

  async delete(id: string, options: { permanent: boolean }): Promise<void> {
    const { folder, ref } = await this.#access.openMessage(id, false);
    try {
      await this.#access.fetchChecked(folder, ref);
      const trash = options.permanent ? null : await this.#trashOf(folder);
      if (trash) await transfer(this.#access, folder, [ref.uid], trash);
      else await expunge(this.#access, folder, [ref.uid]);
    } finally {
      await folder.release();
    }
  }

  async deleteMany(path: string, where: MessageFilter, options: { permanent: boolean }): Promise<{ deleted: number }> {
    if (matchesNothing(where)) return { deleted: 0 };
    const folder = await this.#access.open(path, false);
    let deleted = 0;
    try {
      const trash = options.permanent ? null : await this.#trashOf(folder);
      const uids = await this.#access.matching(folder.client, where);
      for (const chunk of chunks(uids)) {
        if (trash) await transfer(this.#access, folder, chunk, trash);
        else await expunge(this.#access, folder, chunk);
        deleted += chunk.length;
      }
      return { deleted };
    } catch (err) {
      throw deleted > 0 ? partialFailure(asAppError(err), { deleted }) : err;
    } finally {
      await folder.release();
    }
  }

  /**
   * Adds the claim keyword. A server that keeps no keywords of its own naming (PERMANENTFLAGS without \*, and
   * without this keyword) would keep it for this connection only (RFC 9051 7.1): nothing is stored then, and the
   * claims rely on the finished ids the service remembers (domain/claims.ts), as for POP3.
   */
  async tag(id: string, keyword: string): Promise<void> {
    const { folder, ref } = await this.#access.openMessage(id, false);
    try {
      const row = await this.#access.fetchChecked(folder, ref, { flags: true });
      if (row.flags?.has(keyword) || !keepsKeyword(folder, keyword)) return;
      const ok = await this.#access.cmd('STORE', (c) => c.messageFlagsAdd(String(ref.uid), [keyword], { uid: true }));
      if (!ok) throw refused('STORE');
    } finally {
      await folder.release();
    }
  }

  /** UID STORE +FLAGS / -FLAGS for one change on a UID set: at most two commands. */
  async #store(client: ImapFlow, uids: number[], change: FlagChange): Promise<void> {
    const add = [...(change.seen === true ? ['\\Seen'] : []), ...(change.flagged === true ? ['\\Flagged'] : [])];
    const remove = [...(change.seen === false ? ['\\Seen'] : []), ...(change.flagged === false ? ['\\Flagged'] : [])];
    if (add.length && !(await this.#access.cmd('STORE', () => client.messageFlagsAdd(uids, add, { uid: true })))) throw refused('STORE');
    if (remove.length && !(await this.#access.cmd('STORE', () => client.messageFlagsRemove(uids, remove, { uid: true })))) throw refused('STORE');
  }

  /** The target folder of a move, with its UIDVALIDITY and UIDNEXT (STATUS); FOLDER_NOT_FOUND when there is none. */
  async #target(source: OpenFolder, to: string): Promise<Target> {
    const { mailbox } = source;
    if (to === mailbox.path) return { path: mailbox.path, uidValidity: mailbox.uidValidity, uidNext: mailbox.uidNext };
    const status = await this.#access.cmd('STATUS', async (c) => {
      try {
        return await c.status(to, { uidValidity: true, uidNext: true });
      } catch (err) {
        // a NO to STATUS (imapflow: code NotFound): no such folder, or none this user may see
        const e = err as { responseStatus?: unknown; code?: unknown };
        if (e.responseStatus === 'NO' || e.code === 'NotFound') return false;
        throw err;
      }
    });
    if (!status || status.uidValidity === undefined || status.uidNext === undefined) throw folderNotFound(to);
    return { path: status.path, uidValidity: status.uidValidity, uidNext: status.uidNext };
  }

  /** The Trash: the folder with special use \Trash, else one with a well-known name (imapflow's list); null without one. */
  async #trashOf(source: OpenFolder): Promise<Target | null> {
    if (this.#trash === undefined) {
      const entries = await this.#access.cmd('LIST', (c) => c.list());
      this.#trash = entries.find((e) => e.specialUse === '\\Trash' && ![...e.flags].some((f) => /^\\(noselect|nonexistent)$/i.test(f)))?.path ?? null;
    }
    // a message already in the Trash goes for good: moving it there again would change nothing
    if (this.#trash === null || this.#trash === source.mailbox.path) return null;
    try {
      return await this.#target(source, this.#trash);
    } catch (err) {
      if (isAppError(err) && err.code === 'FOLDER_NOT_FOUND') this.#trash = undefined;
      throw err;
    }
  }

  /**
   * The new UID of a moved message on a server that does not tell (no COPYUID: no UIDPLUS): the message in the
   * target, at or above the UIDNEXT it had before the move, with the same Message-ID and check. Without a
   * Message-ID, or when none or several match, the move is done but its new id unknown: MAIL_PROTOCOL_ERROR says so.
   */
  async #findMoved(row: FetchMessageObject, target: Target): Promise<number> {
    const messageId = row.envelope?.messageId;
    const lost = () =>
      new AppError('MAIL_PROTOCOL_ERROR', `the message was moved to "${target.path.slice(0, 200)}", but the server did not tell its new UID (no UIDPLUS) and it could not be found by its Message-ID: list that folder to find it`);
    if (!messageId) throw lost();
    const found = await this.#access.open(target.path, true);
    try {
      const uids = await this.#access.search(found.client, { uid: `${target.uidNext}:*`, header: { 'message-id': messageId } });
      const rows = uids.length ? await this.#access.cmd('FETCH', (c) => c.fetchAll(uids, MARKS_QUERY, { uid: true })) : [];
      const check = messageCheck(marksOf(row));
      const same = rows.filter((r) => r.uid >= target.uidNext && messageCheck(marksOf(r)) === check);
      if (same.length !== 1) throw lost();
      return same[0]!.uid;
    } finally {
      await found.release();
    }
  }
}

const marksOf = (row: FetchMessageObject) => ({ messageId: row.envelope?.messageId, internalDate: row.internalDate, size: row.size });

/** Whether keywords stored in the open folder outlive the connection (PERMANENTFLAGS has \* or the keyword). */
function keepsKeyword(folder: OpenFolder, keyword: string): boolean {
  const permanent = folder.mailbox.permanentFlags;
  return permanent !== undefined && (permanent.has('\\*') || permanent.has(keyword));
}

/** `uids` (ascending) in chunks of at most CHUNK_MAX whose packed UID set stays within CHUNK_SET_CHARS. */
export function* chunks(uids: number[]): Generator<number[]> {
  let start = 0;
  let chars = 0;
  for (let i = 0; i < uids.length; i++) {
    // a UID continuing a run costs nothing until the run ends (":n" at most 11 characters); a new one ",n"
    const continues = i > start && uids[i] === uids[i - 1]! + 1;
    const cost = continues ? 0 : String(uids[i]).length + 12;
    if (i > start && (i - start >= CHUNK_MAX || chars + cost > CHUNK_SET_CHARS)) {
      yield uids.slice(start, i);
      start = i;
      chars = String(uids[i]).length + 12;
      continue;
    }
    chars += cost;
  }
  if (start < uids.length) yield uids.slice(start);
}

function asAppError(err: unknown): AppError {
  return isAppError(err) ? err : new AppError('INTERNAL_ERROR', 'unexpected error', {}, { cause: err });
}

function folderNotFound(path: string): AppError {
  return new AppError('FOLDER_NOT_FOUND', `no folder "${path.slice(0, 200)}" to move to`);
}

export function refused(command: string): AppError {
  return new AppError('MAIL_PROTOCOL_ERROR', `the IMAP server refused ${command}`);
}
