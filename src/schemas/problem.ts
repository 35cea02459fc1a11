import { Type, type Static } from 'typebox';
import { errorCatalog } from '../errors.js';

/** RFC 9457 problem details, the body of every non-2xx answer. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URI naming the problem type.', examples: ['urn:mail-session-broker:problem:mail-auth-failed'] }),
    title: Type.String({ description: 'Short summary of the problem type.' }),
    status: Type.Integer({ description: 'HTTP status code.' }),
    detail: Type.String({ description: 'What happened in this case.' }),
    code: Type.String({ pattern: '^[A-Z][A-Z0-9_]*$', description: 'Stable, upper snake case code that bots switch on.', examples: ['MAIL_AUTH_FAILED'] }),
    instance: Type.Optional(Type.String({ description: 'The request path.' })),
    requestId: Type.Optional(Type.String({ description: 'The request id, also in the service log.' })),
    retryAfterSeconds: Type.Optional(Type.Integer({ description: 'For retryable errors: when to try again (also the Retry-After header).' })),
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
        { description: 'For VALIDATION_ERROR: each invalid field (JSON pointer into the body) and why.' },
      ),
    ),
  },
  { title: 'Problem', description: 'RFC 9457 problem details.' },
);

export type Problem = Static<typeof ProblemSchema>;

/** A documented error answer: problem+json with the codes it can carry, for the OpenAPI document. */
export function problemResponse(description: string) {
  return { description, content: { 'application/problem+json': { schema: ProblemSchema } } };
}

/** The catch-all error answers every route has, plus the explicit statuses listed (Swagger UI matches exact codes only). */
export function problemResponses(explicit: Record<number, string> = {}) {
  const out: Record<string, ReturnType<typeof problemResponse>> = {
    '4xx': problemResponse('Client error: RFC 9457 problem details with a stable `code`.'),
    '5xx': problemResponse('Server or mail-side error: RFC 9457 problem details with a stable `code`.'),
  };
  for (const [status, description] of Object.entries(explicit)) out[status] = problemResponse(description);
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
