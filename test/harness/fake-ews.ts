// A local HTTPS Exchange Web Services endpoint that speaks enough SOAP for ews-javascript-api to bind the
// Inbox: GetFolder for the distinguished folder "inbox" answers TotalCount/UnreadCount (the smallest answer
// the library accepts, see docs/protocol-facts.md). It checks Basic credentials or bearer tokens, honours
// ExchangeImpersonation, and records every request so tests can assert what the service sent.
// The mail operations (folders, messages, attachments) are in fake-ews-mail.ts, on the mailboxes of
// fake-ews-store.ts.
// Hostile mode (`hostile`): every request gets a raw answer of the test's choosing instead (a 500 with
// an empty, non-XML or truncated body, as a broken Exchange or a load balancer in front of it sends),
// optionally cut off mid-body by destroying the socket.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { XMLValidator } from 'fast-xml-parser';
import { makeCerts } from './certs.js';
import { answerMail, SoapFault, parseSoap } from './fake-ews-mail.js';
import { FakeMailbox } from './fake-ews-store.js';

export interface InboxCounts {
  total: number;
  unread: number;
}

/** What a bearer token stands for; undefined means unknown or expired (answered 401). */
export interface TokenPrincipal {
  /** The user (delegated token) or undefined for an app-only token. */
  user?: string;
  appOnly: boolean;
}

export interface FakeEwsOptions {
  /** Basic credentials: username -> password. */
  users?: Record<string, string>;
  /** Looks a bearer token up (the fake identity provider's `principal()`). */
  verifyToken?: (token: string) => TokenPrincipal | undefined;
  /** Inbox counts per mailbox (lower-case SMTP address or Basic username). */
  mailboxes?: Record<string, InboxCounts>;
}

/** A raw answer for hostile mode. */
export interface HostileHttpAnswer {
  status: number;
  body: string | Buffer;
  headers?: Record<string, string>;
  /** Send this many bytes of the body, then destroy the socket (a connection cut mid-answer). */
  cutAfter?: number;
}

/** A GetFolder answer that ews-javascript-api accepts, for tests that truncate or mangle it. */
export function inboxAnswerXml(total = 1, unread = 0): string {
  return folderResponse({ total, unread });
}

/** Writes a hostile answer to `res`. Shared with the fake identity provider. */
export function sendHostile(res: ServerResponse, answer: HostileHttpAnswer): void {
  const body = Buffer.isBuffer(answer.body) ? answer.body : Buffer.from(answer.body, 'utf8');
  if (answer.cutAfter !== undefined) {
    // announce the full length, send part of it, then cut the connection
    res.writeHead(answer.status, { 'content-length': String(body.length), ...answer.headers });
    res.write(body.subarray(0, answer.cutAfter), () => res.destroy());
    return;
  }
  res.writeHead(answer.status, { 'content-length': String(body.length), ...answer.headers });
  res.end(body);
}

export interface EwsRequestRecord {
  auth: 'basic' | 'bearer' | 'none';
  /** Basic username, or the user of a delegated token, or "app". */
  principal?: string;
  /** The raw bearer token, so tests can check which token was used. */
  token?: string;
  status: number;
  anchorMailbox?: string;
  impersonated?: string;
  version?: string;
  operation?: string;
  folder?: string;
  /** The SOAP request as sent (parse it with fake-ews-mail.ts parseSoap to assert what the library sent). */
  body: string;
}

/** A raw answer the mail operations give instead of their own (a broken server, a proxy in front of it). */
export interface MailHostility {
  /** Only this operation (e.g. "FindItem"); every mail operation when absent. */
  operation?: string;
  /** Lets this many matching requests through first (then answers every later one so). */
  after?: number;
  status: number;
  body: string;
}

export interface FakeEws {
  url: string;
  port: number;
  caPem: string;
  requests: EwsRequestRecord[];
  mailboxes: Record<string, InboxCounts>;
  /** When set, every authenticated request gets this SOAP fault (HTTP 500). */
  faultCode: string | undefined;
  /** When true, GetFolder answers Success with no folder (ews-javascript-api then resolves null). */
  emptyFolders: boolean;
  /** The folders and messages of a mailbox (lower-case SMTP address or Basic username), made on first use. */
  store(mailbox: string): FakeMailbox;
  /** When set, mail operations (not the Inbox check) get this raw answer. */
  mailHostility: MailHostility | undefined;
  /** Most entries one FindItem/FindFolder page answers (Exchange Online: 1000). */
  maxFindCount: number;
  /** When set, every request gets this raw answer, whatever it asked (hostile mode). */
  hostile: HostileHttpAnswer | undefined;
  /** Item ids that UpdateItem, MoveItem and DeleteItem refuse with this code (ResponseClass="Error"). */
  itemErrors: Map<string, string>;
  /** Runs before each mail operation is answered (e.g. to change a message under the service). */
  beforeAnswer: ((operation: string, mailbox: FakeMailbox) => void | Promise<void>) | undefined;
  close(): Promise<void>;
}

const SOAP_HEADER = `<s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="20" MajorBuildNumber="7" MinorBuildNumber="0" Version="V2018_01_08" xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types" xmlns="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/></s:Header>`;

function envelope(body: string): string {
  return `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">${SOAP_HEADER}<s:Body>${body}</s:Body></s:Envelope>`;
}

function folderResponse(counts: InboxCounts | undefined): string {
  const folders = counts
    ? `<m:Folders><t:Folder><t:FolderId Id="AAMkAGInbox" ChangeKey="AQAAABYAAAA"/><t:DisplayName>Inbox</t:DisplayName><t:TotalCount>${counts.total}</t:TotalCount><t:ChildFolderCount>0</t:ChildFolderCount><t:UnreadCount>${counts.unread}</t:UnreadCount></t:Folder></m:Folders>`
    : '<m:Folders/>';
  return envelope(
    `<m:GetFolderResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>${folders}</m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse>`,
  );
}

function fault(code: string, message: string): string {
  return envelope(
    `<s:Fault><faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:${code}</faultcode><faultstring xml:lang="en-US">${message}</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">${code}</e:ResponseCode><e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">${message}</e:Message></detail></s:Fault>`,
  );
}

function attr(xml: string, element: string, name: string): string | undefined {
  const m = new RegExp(`<[\\w]*:?${element}\\b[^>]*\\b${name}="([^"]*)"`).exec(xml);
  return m?.[1];
}

function text(xml: string, element: string): string | undefined {
  const m = new RegExp(`<[\\w]*:?${element}\\b[^>]*>([^<]*)<`).exec(xml);
  return m?.[1];
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Starts the fake on a free loopback port with a certificate signed by the test CA (makeCerts). */
export async function startFakeEws(options: FakeEwsOptions = {}): Promise<FakeEws> {
  const certs = await makeCerts();
  const users = options.users ?? {};
  const requests: EwsRequestRecord[] = [];

  const state = {
    faultCode: undefined as string | undefined,
    emptyFolders: false,
    mailHostility: undefined as MailHostility | undefined,
    maxFindCount: 1000,
    itemErrors: new Map<string, string>(),
    beforeAnswer: undefined as FakeEws['beforeAnswer'],
    serial: 0,
    stores: new Map<string, FakeMailbox>(),
    hostile: undefined as HostileHttpAnswer | undefined,
    mailboxes: Object.fromEntries(Object.entries(options.mailboxes ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
  };

  const store = (mailbox: string): FakeMailbox => {
    let box = state.stores.get(mailbox.toLowerCase());
    if (!box) {
      box = new FakeMailbox();
      state.stores.set(mailbox.toLowerCase(), box);
    }
    return box;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const record: EwsRequestRecord = { auth: 'none', status: 0, body };
    requests.push(record);
    const send = (status: number, xml: string, headers: Record<string, string> = {}) => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'text/xml; charset=utf-8', ...headers });
      res.end(xml);
    };
    const anchor = req.headers['x-anchormailbox'];
    if (typeof anchor === 'string') record.anchorMailbox = anchor;
    record.version = attr(body, 'RequestServerVersion', 'Version');
    record.impersonated = /ExchangeImpersonation/.test(body) ? text(body, 'SmtpAddress') : undefined;
    record.operation = /<m:(\w+)[\s>]/.exec(body.split(/<\w*:?Body>/)[1] ?? '')?.[1];
    record.folder = attr(body, 'DistinguishedFolderId', 'Id');

    if (state.hostile) {
      record.status = state.hostile.status;
      sendHostile(res, state.hostile);
      return;
    }
    if (req.method !== 'POST' || !req.url?.toLowerCase().startsWith('/ews/exchange.asmx')) {
      send(404, '');
      return;
    }
    const authorization = req.headers.authorization ?? '';
    let mailbox: string | undefined;
    if (authorization.startsWith('Basic ')) {
      record.auth = 'basic';
      const [user, ...rest] = Buffer.from(authorization.slice(6), 'base64').toString('utf8').split(':');
      record.principal = user;
      if (user === undefined || users[user] === undefined || users[user] !== rest.join(':')) {
        send(401, '', { 'www-authenticate': 'Basic realm="fake-ews"' });
        return;
      }
      mailbox = user;
    } else if (authorization.startsWith('Bearer ')) {
      record.auth = 'bearer';
      record.token = authorization.slice(7);
      const principal = options.verifyToken?.(record.token);
      if (!principal) {
        send(401, '', { 'www-authenticate': 'Bearer error="invalid_token"' });
        return;
      }
      record.principal = principal.user ?? 'app';
      if (principal.appOnly) {
        // app-only tokens must name the mailbox they act for (full_access_as_app + impersonation)
        if (!record.impersonated) {
          send(500, fault('ErrorInvalidExchangeImpersonationHeader', 'An app-only token needs ExchangeImpersonation.'));
          return;
        }
        mailbox = record.impersonated;
      } else {
        mailbox = principal.user;
      }
    } else {
      send(401, '', { 'www-authenticate': 'Basic realm="fake-ews", Bearer' });
      return;
    }

    if (state.faultCode) {
      send(500, fault(state.faultCode, 'The fake server was told to fail.'));
      return;
    }
    const counts = state.mailboxes[(mailbox ?? '').toLowerCase()];
    if (!counts) {
      send(500, fault('ErrorNonExistentMailbox', 'The SMTP address has no mailbox associated with it.'));
      return;
    }
    // the session's proof and summary: GetFolder for the inbox alone
    if (record.operation === 'GetFolder' && record.folder === 'inbox' && (body.match(/<\w*:?(Distinguished)?FolderId\b/g) ?? []).length === 1) {
      send(200, folderResponse(state.emptyFolders ? undefined : counts));
      return;
    }
    const hostile = state.mailHostility;
    if (hostile && (!hostile.operation || hostile.operation === record.operation)) {
      if (hostile.after && hostile.after > 0) hostile.after -= 1;
      else {
        send(hostile.status, hostile.body);
        return;
      }
    }
    // Exchange parses the request as XML first: an unescaped "&" or "<" anywhere (text or attribute) is refused whole
    const wellFormed = XMLValidator.validate(body) === true && !/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(body);
    const soap = wellFormed ? parseSoap(body) : undefined;
    if (!soap) {
      send(500, fault('ErrorSchemaValidation', 'The request failed schema validation.'));
      return;
    }
    try {
      state.serial += 1;
      const box = store((mailbox ?? '').toLowerCase());
      await state.beforeAnswer?.(soap.operation, box);
      const options = {
        maxFindCount: state.maxFindCount,
        serial: state.serial,
        version: record.version ?? 'Exchange2013',
        owner: (mailbox ?? '').toLowerCase(),
        itemErrors: state.itemErrors,
        // delivery to the fake's own mailboxes: those it was given counts for
        deliver: async (address: string, mime: Buffer) => {
          if (!state.mailboxes[address.toLowerCase()]) return false;
          await store(address).addMessage('inbox', mime);
          return true;
        },
      };
      send(200, envelope(await answerMail(box, soap.operation, soap.node, options)));
    } catch (err) {
      if (!(err instanceof SoapFault)) throw err;
      send(500, fault(err.code, err.message));
    }
  };

  const server: Server = createServer({ key: certs.keyPem, cert: certs.certPem }, (req, res) => {
    handle(req, res).catch(() => {
      res.statusCode = 500;
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `https://127.0.0.1:${port}/EWS/Exchange.asmx`,
    port,
    caPem: certs.caPem,
    requests,
    get mailboxes() {
      return state.mailboxes;
    },
    get faultCode() {
      return state.faultCode;
    },
    set faultCode(value) {
      state.faultCode = value;
    },
    store,
    get mailHostility() {
      return state.mailHostility;
    },
    set mailHostility(value) {
      state.mailHostility = value;
    },
    itemErrors: state.itemErrors,
    get beforeAnswer() {
      return state.beforeAnswer;
    },
    set beforeAnswer(value) {
      state.beforeAnswer = value;
    },
    get maxFindCount() {
      return state.maxFindCount;
    },
    set maxFindCount(value) {
      state.maxFindCount = value;
    },
    get emptyFolders() {
      return state.emptyFolders;
    },
    set emptyFolders(value) {
      state.emptyFolders = value;
    },
    get hostile() {
      return state.hostile;
    },
    set hostile(value) {
      state.hostile = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
