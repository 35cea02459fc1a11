import { AppError } from '../../errors.js';
import type { ImapAccess, OpenFolder } from './access.js';

/** Where messages move to: the folder, and what a new id needs (UIDVALIDITY), and where new UIDs start (UIDNEXT). */
export interface Target {
  path: string;
  uidValidity: bigint;
  uidNext: number;
}

const has = (folder: OpenFolder, capability: string) => folder.client.capabilities.has(capability);

/**
 * Moves `uids` of the open (read-write) folder to `target`: UID MOVE (RFC 6851) where the server offers it;
 * else UID COPY, then \Deleted and UID EXPUNGE of exactly these UIDs (expunge()). Answers the new UIDs the server
 * told (COPYUID, RFC 4315), which is none on a server without UIDPLUS.
 */
export async function transfer(access: ImapAccess, folder: OpenFolder, uids: number[], target: Target): Promise<Map<number, number>> {
  const client = folder.client;
  if (has(folder, 'MOVE')) {
    const result = await access.cmd('MOVE', (c) => c.messageMove(uids, target.path, { uid: true }));
    if (!result) throw new AppError('MAIL_PROTOCOL_ERROR', 'the IMAP server refused the MOVE');
    return result.uidMap ?? new Map();
  }
  // checked before the copy: a move that could not remove the originals would leave two of each
  if (!has(folder, 'UIDPLUS')) await refuseIfOthersDeleted(access, folder, uids);
  const copied = await access.cmd('COPY', () => client.messageCopy(uids, target.path, { uid: true }));
  if (!copied) throw new AppError('MAIL_PROTOCOL_ERROR', 'the IMAP server refused the COPY');
  await expunge(access, folder, uids, true);
  return copied.uidMap ?? new Map();
}

/**
 * Removes `uids` of the open folder for good: STORE +FLAGS.SILENT \Deleted, then UID EXPUNGE of these UIDs only
 * (UIDPLUS), so that a message another client flagged \Deleted (and may still undelete) stays. A server without
 * UIDPLUS has only EXPUNGE, which removes every \Deleted message of the folder: it is sent only when no other
 * message is flagged \Deleted (UID SEARCH DELETED just before); else the call is refused with
 * MAIL_TEMPORARILY_UNAVAILABLE and nothing changes. What another client flags in the moment between that search
 * and the EXPUNGE is the one case left, which only UIDPLUS closes.
 */
export async function expunge(access: ImapAccess, folder: OpenFolder, uids: number[], checked = false): Promise<void> {
  if (!checked && !has(folder, 'UIDPLUS')) await refuseIfOthersDeleted(access, folder, uids);
  const ok = await access.cmd('EXPUNGE', (c) => c.messageDelete(uids, { uid: true }));
  if (!ok) throw new AppError('MAIL_PROTOCOL_ERROR', 'the IMAP server refused to expunge');
}

async function refuseIfOthersDeleted(access: ImapAccess, folder: OpenFolder, uids: number[]): Promise<void> {
  const ours = new Set(uids);
  const others = (await access.search(folder.client, { deleted: true })).filter((u) => !ours.has(u));
  if (others.length > 0) {
    throw new AppError(
      'MAIL_TEMPORARILY_UNAVAILABLE',
      `this IMAP server has no UIDPLUS, so removing messages expunges every message flagged \\Deleted in the folder, and ${others.length} other message(s) there are flagged \\Deleted by another client: nothing was changed; try again once they are expunged or undeleted`,
      { retryAfterSeconds: 60 },
    );
  }
}
