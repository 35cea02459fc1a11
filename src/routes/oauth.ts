import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Config } from '../config.js';
import type { SessionPool } from '../domain/pool.js';
import { principalOf } from '../plugins/auth.js';
import { AppError, errorCatalog, isAppError } from '../errors.js';
import type { KindServices } from '../kinds/kind.js';
import { CALLBACK_PATH } from '../oauth/broker.js';
import { PAGE_HEADERS, renderCallbackPage, wantsJson } from '../oauth/callback-page.js';
import { toAppError } from '../plugins/problems.js';
import { SessionName, WireString } from '../schemas/common.js';
import { ProblemSchema, problemResponses } from '../schemas/problem.js';
import { SessionStateSchema } from '../schemas/session.js';
import { ref, shared } from '../schemas/shared.js';

export interface OAuthRoutesOptions {
  pool: SessionPool;
  config: Config;
  services: KindServices;
}

const NameParams = Type.Object({ name: SessionName });

// Azure AD adds session_state, client_info and others: extra parameters are accepted, never echoed
const CallbackQuery = Type.Object(
  {
    state: Type.Optional(WireString({ maxLength: 512, description: 'The state this service put in the authorization URL.' })),
    code: Type.Optional(WireString({ maxLength: 8192, description: 'The authorization code (redeemed once, with the PKCE verifier; it goes on to the token endpoint).' })),
    error: Type.Optional(WireString({ maxLength: 256, description: 'The identity provider\'s error, e.g. access_denied.' })),
    // free text that goes nowhere but the result page (escaped); Entra ID puts CR LF between its lines
    error_description: Type.Optional(Type.String({ maxLength: 4096, description: 'The identity provider\'s explanation, shown on the result page.' })),
  },
  { additionalProperties: true },
);

const CallbackResult = shared(
  'OAuth2CallbackResult',
  Type.Object({
    session: SessionName,
    state: { ...ref(SessionStateSchema), description: 'The session state after the sign-in: connected, or awaiting_authorization if yet another sign-in is needed.' },
    message: Type.String(),
  }),
);

const htmlOrProblem = (description: string) => ({
  description,
  content: {
    'text/html': { schema: Type.String({ description: 'The page a person sees.' }) },
    'application/problem+json': { schema: ref(ProblemSchema) },
  },
});

/** Request log lines show the callback path without its query: the code and state are credentials. */
function redactedRequest(req: FastifyRequest) {
  return { method: req.method, url: req.url.split('?')[0], host: req.host, remoteAddress: req.ip };
}

/** The OAuth2 endpoints: the per-session sign-in redirect and the redirect URI of the identity provider. */
export const oauthRoutes: FastifyPluginAsyncTypebox<OAuthRoutesOptions> = async (app, { pool, services }) => {
  const broker = services.oauth;

  app.get(
    '/v1/sessions/:name/authorize',
    {
      schema: {
        operationId: 'authorizeSession',
        tags: ['oauth2'],
        summary: 'Open the sign-in page of a session that awaits OAuth2 authorization',
        description:
          'Redirects (302) to the identity provider\'s sign-in page for this session, so that the sign-in can be started from a link or from Swagger UI. An authorization URL expires after MSB_OAUTH_STATE_TTL_MS; this route then starts a fresh one. 409 SESSION_NOT_AWAITING_AUTHORIZATION when the session does not wait for a sign-in.',
        params: NameParams,
        response: {
          302: Type.Null({ description: 'To the sign-in page (Location header).' }),
          ...problemResponses({
            400: 'VALIDATION_ERROR: the name is not a valid session name.',
            404: 'SESSION_NOT_FOUND: no session with this name.',
            409: 'SESSION_NOT_AWAITING_AUTHORIZATION: the session does not wait for a sign-in.',
            502: 'OAUTH_PROVIDER_UNAVAILABLE or OAUTH_PROVIDER_ERROR: a fresh sign-in could not be started.',
          }),
        },
      },
    },
    async (request, reply) => {
      const session = pool.get(principalOf(request).name, request.params.name);
      const view = session.view();
      if (session.state !== 'awaiting_authorization' || !view.authorizationUrl) {
        throw new AppError('SESSION_NOT_AWAITING_AUTHORIZATION', `session "${session.name}" is ${session.state}: it does not wait for an OAuth2 sign-in`);
      }
      const url = (await broker.currentAuthorizationUrl(view.authorizationUrl)) ?? view.authorizationUrl;
      reply.header('cache-control', 'no-store');
      return reply.redirect(url, 302);
    },
  );

  app.get(
    CALLBACK_PATH,
    {
      logSerializers: { req: redactedRequest },
      schema: {
        operationId: 'oauth2Callback',
        tags: ['oauth2'],
        summary: 'OAuth2 redirect URI (the identity provider sends the browser here)',
        description:
          'Register this URL (MSB_PUBLIC_URL + /v1/oauth2/callback) as the redirect URI of the app registration. Validates `state` (random, single use, bound to one session, expiring), redeems `code` with PKCE, connects the session and shows a small page saying whether it is connected and, if not, why. Answers JSON (problem+json on failure) when the Accept header prefers application/json. `?error=access_denied` marks the session failed with OAUTH_ACCESS_DENIED. Needs no API key: the state is the credential.',
        // the identity provider sends a browser here: no API key, the single-use state is the credential
        security: [],
        querystring: CallbackQuery,
        response: {
          200: {
            description: 'The session is connected (or, rarely, asks for another sign-in).',
            content: {
              'text/html': { schema: Type.String({ description: 'The page a person sees.' }) },
              'application/json': { schema: ref(CallbackResult) },
            },
          },
          400: htmlOrProblem('OAUTH_STATE_INVALID (forged, used or expired state) or VALIDATION_ERROR.'),
          403: htmlOrProblem('OAUTH_ACCESS_DENIED: the person or the provider refused; the session is failed.'),
          422: htmlOrProblem('OAUTH_ACCOUNT_MISMATCH, OAUTH_CLIENT_REJECTED, MAIL_AUTH_FAILED, EWS_ACCESS_DENIED...: the session is failed.'),
          502: htmlOrProblem('OAUTH_PROVIDER_ERROR, OAUTH_PROVIDER_UNAVAILABLE or a mail-side error: the session is failed.'),
          504: htmlOrProblem('MAIL_TIMEOUT: the mailbox did not answer in time; the session is failed.'),
          '4xx': htmlOrProblem('Another client error.'),
          '5xx': htmlOrProblem('Another server or mail-side error.'),
        },
      },
    },
    async (request, reply) => {
      for (const [name, value] of Object.entries(PAGE_HEADERS)) reply.header(name, value);
      const json = wantsJson(request.headers.accept);
      const q = request.query;
      try {
        const result = await broker.complete({ state: q.state, code: q.code, error: q.error, error_description: q.error_description });
        if (result.error) throw result.error;
        const state = result.awaiting ? 'awaiting_authorization' : 'connected';
        const message = result.awaiting
          ? `Session "${result.sessionName}" needs another sign-in: open its authorization URL again.`
          : `Session "${result.sessionName}" is connected.`;
        if (json) return reply.code(200).type('application/json').send({ session: result.sessionName, state, message });
        return reply.code(200).type('text/html; charset=utf-8').send(renderCallbackPage({ ok: !result.awaiting, title: result.awaiting ? 'Another sign-in is needed' : 'Connected', message }));
      } catch (err) {
        const error = toAppError(err);
        if (json) throw error;
        return sendPage(request, reply, error);
      }
    },
  );
};

/** The failure page, with the same status and code as the problem+json answer would have. */
function sendPage(request: FastifyRequest, reply: FastifyReply, error: AppError): FastifyReply {
  if (error.status >= 500 && error.code === 'INTERNAL_ERROR') request.log.error({ err: error.cause ?? error }, error.message);
  else request.log.info({ code: error.code, detail: error.message }, 'OAuth2 callback refused');
  const title = isAppError(error) ? errorCatalog[error.code].title : 'The sign-in did not complete';
  return reply
    .code(error.status)
    .type('text/html; charset=utf-8')
    .send(renderCallbackPage({ ok: false, title: `Not connected: ${title}`, message: error.message, code: error.code }));
}
