import { Type, type Static } from 'typebox';
import { errorCatalog } from '../errors.js';
import { ref, shared } from './shared.js';

/** RFC 9457 problem details, the body of every non-2xx answer. */
export const ProblemSchema = shared(
  'Problem',
  Type.Object(
    {
      type: Type.String({ description: 'URI naming the problem type.', examples: ['urn:mail-session-broker:problem:mail-auth-failed'] }),
      title: Type.String({ description: 'Short summary of the problem type.' }),
      status: Type.Integer({ description: 'HTTP status code.' }),
      detail: Type.String({ description: 'What happened in this case.' }),
      // The codes are listed, but as an open set (x-extensible-enum, not enum): a client generated today must
      // still read a problem whose code a later version adds, so it falls back on the HTTP status.
      code: Type.String({
        pattern: '^[A-Z][A-Z0-9_]*$',
        description:
          'Stable, upper snake case code that bots switch on. The codes of this version are listed in x-extensible-enum; later versions may add codes, so treat an unknown one by its HTTP status.',
        examples: ['MAIL_AUTH_FAILED'],
        'x-extensible-enum': Object.keys(errorCatalog),
      }),
      instance: Type.Optional(Type.String({ description: 'The request path.' })),
      requestId: Type.Optional(Type.String({ description: 'The request id, also in the service log.' })),
      retryAfterSeconds: Type.Optional(Type.Integer({ description: 'For retryable errors: when to try again (also the Retry-After header).' })),
      smtpCode: Type.Optional(Type.Integer({ description: 'For SMTP_* problems: the SMTP server\'s reply code (4xx: try again later; 5xx: refused for good).' })),
      rejected: Type.Optional(Type.Array(Type.String(), { description: 'For SMTP_REJECTED and SMTP_UNAVAILABLE: the recipients the SMTP server refused.' })),
      supportedBy: Type.Optional(
        Type.Array(Type.String(), { description: 'For OPERATION_NOT_SUPPORTED: the session types that can do the operation.' }),
      ),
      partial: Type.Optional(
        Type.Object(
          {
            moved: Type.Optional(Type.Integer()),
            deleted: Type.Optional(Type.Integer()),
            updated: Type.Optional(Type.Integer()),
            messages: Type.Optional(Type.Array(Type.Object({ id: Type.String(), newId: Type.Union([Type.String(), Type.Null()]) }))),
          },
          { description: 'For a bulk operation that stopped midway: what it did before it stopped.' },
        ),
      ),
      errors: Type.Optional(
        Type.Array(
          Type.Object({ path: Type.String(), message: Type.String() }),
          { description: 'For VALIDATION_ERROR and INVALID_SETTINGS: each invalid field (JSON pointer into the request, e.g. /body/username) and why.' },
        ),
      ),
    },
    { description: 'RFC 9457 problem details.' },
  ),
);

export type Problem = Static<typeof ProblemSchema>;

type Headers = Record<string, { description: string } & Record<string, unknown>>;

/** Response headers of the problems that carry them (header name -> its schema and description). */
const RETRY_AFTER: Headers = { 'Retry-After': { type: 'integer', minimum: 0, description: 'Seconds to wait before trying again.' } };
const WWW_AUTHENTICATE: Headers = { 'WWW-Authenticate': { type: 'string', description: 'Bearer: the API key is missing or wrong.' } };

/** A documented error answer: problem+json, with what this status means on this route. */
export function problemResponse(description: string, headers?: Headers) {
  return { description, ...(headers ? { headers } : {}), content: { 'application/problem+json': { schema: ref(ProblemSchema) } } };
}

/**
 * The error answers of a route behind an API key: the statuses listed, 401 and 429 (every such route can
 * answer them), and the 4XX / 5XX catch-alls (Swagger UI matches exact codes only).
 */
export function problemResponses(explicit: Record<number, string> = {}) {
  const out: Record<string, ReturnType<typeof problemResponse>> = {
    401: problemResponse('UNAUTHENTICATED: the Authorization: Bearer <API key> header is missing or wrong.', WWW_AUTHENTICATE),
    429: problemResponse('RATE_LIMITED: more than MSB_RATE_LIMIT_PER_MINUTE requests in a minute; wait Retry-After seconds.', RETRY_AFTER),
    '4xx': problemResponse('Another client error: RFC 9457 problem details with a stable `code`.'),
    '5xx': problemResponse('Another server or mail-side error: RFC 9457 problem details with a stable `code`.'),
  };
  for (const [status, description] of Object.entries(explicit)) {
    out[status] = problemResponse(description, status === '429' || status === '503' ? RETRY_AFTER : status === '401' ? WWW_AUTHENTICATE : undefined);
  }
  return out;
}

/**
 * "CODE: title" descriptions of every registered code with each of `statuses`, so the OpenAPI document
 * lists exactly what the registry can answer (a route may not produce all of them).
 */
export function codesByStatus(statuses: number[]): Record<number, string> {
  const out: Record<number, string> = {};
  for (const status of statuses) {
    const codes = Object.entries(errorCatalog).filter(([, e]) => e.status === status);
    out[status] = codes.map(([code, e]) => `${code}: ${e.title}.`).join(' ');
  }
  return out;
}
