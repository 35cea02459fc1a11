import { randomUUID } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError, errorCatalog, isAppError, problemType, type ErrorCode } from '../errors.js';
import { sessionTypes } from '../kinds/index.js';
import { EXPECTED_MAIL_FAILURES } from '../net/errors.js';
import { NO_CONTROLS_PATTERN } from '../schemas/common.js';
import type { Problem } from '../schemas/problem.js';
import { requestPath } from './request-path.js';

/** Fastify's own client errors, by their code, and what they are in our registry. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MALFORMED_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_REQUEST',
  FST_ERR_CTP_EMPTY_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
};

interface ValidationItem {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

function validationErrors(err: FastifyError): { path: string; message: string }[] {
  const context = err.validationContext ?? 'body';
  return ((err.validation ?? []) as ValidationItem[]).map((v) => {
    let path = v.instancePath ?? '';
    if (typeof v.params?.tag === 'string') {
      return { path: `/${context}${path}/${v.params.tag}`, message: `must be one of: ${sessionTypes.join(', ')}` };
    }
    let message = v.message ?? 'is invalid';
    if (typeof v.params?.missingProperty === 'string') {
      path = `${path}/${v.params.missingProperty}`;
      message = 'is required';
    } else if (typeof v.params?.additionalProperty === 'string') {
      path = `${path}/${v.params.additionalProperty}`;
      message = 'is not a known field here';
    } else if (v.params?.pattern === NO_CONTROLS_PATTERN) {
      message = 'must not contain control characters (CR, LF, NUL, TAB, DEL...)';
    }
    return { path: `/${context}${path}`, message };
  });
}

/** Turns anything thrown into an AppError; unknown errors become INTERNAL_ERROR without their message. */
export function toAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  const fe = err as Partial<FastifyError>;
  if (fe && Array.isArray(fe.validation)) {
    const errors = validationErrors(fe as FastifyError);
    const first = errors[0];
    return new AppError('VALIDATION_ERROR', first ? `${first.path} ${first.message}` : 'invalid request', { errors });
  }
  const mapped = typeof fe?.code === 'string' ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new AppError(mapped, typeof fe.message === 'string' ? fe.message : errorCatalog[mapped].title);
  if (err instanceof SyntaxError) return new AppError('MALFORMED_REQUEST', 'the body is not valid JSON');
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new AppError('MALFORMED_REQUEST', typeof fe.message === 'string' ? fe.message : 'bad request');
  }
  return new AppError('INTERNAL_ERROR', 'an unexpected error occurred; the request id is in the service log', {}, { cause: err });
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: AppError): FastifyReply {
  const body: Problem = {
    type: problemType(error.code),
    title: errorCatalog[error.code].title,
    status: error.status,
    detail: error.message,
    code: error.code,
    instance: requestPath(request.url),
    requestId: String(request.id),
    ...error.extra,
  };
  if (typeof error.extra.retryAfterSeconds === 'number') reply.header('retry-after', String(error.extra.retryAfterSeconds));
  return reply.code(error.status).type('application/problem+json').send(body);
}

/** Every non-2xx answer, including Fastify's own and 404s, is RFC 9457 problem+json with a stable code. */
export const problemsPlugin = fp(
  async (app: FastifyInstance) => {
    // every route's path pattern and methods, so that a known path with another method answers 405
    const routes = new Map<string, { pattern: RegExp; statics: number; methods: Set<string> }>();
    app.addHook('onRoute', (route) => {
      const entry = routes.get(route.url) ?? {
        pattern: new RegExp(`^${route.url.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]+/g, '[^/]+').replace(/\*/g, '.*')}$`),
        statics: route.url.split('/').filter((segment) => segment !== '' && !segment.startsWith(':') && segment !== '*').length,
        methods: new Set<string>(),
      };
      for (const method of [route.method].flat()) entry.methods.add(method);
      routes.set(route.url, entry);
    });
    const notFound = (request: FastifyRequest, reply: FastifyReply) => {
      const path = requestPath(request.url);
      // the methods of the path's own route: /messages/move is POST only, although GET /messages/:id would
      // also take "move" as an id (the document lists the methods of the most specific path)
      const matching = [...routes.values()].filter((r) => r.pattern.test(path));
      const specific = Math.max(...matching.map((r) => r.statics));
      const allowed = matching.filter((r) => r.statics === specific).flatMap((r) => [...r.methods]);
      if (allowed.length > 0) {
        const allow = [...new Set(allowed)].sort().join(', ');
        reply.header('allow', allow);
        return sendProblem(request, reply, new AppError('METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${path}; use ${allow}`));
      }
      return sendProblem(request, reply, new AppError('ROUTE_NOT_FOUND', `no route ${request.method} ${path}`));
    };

    app.setErrorHandler((err: unknown, request, reply) => {
      // an unmatched request can fail before the not-found handler (e.g. a body method without a content
      // type): what the caller needs to hear is that the route or method does not exist
      if (request.is404 && !isAppError(err)) return notFound(request, reply);
      const error = toAppError(err);
      if (error.status >= 500 && !EXPECTED_MAIL_FAILURES.has(error.code)) request.log.error({ err: error.cause ?? error, code: error.code }, error.message);
      else request.log.info({ code: error.code, detail: error.message }, 'request refused');
      return sendProblem(request, reply, error);
    });
    app.setNotFoundHandler(notFound);
  },
  { name: 'problems' },
);

/** Errors of Node's HTTP server (parser, deadlines) by their code, and what they are in our registry. */
const RAW_CODES: Record<string, ErrorCode> = {
  HPE_HEADER_OVERFLOW: 'HEADERS_TOO_LARGE',
  // a client too slow to send its headers or its request (a slowloris): Node's deadline closes the socket
  ERR_HTTP_REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
};
const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/** Answers an HTTP parse error (bad header bytes, headers too large) on the raw socket, as problem+json. */
export function writeRawProblem(err: Error & { code?: string; rawPacket?: unknown }, socket: import('node:stream').Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const code: ErrorCode = RAW_CODES[err.code ?? ''] ?? 'MALFORMED_REQUEST';
  const { status, title } = errorCatalog[code];
  const requestId = randomUUID();
  // the path of the request line, when there is a plain one; else the root, so the body keeps its shape
  const line = /^[^\r\n/]{0,32}(\/[\x21-\x7e]{0,2048})[ \r\n]/.exec(Buffer.isBuffer(err.rawPacket) ? err.rawPacket.toString('latin1') : '');
  const instance = line?.[1]?.split('?')[0] ?? '/';
  const detail = code === 'REQUEST_TIMEOUT' ? 'the request was not received in time (MSB_HEADERS_TIMEOUT_MS, MSB_REQUEST_TIMEOUT_MS)' : 'the HTTP request could not be parsed';
  const body = JSON.stringify({ type: problemType(code), title, status, detail, code, instance, requestId });
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Bad Request'}\r\nConnection: close\r\n` +
      `Content-Type: application/problem+json\r\nX-Content-Type-Options: nosniff\r\nX-Request-Id: ${requestId}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
