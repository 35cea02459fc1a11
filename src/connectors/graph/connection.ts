import { AppError } from '../../errors.js';
import type { AccessTokens } from '../../oauth/access-tokens.js';
import type { Connector, ConnectorContext, MailboxSummary } from '../../domain/connector.js';
import { GraphChanges } from './changes.js';
import { GraphClient, type GraphEndpoint } from './client.js';
import { GraphFolders } from './folders.js';
import type { MailboxLimiter } from './mailbox-limiter.js';
import { GraphReader } from './messages.js';
import { GraphSender } from './send.js';
import { GraphWatcher } from './watch.js';

/** Everything a Graph connector needs; tokens come from the session's AccessTokens. */
export interface GraphSettings extends GraphEndpoint {
  /** The Inbox resource: https://<host>/v1.0/me/mailFolders/inbox or .../users/{id}/mailFolders/inbox. */
  inboxUrl: string;
  /** What every mail request is under: https://<host>/v1.0/me or .../users/{id}. */
  mailboxUrl: string;
  timeouts: { connectMs: number; commandMs: number };
  /** Most bytes of a message's JSON read for a detail or a page (MSB_PARSE_MAX_BYTES). */
  parseMaxBytes: number;
}

const SELECT = '?$select=id,displayName,parentFolderId,totalItemCount,unreadItemCount';

/**
 * Outlook / Microsoft 365 through Microsoft Graph, plain HTTPS (client.ts). Holds no connection:
 * connect() proves access with one GET of the Inbox folder, every summary() is one more; the Inbox's
 * id and parent (the top of the mailbox) seed the folder tree the reader walks.
 */
export class GraphConnector implements Connector {
  readonly persistent = false;
  readonly reader: GraphReader;
  readonly flagger: GraphChanges;
  readonly mover: GraphChanges;
  readonly deleter: GraphChanges;
  readonly tagger: GraphChanges;
  readonly sender: GraphSender;
  readonly watcher: GraphWatcher;
  readonly #settings: GraphSettings;
  readonly #client: GraphClient;
  readonly #folders: GraphFolders;

  constructor(settings: GraphSettings, ctx: ConnectorContext, tokens: AccessTokens, limiter: MailboxLimiter) {
    this.#settings = settings;
    this.#client = new GraphClient(settings, ctx, tokens, limiter);
    const budgetMs = () => settings.timeouts.commandMs;
    this.#folders = new GraphFolders({ client: this.#client, mailboxUrl: settings.mailboxUrl, host: settings.host, budgetMs });
    this.reader = new GraphReader({
      client: this.#client,
      folders: this.#folders,
      mailboxUrl: settings.mailboxUrl,
      host: settings.host,
      budgetMs,
      parseMaxBytes: settings.parseMaxBytes,
    });
    const changes = new GraphChanges({ client: this.#client, folders: this.#folders, mailboxUrl: settings.mailboxUrl, host: settings.host, budgetMs, parseMaxBytes: settings.parseMaxBytes });
    this.flagger = changes;
    this.mover = changes;
    this.deleter = changes;
    this.tagger = changes;
    this.watcher = new GraphWatcher({ client: this.#client, folders: this.#folders, mailboxUrl: settings.mailboxUrl, host: settings.host, budgetMs, parseMaxBytes: settings.parseMaxBytes, logger: ctx.logger });
    this.sender = new GraphSender({ client: this.#client, mailboxUrl: settings.mailboxUrl, host: settings.host, budgetMs, parseMaxBytes: settings.parseMaxBytes });
  }

  /** The GET that proves access also answers the first summary. */
  connect(): Promise<MailboxSummary> {
    return this.#readInbox(this.#settings.timeouts.connectMs);
  }

  async summary(): Promise<MailboxSummary> {
    return this.#readInbox(this.#settings.timeouts.commandMs);
  }

  async close(): Promise<void> {
    this.#client.close();
  }

  async #readInbox(budgetMs: number): Promise<MailboxSummary> {
    const s = this.#settings;
    const answer = await this.#client.json({ url: new URL(`${s.inboxUrl}${SELECT}`), budgetMs, what: 'inbox' });
    const folder = answer.body as { id?: unknown; displayName?: unknown; parentFolderId?: unknown; totalItemCount?: unknown; unreadItemCount?: unknown } | undefined;
    const total = folder?.totalItemCount;
    const unread = folder?.unreadItemCount;
    if (!Number.isInteger(total) || !Number.isInteger(unread)) {
      throw new AppError('MAIL_PROTOCOL_ERROR', `Microsoft Graph ${s.host}: the Inbox folder came without totalItemCount / unreadItemCount`);
    }
    if (typeof folder?.id === 'string' && folder.id.length > 0) {
      this.#folders.setInbox({
        id: folder.id,
        displayName: typeof folder.displayName === 'string' && folder.displayName.length > 0 ? folder.displayName : 'Inbox',
        ...(typeof folder.parentFolderId === 'string' ? { parentFolderId: folder.parentFolderId } : {}),
      });
    }
    return { name: 'Inbox', messages: total as number, unseen: unread as number, checkedAt: new Date().toISOString() };
  }
}
