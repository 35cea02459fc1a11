import type { MessageDeleter, MessageFilter } from '../../domain/mail.js';
import { AppError } from '../../errors.js';
import { HEADER_MAX_BYTES } from '../../mime/limits.js';
import { parseMessage } from '../../mime/parse.js';
import type { Pop3Link } from './link.js';
import { decodeMessageId, find, matches, noFlags, notFound } from './messages.js';

export interface Pop3ChangesContext {
  /** A logged-in connection that the caller ends: here always with commit() (QUIT), or destroy() on failure. */
  open(): Promise<Pop3Link>;
}

/**
 * Deleting from a POP3 maildrop. POP3 has no folders and no Trash: a delete is always for good (`permanent`
 * changes nothing). DELE only marks a message; the server removes it when the client QUITs (RFC 1939 6, the
 * UPDATE state), and forgets the marks when the connection just ends. So every delete is one login of its own:
 * UIDL to find the message's number, DELE, QUIT, and the answer comes after the server's +OK to QUIT, when the
 * message is gone for every later login. A QUIT the server refuses (or a connection lost before it) deletes
 * nothing, and the call fails with that error: retrying is safe.
 */
export class Pop3Changes implements MessageDeleter {
  readonly #ctx: Pop3ChangesContext;

  constructor(ctx: Pop3ChangesContext) {
    this.#ctx = ctx;
  }

  async delete(id: string): Promise<void> {
    const uid = decodeMessageId(id);
    if (uid === undefined) throw notFound();
    await this.#inOneLogin(async (link) => {
      await link.dele((await find(link, uid)).n);
      return 1;
    });
  }

  async deleteMany(folder: string, where: MessageFilter): Promise<{ deleted: number }> {
    if (folder.toUpperCase() !== 'INBOX') throw new AppError('FOLDER_NOT_FOUND', 'POP3 has one folder: INBOX');
    if (where.status !== 'all') throw noFlags(`status=${where.status}`);
    const filtered = where.subject.length > 0 || where.from.length > 0 || where.since !== undefined || where.before !== undefined;
    const deleted = await this.#inOneLogin(async (link) => {
      let count = 0;
      for (const entry of await link.uidl()) {
        if (filtered) {
          const top = await link.top(entry.n, 0, HEADER_MAX_BYTES);
          if (!matches(where, await parseMessage(top.bytes, { maxBytes: top.bytes.length + 1 }))) continue;
        }
        await link.dele(entry.n);
        count += 1;
      }
      return count;
    });
    return { deleted };
  }

  /** One login: `fn` marks messages with DELE, then QUIT commits them; nothing is deleted unless QUIT said +OK. */
  async #inOneLogin(fn: (link: Pop3Link) => Promise<number>): Promise<number> {
    const link = await this.#ctx.open();
    try {
      const count = await fn(link);
      await link.commit();
      return count;
    } catch (err) {
      // without QUIT the server drops the DELE marks (RFC 1939 6): nothing of this call was deleted
      link.destroy();
      throw err;
    }
  }
}
