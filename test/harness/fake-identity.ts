// A local HTTPS stand-in for the Microsoft identity platform (v2.0 endpoints), enough for the real
// @azure/msal-node: the OpenID discovery document, an authorize page with a login form and a consent
// page, and a token endpoint for authorization_code (PKCE S256 checked), password (ROPC),
// client_credentials and refresh_token. It records every token request (including the client secret
// that was sent) so tests can assert who got which secret, and it tells the fake EWS which tokens are
// valid. Error answers have Azure AD's shape: error, error_description "AADSTSnnnn: ...", error_codes.
// Hostile mode (`hostile`): the token endpoint (or every endpoint) gives a raw answer of the test's
// choosing instead, such as a 500 with an empty body or a 200 without an access token.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { makeCerts } from './certs.js';
import { closeServer, listenLoopback, readForm as readBody, TokenLedger } from './http-fake.js';
import { sendHostile, type HostileHttpAnswer, type TokenPrincipal } from './fake-ews.js';

export interface FakeUser {
  password: string;
  /** ROPC answers this AADSTS code (50076 or 50079): multi-factor authentication required. */
  mfa?: 50076 | 50079;
}

export interface FakeClient {
  /** Confidential clients must send this secret; public clients have none. */
  secret?: string;
}

export interface TokenRequestRecord {
  tenant: string;
  grantType: string;
  clientId?: string;
  clientSecret?: string;
  scope?: string;
  username?: string;
  status: number;
  error?: string;
}

interface Grant {
  user?: string;
  clientId: string;
  scope: string;
}

export interface FakeIdentity {
  /** host:port, what MSB_OAUTH_AUTHORITY_HOST takes. */
  host: string;
  origin: string;
  caPem: string;
  tenantId: string;
  tokenRequests: TokenRequestRecord[];
  /** Every authorize page request's query. */
  authorizeRequests: URLSearchParams[];
  /** Every authorization code, access and refresh token issued (for leak checks). */
  issued: string[];
  /** Lifetime of the next access tokens, in seconds. */
  accessTokenLifetime: number;
  /** When true, refresh_token grants are refused with invalid_grant (AADSTS700082). */
  refuseRefresh: boolean;
  /** When set, the token endpoint (`where: 'token'`) or every endpoint answers this raw answer (hostile mode). */
  hostile: (HostileHttpAnswer & { where: 'token' | 'all' }) | undefined;
  /** For the fake EWS: who a bearer token stands for, or undefined when unknown or expired. */
  principal(token: string): TokenPrincipal | undefined;
  close(): Promise<void>;
}

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

function jwt(claims: Record<string, unknown>): string {
  return `${b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', kid: 'fake' }))}.${b64url(JSON.stringify(claims))}.${b64url(randomBytes(32))}`;
}

function html(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${body}</body></html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);

/** The resource a token is for (its `aud`), as Azure AD derives it: the origin of the scopes asked for. */
function audienceOf(scope: string): string {
  for (const item of scope.split(' ')) {
    try {
      return new URL(item).origin;
    } catch {
      // a bare scope (User.Read) would be Graph's; the fakes never ask for one
    }
  }
  return '';
}

/** Starts the fake on a free loopback port with a certificate signed by the test CA (makeCerts). */
export async function startFakeIdentity(options: { users: Record<string, FakeUser>; clients: Record<string, FakeClient> }): Promise<FakeIdentity> {
  const certs = await makeCerts();
  const tenantId = randomUUID();
  const tokenRequests: TokenRequestRecord[] = [];
  const authorizeRequests: URLSearchParams[] = [];
  const issued: string[] = [];
  const transactions = new Map<string, URLSearchParams>();
  const codes = new Map<string, Grant & { redirectUri: string; challenge: string; nonce?: string }>();
  const refreshTokens = new Map<string, Grant>();
  const accessTokens = new TokenLedger<Grant>();
  const settings = { accessTokenLifetime: 3600, refuseRefresh: false, hostile: undefined as FakeIdentity['hostile'] };
  let origin = '';

  const oid = (user: string) => createHash('sha256').update(user).digest('hex').slice(0, 32);

  function issue(grant: Grant, nonce?: string): Record<string, unknown> {
    const accessToken = jwt({ aud: audienceOf(grant.scope), scp: grant.scope, sub: grant.user ?? grant.clientId, n: randomUUID() });
    accessTokens.issue(accessToken, grant, settings.accessTokenLifetime);
    issued.push(accessToken);
    const answer: Record<string, unknown> = {
      token_type: 'Bearer',
      scope: grant.scope,
      expires_in: settings.accessTokenLifetime,
      ext_expires_in: settings.accessTokenLifetime,
      access_token: accessToken,
    };
    if (grant.user) {
      const refreshToken = `rt.${b64url(randomBytes(24))}`;
      refreshTokens.set(refreshToken, grant);
      issued.push(refreshToken);
      const now = Math.floor(Date.now() / 1000);
      answer.refresh_token = refreshToken;
      answer.client_info = b64url(JSON.stringify({ uid: oid(grant.user), utid: tenantId }));
      answer.id_token = jwt({
        aud: grant.clientId, iss: `${origin}/${tenantId}/v2.0`, iat: now, nbf: now, exp: now + 3600,
        name: grant.user, oid: oid(grant.user), preferred_username: grant.user, sub: oid(grant.user), tid: tenantId, ver: '2.0',
        ...(nonce ? { nonce } : {}),
      });
    }
    return answer;
  }

  /** The granted scope: what was asked, without the OpenID Connect scopes. */
  const granted = (scope: string | null) => (scope ?? '').split(' ').filter((s) => s && !OIDC_SCOPES.has(s)).join(' ');

  function token(form: URLSearchParams, record: TokenRequestRecord): { status: number; body: Record<string, unknown> } {
    const fail = (status: number, error: string, code: number, description: string, extra: Record<string, unknown> = {}) => ({
      status,
      body: { error, error_description: `AADSTS${code}: ${description}`, error_codes: [code], timestamp: new Date().toISOString(), trace_id: randomUUID(), correlation_id: randomUUID(), ...extra },
    });
    const clientId = form.get('client_id') ?? '';
    const client = options.clients[clientId];
    if (!client) return fail(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory.`);
    if (client.secret !== undefined && form.get('client_secret') !== client.secret) {
      return fail(401, 'invalid_client', 7000215, 'Invalid client secret provided.');
    }
    const scope = granted(form.get('scope'));
    switch (record.grantType) {
      case 'authorization_code': {
        const code = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        if (!code || code.clientId !== clientId) return fail(400, 'invalid_grant', 70008, 'The provided authorization code or refresh token has expired or is invalid.');
        if (code.redirectUri !== form.get('redirect_uri')) return fail(400, 'invalid_grant', 50011, 'The redirect URI does not match the one of the authorization request.');
        const verifier = form.get('code_verifier') ?? '';
        if (createHash('sha256').update(verifier).digest('base64url') !== code.challenge) {
          return fail(400, 'invalid_grant', 501481, 'The Code_Verifier does not match the code_challenge supplied in the authorization request.');
        }
        return { status: 200, body: issue({ user: code.user, clientId, scope: code.scope }, code.nonce) };
      }
      case 'password': {
        const username = form.get('username') ?? '';
        const user = options.users[username];
        if (!user || user.password !== form.get('password')) {
          return fail(400, 'invalid_grant', 50126, 'Error validating credentials due to invalid username or password.');
        }
        if (user.mfa) {
          const why = user.mfa === 50076 ? 'Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.' : 'Due to a configuration change made by your administrator, you must enroll in multi-factor authentication.';
          return fail(400, 'invalid_grant', user.mfa, why, { suberror: 'basic_action' });
        }
        return { status: 200, body: issue({ user: username, clientId, scope }) };
      }
      case 'client_credentials': {
        if (!scope.endsWith('/.default')) return fail(400, 'invalid_scope', 1002012, 'The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed.');
        if (client.secret === undefined) return fail(401, 'invalid_client', 7000218, 'The request body must contain client_assertion or client_secret.');
        return { status: 200, body: issue({ clientId, scope }) };
      }
      case 'refresh_token': {
        const grant = refreshTokens.get(form.get('refresh_token') ?? '');
        if (settings.refuseRefresh || !grant || grant.clientId !== clientId) {
          return fail(400, 'invalid_grant', 700082, 'The refresh token has expired due to inactivity.');
        }
        refreshTokens.delete(form.get('refresh_token') ?? '');
        return { status: 200, body: issue(grant) };
      }
      default:
        return fail(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
    }
  }

  function redirect(res: ServerResponse, txn: URLSearchParams, params: Record<string, string>): void {
    const target = new URL(txn.get('redirect_uri') ?? '');
    for (const [k, v] of Object.entries({ ...params, state: txn.get('state') ?? '' })) target.searchParams.set(k, v);
    res.writeHead(302, { location: target.toString() }).end();
  }

  function loginPage(tenant: string, txnId: string, username: string, error = ''): string {
    return html(
      'Sign in',
      `${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}<form method="post" action="/${tenant}/oauth2/v2.0/login"><input type="hidden" name="txn" value="${txnId}"><label>Email <input name="username" value="${escapeHtml(username)}"></label><label>Password <input type="password" name="password"></label><button type="submit">Sign in</button></form>`,
    );
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    const [, tenant = '', ...rest] = url.pathname.split('/');
    const path = rest.join('/');
    const json = (status: number, body: unknown): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const page = (status: number, body: string): void => void res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(body);
    const hostile = settings.hostile;
    if (hostile && (hostile.where === 'all' || (req.method === 'POST' && path === 'oauth2/v2.0/token'))) {
      if (path === 'oauth2/v2.0/token') {
        const form = await readBody(req);
        tokenRequests.push({ tenant, grantType: form.get('grant_type') ?? '', status: hostile.status, error: 'hostile' });
      }
      sendHostile(res, hostile);
      return;
    }

    if (req.method === 'GET' && path === 'v2.0/.well-known/openid-configuration') {
      const base = `${origin}/${tenant}`;
      json(200, {
        issuer: `${base}/v2.0`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        token_endpoint: `${base}/oauth2/v2.0/token`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        jwks_uri: `${base}/discovery/v2.0/keys`,
        response_types_supported: ['code'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        tenant_region_scope: 'EU',
      });
      return;
    }
    if (req.method === 'GET' && path === 'oauth2/v2.0/authorize') {
      const q = url.searchParams;
      authorizeRequests.push(q);
      if (!options.clients[q.get('client_id') ?? ''] || q.get('response_type') !== 'code' || !q.get('redirect_uri')) {
        page(400, html('Sign-in error', '<p>AADSTS700016: unknown application or bad request.</p>'));
        return;
      }
      if (q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) {
        page(400, html('Sign-in error', '<p>AADSTS9002325: Proof Key for Code Exchange is required.</p>'));
        return;
      }
      const txnId = randomUUID();
      transactions.set(txnId, q);
      page(200, loginPage(tenant, txnId, q.get('login_hint') ?? ''));
      return;
    }
    if (req.method === 'POST' && path === 'oauth2/v2.0/login') {
      const form = await readBody(req);
      const txnId = form.get('txn') ?? '';
      const username = form.get('username') ?? '';
      if (!transactions.has(txnId)) return page(400, html('Sign-in error', '<p>Unknown sign-in transaction.</p>'));
      if (options.users[username]?.password !== form.get('password')) {
        return page(200, loginPage(tenant, txnId, username, 'Your account or password is incorrect.'));
      }
      transactions.get(txnId)!.set('fake_user', username);
      const scopes = escapeHtml(granted(transactions.get(txnId)!.get('scope')));
      page(200, html('Permissions requested', `<p>The app wants: ${scopes}</p><form method="post" action="/${tenant}/oauth2/v2.0/consent"><input type="hidden" name="txn" value="${txnId}"><button type="submit" name="decision" value="accept">Accept</button><button type="submit" name="decision" value="deny">Cancel</button></form>`));
      return;
    }
    if (req.method === 'POST' && path === 'oauth2/v2.0/consent') {
      const form = await readBody(req);
      const txn = transactions.get(form.get('txn') ?? '');
      transactions.delete(form.get('txn') ?? '');
      const user = txn?.get('fake_user');
      if (!txn || !user) return page(400, html('Sign-in error', '<p>Unknown sign-in transaction.</p>'));
      if (form.get('decision') !== 'accept') {
        redirect(res, txn, { error: 'access_denied', error_description: 'AADSTS65004: User declined to consent to access the app.' });
        return;
      }
      const code = `code.${b64url(randomBytes(24))}`;
      issued.push(code);
      const nonce = txn.get('nonce');
      codes.set(code, {
        user, clientId: txn.get('client_id') ?? '', scope: granted(txn.get('scope')), redirectUri: txn.get('redirect_uri') ?? '',
        challenge: txn.get('code_challenge') ?? '', ...(nonce ? { nonce } : {}),
      });
      redirect(res, txn, { code });
      return;
    }
    if (req.method === 'POST' && path === 'oauth2/v2.0/token') {
      const form = await readBody(req);
      const record: TokenRequestRecord = { tenant, grantType: form.get('grant_type') ?? '', status: 0 };
      for (const [key, field] of [['clientId', 'client_id'], ['clientSecret', 'client_secret'], ['scope', 'scope'], ['username', 'username']] as const) {
        const value = form.get(field);
        if (value !== null) record[key] = value;
      }
      tokenRequests.push(record);
      const answer = token(form, record);
      record.status = answer.status;
      if (typeof answer.body.error === 'string') record.error = answer.body.error;
      json(answer.status, answer.body);
      return;
    }
    json(404, { error: 'not_found' });
  }

  const server: Server = createServer({ key: certs.keyPem, cert: certs.certPem }, (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  const port = await listenLoopback(server);
  origin = `https://127.0.0.1:${port}`;

  return {
    host: `127.0.0.1:${port}`,
    origin,
    caPem: certs.caPem,
    tenantId,
    tokenRequests,
    authorizeRequests,
    issued,
    get accessTokenLifetime() {
      return settings.accessTokenLifetime;
    },
    set accessTokenLifetime(value) {
      settings.accessTokenLifetime = value;
    },
    get refuseRefresh() {
      return settings.refuseRefresh;
    },
    set refuseRefresh(value) {
      settings.refuseRefresh = value;
    },
    get hostile() {
      return settings.hostile;
    },
    set hostile(value) {
      settings.hostile = value;
    },
    principal(accessToken) {
      const grant = accessTokens.lookup(accessToken);
      if (!grant) return undefined;
      const audience = audienceOf(grant.scope);
      return grant.user ? { user: grant.user, appOnly: false, audience } : { appOnly: true, audience };
    },
    close: () => closeServer(server),
  };
}
