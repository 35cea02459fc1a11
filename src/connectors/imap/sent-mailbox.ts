import type { ImapFlow } from 'imapflow';
import { AppError, isAppError } from '../../errors.js';
import type { SentMailbox } from '../smtp/sender.js';
import { withDeadline } from '../deadline.js';
import { decodeMessageId } from './ids.js';

export interface ImapSentMailboxContext {
  /** The connected client; throws a connection-level AppError when there is none. */
  client(): ImapFlow;
  host: string;
  port: number;
  commandMs: number;
  toError(err: unknown): AppError;
}

/**
 * The IMAP side of sending over SMTP (connectors/smtp/sender.ts): the copy of a sent message in the
 * mailbox's \Sent folder (SPECIAL-USE, else the well-known names imapflow recognises), and \Answered on
 * the original of a reply. Like the reader, it leaves nothing selected.
 */
export class ImapSentMailbox implements SentMailbox {
  readonly #ctx: ImapSentMailboxContext;

  constructor(ctx: ImapSentMailboxContext) {
    this.#ctx = ctx;
  }

  async appendSent(raw: Buffer, date: Date): Promise<void> {
    const folders = await this.#cmd('LIST', (c) => c.list());
    const sent = folders.find((f) => f.specialUse === '\\Sent');
    if (!sent) throw new AppError('FOLDER_NOT_FOUND', 'the mailbox has no Sent folder (special use \\Sent)');
    await this.#cmd('APPEND', (c) => c.append(sent.path, raw, ['\\Seen'], date));
  }

  async markAnswered(id: string): Promise<void> {
    const ref = decodeMessageId(id);
    // the reader resolved the id a moment ago; one whose folder is only named by its hash is left as it is
    if (!ref?.path) return;
    const path = ref.path;
    const mailbox = await this.#cmd('SELECT', (c) => c.mailboxOpen(path));
    try {
      // a folder created again meanwhile holds other messages under the same UIDs
      if (mailbox.uidValidity !== ref.uidValidity) throw new AppError('MESSAGE_NOT_FOUND', 'the original is no longer in its folder');
      await this.#cmd('STORE', (c) => c.messageFlagsAdd(String(ref.uid), ['\\Answered'], { uid: true }));
    } finally {
      // EXAMINE first, so that CLOSE cannot expunge what another client flagged \Deleted
      await this.#cmd('EXAMINE', (c) => c.mailboxOpen(path, { readOnly: true })).catch(() => undefined);
      await this.#cmd('CLOSE', (c) => c.mailboxClose()).catch(() => undefined);
    }
  }

  async #cmd<T>(what: string, fn: (client: ImapFlow) => Promise<T>): Promise<T> {
    const client = this.#ctx.client();
    try {
      return await withDeadline(fn(client), this.#ctx.commandMs, `IMAP ${this.#ctx.host}:${this.#ctx.port} ${what}`, () => client.close());
    } catch (err) {
      throw isAppError(err) ? err : this.#ctx.toError(err);
    }
  }
}
