import type { Logger } from 'pino';
import type * as EwsApi from 'ews-javascript-api';
import { decodeId } from '../../domain/mail.js';
import { AppError } from '../../errors.js';
import type { EwsItemScope } from './errors.js';
import type { EwsFolders } from './folders.js';

/**
 * One EWS request through the connector's guarded path; `scope` says what an id that no longer resolves
 * means (MESSAGE_NOT_FOUND, ATTACHMENT_NOT_FOUND, FOLDER_NOT_FOUND).
 */
export type EwsRequest = <T>(what: string, run: (service: EwsApi.ExchangeService, ews: typeof EwsApi) => Promise<T>, scope?: EwsItemScope) => Promise<T>;

/** What every EWS capability (reading, changing, sending, watching) works with; made once per connector. */
export interface EwsContext {
  request: EwsRequest;
  /**
   * An item's error inside a batch answer (ResponseClass="Error" in an HTTP 200), translated as the
   * connector translates a rejected request: the same codes whether one message failed or a whole call.
   */
  itemError: (ewsCode: string, message: string, scope: EwsItemScope) => AppError;
  folders: EwsFolders;
  logger: Logger;
}

/** An id this connector made, or MESSAGE_NOT_FOUND / ATTACHMENT_NOT_FOUND: never a request with garbage. */
export function itemIdOf(id: string, kind: 'message' | 'attachment' = 'message'): string {
  const text = id.length <= 1024 ? decodeId(id) : undefined;
  // EWS ids are base64: anything else was not made here
  if (!text || !/^[A-Za-z0-9+/=_-]{1,1000}$/.test(text)) {
    throw kind === 'message' ? new AppError('MESSAGE_NOT_FOUND', 'no message with this id in this session') : new AppError('ATTACHMENT_NOT_FOUND', 'the message has no attachment with this id');
  }
  return text;
}

/** The EWS response code of a library rejection or of one response of a batch (a number in the library), by name. */
export function ewsCodeOf(ews: typeof EwsApi, errOrResponse: unknown): string | undefined {
  const o = errOrResponse as { Response?: { ErrorCode?: unknown }; ErrorCode?: unknown } | undefined;
  const code = o?.Response?.ErrorCode ?? o?.ErrorCode;
  const name = typeof code === 'number' ? (ews.ServiceError as unknown as Record<number, string>)[code] : undefined;
  // a transport failure comes wrapped with ErrorCode 0 (NoError): no answer from Exchange at all
  return name === 'NoError' ? undefined : name;
}

/** Whether the session's exchangeVersion is at least `version` (RequestedServerVersion, as the library compares it). */
export function atLeast(service: EwsApi.ExchangeService, ews: typeof EwsApi, version: keyof typeof EwsApi.ExchangeVersion): boolean {
  return service.RequestedServerVersion >= ews.ExchangeVersion[version];
}
