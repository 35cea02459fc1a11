// Two small stand-ins for the OAuth2 side of a mail provider that is not Microsoft:
// - an HTTPS token endpoint (RFC 6749) for the refresh_token and client_credentials grants, taking the
//   client secret in the form (client_secret_post) or as HTTP Basic, rotating refresh tokens if told to;
// - a plain-HTTP token introspection endpoint (RFC 7662 style) that Dovecot's oauth2 passdb asks about
//   every XOAUTH2 login; it answers for the tokens of any issuer the test names (this fake, the fake
//   Microsoft identity provider) and can be told to refuse tokens.
// Both record what they were sent, so tests can assert which secret and which token went where.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { makeCerts } from './certs.js';
import { closeServer, listenLoopback as listen, readForm, TokenLedger } from './http-fake.js';

export interface GenericTokenRequest {
  at: number;
  grantType: string;
  clientId?: string;
  clientSecret?: string;
  /** How the client authenticated: in the form, with HTTP Basic, or not at all. */
  via: 'post' | 'basic' | 'none';
  refreshToken?: string;
  scope?: string;
  status: number;
  error?: string;
}

export interface FakeTokenEndpoint {
  /** https://127.0.0.1:PORT/oauth2/token */
  url: string;
  requests: GenericTokenRequest[];
  /** Every refresh and access token issued (for leak checks). */
  issued: string[];
  /** Issues a refresh token for `user`, as a sign-in at the provider would have. */
  refreshTokenFor(user: string): string;
  /** Lifetime (expires_in) of the next access tokens, in seconds. */
  accessTokenLifetime: number;
  /** When true, every refresh_token grant also returns a new refresh token and retires the old one. */
  rotate: boolean;
  /** Forgets every refresh token issued so far (a user revoked the app). */
  revokeRefreshTokens(): void;
  /** The user an unexpired access token stands for. */
  principal(token: string): string | undefined;
  close(): Promise<void>;
}

const random = (prefix: string) => `${prefix}${randomBytes(24).toString('base64url')}`;

/** clients: client ID -> secret. appUser: the mailbox that client_credentials tokens are for. */
export async function startFakeTokenEndpoint(options: { clients: Record<string, string>; appUser: string }): Promise<FakeTokenEndpoint> {
  const certs = await makeCerts();
  const requests: GenericTokenRequest[] = [];
  const issued: string[] = [];
  const refreshTokens = new Map<string, string>();
  const accessTokens = new TokenLedger<string>();
  const settings = { accessTokenLifetime: 3600, rotate: false };

  const issueAccess = (user: string) => {
    const token = accessTokens.issue(random('gat.'), user, settings.accessTokenLifetime);
    issued.push(token);
    return token;
  };
  const refreshTokenFor = (user: string) => {
    const token = random('grt.');
    refreshTokens.set(token, user);
    issued.push(token);
    return token;
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const json = (status: number, body: unknown) => void res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
    if (req.method !== 'POST' || req.url !== '/oauth2/token') return json(404, { error: 'not_found' });
    const form = await readForm(req);
    const record: GenericTokenRequest = { at: performance.now(), grantType: form.get('grant_type') ?? '', via: 'none', status: 0 };
    requests.push(record);
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    if (basic) {
      const [id = '', secret = ''] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':').map(decodeURIComponent);
      Object.assign(record, { via: 'basic', clientId: id, clientSecret: secret });
    } else if (form.get('client_id') !== null) {
      Object.assign(record, { via: form.get('client_secret') !== null ? 'post' : 'none', clientId: form.get('client_id') });
      if (form.get('client_secret') !== null) record.clientSecret = form.get('client_secret')!;
    }
    for (const [key, field] of [['refreshToken', 'refresh_token'], ['scope', 'scope']] as const) {
      const value = form.get(field);
      if (value !== null) record[key] = value;
    }
    const fail = (status: number, error: string, description: string) => {
      Object.assign(record, { status, error });
      json(status, { error, error_description: description });
    };
    const expected = options.clients[record.clientId ?? ''];
    if (expected === undefined || record.clientSecret !== expected) return fail(401, 'invalid_client', 'Client authentication failed.');
    if (record.grantType === 'refresh_token') {
      const user = refreshTokens.get(record.refreshToken ?? '');
      if (!user) return fail(400, 'invalid_grant', 'The refresh token is invalid or expired.');
      const answer: Record<string, unknown> = { token_type: 'Bearer', access_token: issueAccess(user), expires_in: settings.accessTokenLifetime };
      if (settings.rotate) {
        refreshTokens.delete(record.refreshToken!);
        answer.refresh_token = refreshTokenFor(user);
      }
      record.status = 200;
      return json(200, answer);
    }
    if (record.grantType === 'client_credentials') {
      record.status = 200;
      return json(200, { token_type: 'Bearer', access_token: issueAccess(options.appUser), expires_in: settings.accessTokenLifetime });
    }
    fail(400, 'unsupported_grant_type', 'Only refresh_token and client_credentials.');
  }

  const server = createServer({ key: certs.keyPem, cert: certs.certPem }, (req, res) => {
    handle(req, res).catch(() => res.writeHead(500).end());
  });
  const port = await listen(server);
  return {
    url: `https://127.0.0.1:${port}/oauth2/token`,
    requests,
    issued,
    refreshTokenFor,
    get accessTokenLifetime() {
      return settings.accessTokenLifetime;
    },
    set accessTokenLifetime(value) {
      settings.accessTokenLifetime = value;
    },
    get rotate() {
      return settings.rotate;
    },
    set rotate(value) {
      settings.rotate = value;
    },
    revokeRefreshTokens: () => refreshTokens.clear(),
    principal: (token) => accessTokens.lookup(token),
    close: () => closeServer(server),
  };
}

export interface IntrospectionEndpoint {
  /** http://127.0.0.1:PORT/introspect, for Dovecot's introspection_url. */
  url: string;
  /** Every token Dovecot asked about, with the answer. */
  requests: { token: string; active: boolean; at: number }[];
  /** Tokens answered "active": false although their issuer knows them (revoked at the mail provider). */
  refused: Set<string>;
  /** When true, every token is answered "active": false. */
  refuseAll: boolean;
  close(): Promise<void>;
}

/** `lookup` gives the mailbox user a token stands for, or undefined for an unknown or expired token. */
export async function startIntrospection(lookup: (token: string) => string | undefined): Promise<IntrospectionEndpoint> {
  const requests: IntrospectionEndpoint['requests'] = [];
  const refused = new Set<string>();
  const state = { refuseAll: false };
  const server = createHttpServer((req, res) => {
    readForm(req)
      .then((form) => {
        const token = form.get('token') ?? '';
        const user = state.refuseAll || refused.has(token) ? undefined : lookup(token);
        requests.push({ token, active: user !== undefined, at: performance.now() });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(user ? { active: true, username: user } : { active: false }));
      })
      .catch(() => res.writeHead(500).end());
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}/introspect`,
    requests,
    refused,
    get refuseAll() {
      return state.refuseAll;
    },
    set refuseAll(value) {
      state.refuseAll = value;
    },
    close: () => closeServer(server),
  };
}
