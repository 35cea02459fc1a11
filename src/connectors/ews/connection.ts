import './node-compat.js';
import { Agent } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type * as EwsApi from 'ews-javascript-api';
import type { Secret } from '../../domain/secret.js';
import { AppError } from '../../errors.js';
import { toEwsError, type EwsItemScope } from './errors.js';
import { ewsCodeOf, type EwsContext, type EwsRequest } from './context.js';
import { EwsChanges } from './changes.js';
import { EwsFolders } from './folders.js';
import { EwsSender } from './send.js';
import { EwsWatcher } from './watch.js';
import { loadEws, type GuardedXhrApi } from './transport.js';
import type { TokenSource } from '../../oauth/token-source.js';
import type { Connector, ConnectorContext, MailboxSummary } from '../../domain/connector.js';
import { withDeadline } from '../deadline.js';
import { outboundSecureContext } from '../../net/trust.js';
import { EwsReader } from './messages.js';

/** Everything an EWS connector needs. Secrets stay wrapped until a request needs them. */
export interface EwsSettings {
  url: string;
  host: string;
  port: number;
  username: string;
  /** Basic only. */
  password?: Secret;
  exchangeVersion: string;
  /** OAuth2: X-AnchorMailbox, which routes the request to the mailbox's server (required app-only). */
  anchorMailbox?: string;
  /** clientCredentials: the mailbox to act as (ExchangeImpersonation). */
  impersonate?: string;
  /** Extra trusted CA for this endpoint (PEM). */
  ca?: string;
  extraCaFile: string;
  timeouts: { connectMs: number; commandMs: number };
  limits: { parseMaxBytes: number; maxDownloadBytes: number };
}

interface PreparedService {
  service: EwsApi.ExchangeService;
  xhr: GuardedXhrApi;
}

/**
 * EWS through ews-javascript-api. HTTP holds no session, so connect() proves the settings with one
 * GetFolder on the Inbox and every summary() is one more; with OAuth2 each request takes a token from
 * the TokenSource, which refreshes it before it expires. The capabilities (reader: messages.ts; flagger,
 * mover, deleter, tagger: changes.ts; sender: send.ts; watcher: watch.ts) send their requests through
 * the same guarded path (#request).
 */
export class EwsConnector implements Connector {
  readonly persistent = false;
  readonly reader: EwsReader;
  readonly flagger: EwsChanges;
  readonly mover: EwsChanges;
  readonly deleter: EwsChanges;
  readonly tagger: EwsChanges;
  readonly sender: EwsSender;
  readonly watcher: EwsWatcher;
  readonly #settings: EwsSettings;
  readonly #ctx: ConnectorContext;
  readonly #tokens: TokenSource | undefined;
  #agent: Agent | undefined;
  #service: PreparedService | undefined;
  #proof: MailboxSummary | undefined;
  /** The address the outbound policy approved for this request; the agent connects there and nowhere else. */
  #address: string | undefined;

  constructor(settings: EwsSettings, ctx: ConnectorContext, tokens?: TokenSource) {
    this.#settings = settings;
    this.#ctx = ctx;
    this.#tokens = tokens;
    const request: EwsRequest = (what, run, scope) => this.#request(`EWS ${settings.host}:${settings.port} ${what}`, settings.timeouts.commandMs, run, scope);
    const exchange2013 = atLeastExchange2013(settings.exchangeVersion);
    const context: EwsContext = {
      request,
      itemError: (ewsCode, message, scope) => toEwsError({ message }, { host: settings.host, port: settings.port, ewsCode, scope }),
      folders: new EwsFolders(request, exchange2013),
      logger: ctx.logger,
    };
    this.reader = new EwsReader(context, { ...settings.limits, exchange2013 });
    const changes = new EwsChanges(context);
    this.flagger = this.mover = this.deleter = this.tagger = changes;
    this.sender = new EwsSender(context, { mailbox: settings.impersonate ?? settings.username });
    this.watcher = new EwsWatcher(context, this.reader);
  }

  async connect(): Promise<void> {
    this.#proof = await this.#readInbox(this.#settings.timeouts.connectMs);
  }

  async summary(): Promise<MailboxSummary> {
    // the session asks for a summary right after connect(): the GetFolder that proved the connection answers it
    const proof = this.#proof;
    this.#proof = undefined;
    if (proof && Date.now() - Date.parse(proof.checkedAt) < 1000) return proof;
    return this.#readInbox(this.#settings.timeouts.commandMs);
  }

  async close(): Promise<void> {
    this.#proof = undefined;
    this.#tokens?.close();
    this.#agent?.destroy();
    this.#agent = undefined;
    this.#service = undefined;
  }

  async #readInbox(timeoutMs: number): Promise<MailboxSummary> {
    const s = this.#settings;
    return this.#request(`EWS ${s.host}:${s.port} GetFolder`, timeoutMs, async (service, ews) => {
      const folder = await ews.Folder.Bind(service, ews.WellKnownFolderName.Inbox);
      // the library resolves null instead of failing when the answer has no folder
      if (!folder) throw new AppError('MAIL_PROTOCOL_ERROR', `EWS ${s.host}:${s.port}: GetFolder for the Inbox returned no folder`);
      return { name: 'Inbox', messages: folder.TotalCount, unseen: folder.UnreadCount, checkedAt: new Date().toISOString() };
    });
  }

  /**
   * The one guarded path of every EWS request (connect, summary and the reader alike): the outbound
   * check, a fresh token, the credentials, a deadline, and the translation of whatever the library
   * rejects with (toEwsError; `scope` names the item-level code of an id that no longer resolves).
   */
  async #request<T>(what: string, timeoutMs: number, run: (service: EwsApi.ExchangeService, ews: typeof EwsApi) => Promise<T>, scope?: EwsItemScope): Promise<T> {
    const s = this.#settings;
    // the destination first: no token (and no ROPC password) is fetched for a host the policy refuses
    this.#address = await this.#ctx.outbound.check(s.host, s.port);
    // then a token: AUTHORIZATION_REQUIRED and identity provider errors pass through as they are
    const token = this.#tokens ? await this.#tokens.token() : undefined;
    const { ews } = await loadEws();
    const { service, xhr } = await this.#prepare();
    service.Credentials = token ? new ews.OAuthCredentials(token.reveal(), true) : new ews.WebCredentials(s.username, s.password?.reveal() ?? '');
    const secrets = [s.password?.reveal(), token?.reveal()].filter((v): v is string => v !== undefined);
    try {
      return await withDeadline(run(service, ews), timeoutMs, what);
    } catch (err) {
      throw toEwsError(err, {
        host: s.host, port: s.port, transport: xhr.lastError, unreadable: xhr.unreadable, ewsCode: ewsCodeOf(ews, err), bearer: token !== undefined, secrets, scope,
      });
    }
  }

  async #prepare(): Promise<PreparedService> {
    if (this.#service) return this.#service;
    const s = this.#settings;
    const { ews, GuardedXhrApi } = await loadEws();
    const service = new ews.ExchangeService(ews.ExchangeVersion[s.exchangeVersion as keyof typeof ews.ExchangeVersion]);
    service.Url = new ews.Uri(s.url);
    service.UserAgent = 'mail-session-broker';
    if (s.impersonate) service.ImpersonatedUserId = new ews.ImpersonatedUserId(ews.ConnectingIdType.SmtpAddress, s.impersonate);
    if (s.anchorMailbox) service.HttpHeaders.Add('X-AnchorMailbox', s.anchorMailbox);
    // the certificate is still verified against the host name (the URL keeps it); only the address is pinned
    const lookup: LookupFunction = (_hostname, options, callback) => {
      const address = this.#address;
      if (!address) return callback(Object.assign(new Error('destination not checked'), { code: 'ENOTFOUND' }), '', 4);
      if (options.all) (callback as (err: null, all: { address: string; family: number }[]) => void)(null, [{ address, family: isIP(address) }]);
      else callback(null, address, isIP(address));
    };
    // timeout: an idle kept-alive socket is closed after a minute, or before the server's Keep-Alive hint runs out
    // (Node applies the hint only under an agent timeout): reusing one the server is closing is an ECONNRESET
    this.#agent = new Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS, maxSockets: 2, secureContext: outboundSecureContext(s.extraCaFile, s.ca), minVersion: 'TLSv1.2', lookup });
    // proxy: false keeps axios from sending credentials through an HTTP(S)_PROXY the operator did not configure here;
    // maxContentLength bounds every answer: the largest is a download, base64 inside the MIME, base64 again in the XML
    const maxContentLength = 2 * s.limits.maxDownloadBytes + 1024 * 1024;
    const xhr = new GuardedXhrApi({ httpsAgent: this.#agent, timeout: s.timeouts.commandMs, proxy: false, maxContentLength });
    service.XHRApi = xhr;
    this.#service = { service, xhr };
    this.#ctx.logger.debug({ url: s.url, version: s.exchangeVersion }, 'EWS service ready');
    return this.#service;
  }
}

/** How long a kept-alive connection to Exchange may sit idle (IIS closes its own after 120 s). */
const IDLE_SOCKET_MS = 60_000;

/** TextBody, MaximumBodySize and SuppressReadReceipts came with Exchange 2013 (the library refuses them before). */
function atLeastExchange2013(version: string): boolean {
  return !/^Exchange20(07|10)/.test(version);
}
