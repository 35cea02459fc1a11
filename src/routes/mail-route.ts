import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { SessionPool } from '../domain/pool.js';
import type { Session } from '../domain/session.js';
import { principalOf } from '../plugins/auth.js';
import { SessionName } from '../schemas/common.js';
import { MessageId } from '../schemas/message.js';

/** What the mail routes (messages, changes, send) share: their path parameters, errors and session lookup. */

export const NameParams = Type.Object({ name: SessionName });
export const MessageParams = Type.Object({ name: SessionName, id: MessageId });

/** What every mail route can answer besides its own: the session's state, as inspect?refresh=true does. */
export const SESSION_ERRORS = {
  404: 'SESSION_NOT_FOUND, FOLDER_NOT_FOUND, MESSAGE_NOT_FOUND or ATTACHMENT_NOT_FOUND.',
  409: 'SESSION_NOT_READY (failed) or AUTHORIZATION_REQUIRED.',
  422: 'OPERATION_NOT_SUPPORTED: this session type cannot do it (`supportedBy` names the types that can); DOWNLOAD_TOO_LARGE: the message or attachment exceeds what the protocol lets the service stream (EWS).',
  502: 'The mail server failed or answered in an unexpected way (MAIL_*).',
  503: 'SESSION_RECONNECTING, SESSION_BUSY, or MAIL_TEMPORARILY_UNAVAILABLE (the mail server asks to wait, e.g. a POP3 LOGIN-DELAY), with Retry-After; with replicas also STORE_UNAVAILABLE (Redis cannot be reached) and SESSION_RECONNECTING while the session moves between replicas.',
  504: 'MAIL_TIMEOUT: the mail server did not answer in time.',
};

/** The caller's own session named in the path; another principal's is SESSION_NOT_FOUND. */
export function sessionOf(pool: SessionPool, request: FastifyRequest<{ Params: { name: string } }>): Session {
  return pool.get(principalOf(request).name, request.params.name);
}
