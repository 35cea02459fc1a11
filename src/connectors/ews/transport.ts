import type { Agent } from 'node:https';
import { createRequire } from 'node:module';
import type * as EwsApi from 'ews-javascript-api';
import type * as EwsXhr from '@ewsjs/xhr';

/**
 * The HTTP side of ews-javascript-api, with the library's weak spot covered.
 *
 * The library hands every non-200 answer to ServiceRequestBase.ProcessWebException inside a promise's
 * rejection handler. For an HTTP 500 it parses the body as a SOAP fault; a body that is empty, not XML
 * or cut short ("", "oops", a load balancer's page, truncated XML) makes that parser throw a TypeError
 * there, where no caller can catch it: the request never settles and the rejection is unhandled, which
 * ends the process. An HTTP 456 ("account locked") dereferences an unlock URL the answer may lack, with
 * the same result. So before the library sees such an answer, this XhrApi checks it can be read (the
 * library's own reader, run where a throw is caught) and otherwise hands on a plain transport failure,
 * which the library reports as an ordinary rejection. What the server really sent stays in `lastError`
 * and `unreadable` for the error mapping (errors.ts).
 */
export interface GuardedXhrApi extends EwsXhr.XhrApi {
  /** The transport error or non-200 answer of the last request (the library's rejection keeps only text). */
  lastError: unknown;
  /** The HTTP status of the last answer when the library could not have read it; undefined otherwise. */
  unreadable: number | undefined;
}

export interface EwsModules {
  ews: typeof EwsApi;
  GuardedXhrApi: new (options: { httpsAgent: Agent; timeout: number; proxy: false; maxContentLength: number }) => GuardedXhrApi;
}

/** Exchange's "account is locked" status, whose handling in the library needs a StatusDescription header. */
const ACCOUNT_LOCKED = 456;

let modules: Promise<EwsModules> | undefined;

/** ews-javascript-api costs ~50 MiB and ~0.3 s to load: only when an EWS session first connects. */
export function loadEws(): Promise<EwsModules> {
  modules ??= Promise.all([import('ews-javascript-api'), import('@ewsjs/xhr')]).then(([ews, xhr]) => {
    quietLibrary(ews);
    class Guarded extends xhr.XhrApi implements GuardedXhrApi {
      lastError: unknown;
      unreadable: number | undefined;
      override async xhr(...args: Parameters<EwsXhr.XhrApi['xhr']>) {
        this.lastError = undefined;
        this.unreadable = undefined;
        try {
          return await super.xhr(...args);
        } catch (err) {
          this.lastError = err;
          const status = statusOf(err);
          if (status !== undefined && !libraryCanRead(ews, status, err)) {
            this.unreadable = status;
            // no status the library acts on: it wraps the message in a SoapFaultDetails and rejects
            throw Object.assign(new Error(`HTTP ${status}: the answer is not an EWS SOAP message`), {
              getResponseHeader: () => null,
              getAllResponseHeaders: () => '',
            });
          }
          throw err;
        }
      }
    }
    return { ews, GuardedXhrApi: Guarded };
  });
  modules.catch(() => (modules = undefined));
  return modules;
}

function statusOf(err: unknown): number | undefined {
  const status = typeof err === 'object' && err !== null ? (err as { status?: unknown }).status : undefined;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Whether ProcessWebException can handle this non-200 answer without throwing: it parses only a 500's
 * body (as the SOAP fault it should be), and only a 456 needs more than the status. The 500's body is
 * read here by the same library code (EwsServiceXmlReader, then ReadSoapFault with its header), so a body
 * that passes cannot fail there.
 */
function libraryCanRead(ews: typeof EwsApi, status: number, answer: unknown): boolean {
  if (status === ACCOUNT_LOCKED) return false;
  if (status !== 500) return true;
  const text = (answer as { responseText?: unknown }).responseText;
  // the XML parser would only complain (on stderr) about these before failing
  if (typeof text !== 'string' || !/^\s*</.test(text)) return false;
  try {
    const reader = new ews.EwsServiceXmlReader(text, undefined as unknown as EwsApi.ExchangeService);
    const proto = ews.ServiceRequestBase.prototype as unknown as { ReadSoapFault(js: unknown): unknown; ReadSoapHeader(js: unknown): void };
    const scratch = { Service: {}, ReadSoapHeader: proto.ReadSoapHeader };
    proto.ReadSoapFault.call(scratch, reader.JsObject);
    return true;
  } catch {
    return false;
  }
}

/**
 * The library's own console output is switched off, because it bypasses the JSON log and the secret
 * scrubbing, and it quotes what the server sent:
 * - it parses with @xmldom/xmldom without an error handler, so every complaint about a broken answer goes
 *   to the console (an entity name, for one, which a hostile server that was just sent a Basic password
 *   could fill with it). The library looks its DOMParser up on ExtensionMethods at each use: a subclass
 *   with a silent handler stands in;
 * - EwsLogging.Log/Assert print some answers "always" (ItemIdCollection, Autodiscover), whatever
 *   DebugLogEnabled says.
 * Nothing is lost: an answer that cannot be read fails the request anyway, and the error mapping says so.
 */
function quietLibrary(ews: typeof EwsApi): void {
  const require = createRequire(import.meta.url);
  const ext = require('ews-javascript-api/js/ExtensionMethods') as { DOMParser: new (options?: object) => unknown; msbQuiet?: true };
  if (ext.msbQuiet) return;
  const Base = ext.DOMParser;
  const silent = () => undefined;
  ext.DOMParser = class QuietDOMParser extends (Base as new (options?: object) => object) {
    constructor(options?: object) {
      super({ locator: {}, ...options, errorHandler: { warning: silent, error: silent, fatalError: silent } });
    }
  };
  ext.msbQuiet = true;
  const logging = ews.EwsLogging as unknown as { Log: () => void; DebugLog: () => void; Assert: () => void; DebugLogEnabled: boolean };
  logging.DebugLogEnabled = false;
  logging.Log = silent;
  logging.DebugLog = silent;
  logging.Assert = silent;
}
