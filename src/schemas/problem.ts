import { Type, type Static } from 'typebox';

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
