import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type * as Msal from '@azure/msal-node';
import type { Logger } from 'pino';
import { outboundSecureContext } from '../net/trust.js';
import { Secret } from '../domain/secret.js';
import { AppError, isAppError } from '../errors.js';
import { oauthCallbackError, oauthNeedsInteraction, toOAuthError, type OAuthErrorContext } from './errors.js';
import { HttpsNetworkClient, type DestinationGuard } from './https-network.js';
import { msalLoggerOptions } from './msal-logging.js';
import { PendingAuthorizations, type AuthorizationOwner } from './pending-authorizations.js';
import { TokenStore, type SharedTokenSlots } from './token-store.js';
import type { AccountRef, OAuthApp, SilentResult, TokenResult } from './types.js';

export interface OAuthBrokerOptions {
  /** Base URL of this service as a browser reaches it (MSB_PUBLIC_URL). */
  publicUrl: string;
  stateTtlMs: number;
  extraCaFile: string;
  /** Deadline of one request to the identity provider. */
  timeoutMs: number;
  tokenCacheFile: string;
  tokenCacheKey: Secret | undefined;
  logger: Logger;
  /** Level of MSAL's own log lines (MSB_MAIL_LOG_LEVEL). */
  libLogLevel: string;
  /** The outbound policy, applied to identity provider hosts that a caller named. */
  guard?: DestinationGuard;
  /** Token cache slots shared by replicas (Redis); undefined: the file or memory. */
  sharedTokens?: SharedTokenSlots | undefined;
  /** Told of every sign-in state handed out, so that a callback reaching another replica finds this one. */
  onStateStarted?: ((state: string, ttlMs: number) => void) | undefined;
}

type MsalApp = Msal.PublicClientApplication | Msal.ConfidentialClientApplication;

interface AppEntry {
  app: OAuthApp;
  msal: MsalApp;
  network: HttpsNetworkClient;
  slot: string;
  /** Secrets of the calls running now (a ROPC password, an authorization code), kept out of MSAL's log lines. */
  inFlight: Set<string>;
}

interface CodeRequest {
  app: OAuthApp;
  scopes: string[];
  verifier: string;
  nonce: string;
  expected: ExpectedAccount | undefined;
}

/** The only account a sign-in may attach (the session's username). */
export interface ExpectedAccount {
  username: string;
  /** false when the username came by reference: the sign-in URL, which the caller reads, must not carry it. */
  sendHint: boolean;
  /** How messages name it: the username, or `secret:<name>`. */
  shownAs: string;
}

export interface CallbackQuery {
  state?: string | undefined;
  code?: string | undefined;
  error?: string | undefined;
  error_description?: string | undefined;
}

export const CALLBACK_PATH = '/v1/oauth2/callback';

/**
 * Owns the msal-node applications (one per authority, tenant, client, secret and cache partition), the
 * encrypted token cache and the pending sign-ins. Knows nothing of EWS: a kind describes its app
 * registration, scopes and partition (OAuthApp) and asks for tokens; the Graph and IMAP/POP3 XOAUTH2
 * kinds reuse the same broker, cache and redirect endpoint. msal-node is loaded on first use.
 */
export class OAuthBroker {
  readonly #options: OAuthBrokerOptions;
  readonly #store: TokenStore;
  readonly #pending: PendingAuthorizations<CodeRequest>;
  readonly #apps = new Map<string, Promise<AppEntry>>();
  #msal: Promise<typeof Msal> | undefined;

  private constructor(options: OAuthBrokerOptions, store: TokenStore) {
    this.#options = options;
    this.#store = store;
    this.#pending = new PendingAuthorizations(options.stateTtlMs);
  }

  /** Opens the token cache (decrypting the file when configured); throws when it cannot be read. */
  static async create(options: OAuthBrokerOptions): Promise<OAuthBroker> {
    const store = await TokenStore.open({ file: options.tokenCacheFile, key: options.tokenCacheKey, logger: options.logger, shared: options.sharedTokens });
    return new OAuthBroker(options, store);
  }

  /** The redirect URI to register with the identity provider. */
  get redirectUri(): string {
    return `${this.#options.publicUrl.replace(/\/+$/, '')}${CALLBACK_PATH}`;
  }

  /**
   * A token from the cache, refreshed through the refresh token when it is close to expiry, or always
   * with `forceRefresh` (the resource refused the cached one, e.g. revoked before it expired).
   */
  async silent(app: OAuthApp, account: Partial<AccountRef>, scopes: string[], forceRefresh = false): Promise<SilentResult> {
    return this.#run(app, 'silent', async (entry) => {
      const accounts = await entry.msal.getTokenCache().getAllAccounts();
      const wanted = account.username?.toLowerCase();
      const found = accounts.find((a) => (account.homeAccountId ? a.homeAccountId === account.homeAccountId : a.username.toLowerCase() === wanted));
      if (!found) return { kind: 'none' };
      try {
        // MSAL answers from the cache while the token has more than 5 minutes left, else it refreshes
        const result = await entry.msal.acquireTokenSilent({ account: found, scopes, ...(forceRefresh ? { forceRefresh } : {}) });
        return result ? { kind: 'token', result: toTokenResult(result, app.authorityHost) } : { kind: 'none' };
      } catch (err) {
        if (oauthNeedsInteraction(err)) return { kind: 'interaction', reason: describe(err) };
        throw err;
      }
    });
  }

  /** Resource owner password credentials (ROPC): no MFA possible. */
  byPassword(app: OAuthApp, username: string, password: Secret, scopes: string[]): Promise<TokenResult> {
    return this.#run(app, 'password', async (entry) => {
      const result = await entry.msal.acquireTokenByUsernamePassword({ username, password: password.reveal(), scopes });
      if (!result) throw new AppError('OAUTH_PROVIDER_ERROR', `identity provider ${app.authorityHost} returned no token`);
      return toTokenResult(result, app.authorityHost);
    }, [password.reveal()]);
  }

  /** App-only token (client credentials); MSAL serves it from the cache until close to expiry, unless `skipCache`. */
  byClientCredentials(app: OAuthApp, scopes: string[], skipCache = false): Promise<TokenResult> {
    return this.#run(app, 'clientCredentials', async (entry) => {
      if (!('acquireTokenByClientCredential' in entry.msal)) throw new AppError('OAUTH_CLIENT_SECRET_REQUIRED', 'the client credentials flow needs a client secret');
      const result = await entry.msal.acquireTokenByClientCredential({ scopes, ...(skipCache ? { skipCache } : {}) });
      if (!result) throw new AppError('OAUTH_PROVIDER_ERROR', `identity provider ${app.authorityHost} returned no token`);
      return toTokenResult(result, app.authorityHost);
    });
  }

  /**
   * Starts a sign-in (authorization code + PKCE) for an owner; returns the URL a person opens. `shown`:
   * the URL becomes the session's authorizationUrl (false for a renewal through /authorize).
   */
  async beginAuthorization(app: OAuthApp, scopes: string[], owner: AuthorizationOwner, expected?: ExpectedAccount, shown = true): Promise<string> {
    this.#store.warnIfVolatile();
    const verifier = randomBytes(32).toString('base64url');
    const request: CodeRequest = { app, scopes, verifier, nonce: randomUUID(), expected };
    const loginHint = expected?.sendHint ? expected.username : undefined;
    const state = this.#pending.newState();
    const url = await this.#run(app, 'authorize', (entry) =>
      entry.msal.getAuthCodeUrl({
        scopes,
        redirectUri: this.redirectUri,
        state,
        nonce: request.nonce,
        codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
        codeChallengeMethod: 'S256',
        responseMode: 'query',
        ...(loginHint ? { loginHint } : {}),
      }),
    );
    this.#pending.add({ state, owner, url, data: request }, shown);
    this.#options.onStateStarted?.(state, this.#pending.ttlMs);
    return url;
  }

  /**
   * Where /v1/sessions/{name}/authorize sends a browser: the live sign-in behind the session's
   * authorizationUrl, or a fresh one when that has expired. undefined when the session waits for none.
   */
  async currentAuthorizationUrl(sessionUrl: string | undefined): Promise<string | undefined> {
    let state: string | null = null;
    try {
      state = sessionUrl ? new URL(sessionUrl).searchParams.get('state') : null;
    } catch {
      return undefined;
    }
    const owner = state ? this.#pending.ownerOf(state) : undefined;
    if (!owner) return undefined;
    return this.#pending.liveFor(owner)?.url ?? owner.renewAuthorization();
  }

  /**
   * Handles the redirect: checks the state (throws OAUTH_STATE_INVALID), redeems the code with the PKCE
   * verifier, and lets the session connect with the result. Resolves with the session's name and, when
   * it did not connect, why not.
   */
  async complete(query: CallbackQuery): Promise<{ sessionName: string; error?: AppError; awaiting?: boolean; account?: string }> {
    const pending = this.#pending.take(query.state);
    const { owner, data } = pending;
    let outcome: Parameters<AuthorizationOwner['complete']>[0];
    if (query.error) {
      outcome = { error: oauthCallbackError(query.error, query.error_description, data.app) };
    } else if (!query.code) {
      outcome = { error: new AppError('OAUTH_PROVIDER_ERROR', `identity provider ${data.app.authorityHost} redirected without a code or an error`) };
    } else {
      try {
        outcome = { account: await this.#redeem(data, query.code, owner.sessionName) };
      } catch (err) {
        outcome = { error: isAppError(err) ? err : new AppError('INTERNAL_ERROR', 'the sign-in could not be completed', {}, { cause: err }) };
      }
    }
    this.#options.logger.info({ session: owner.sessionName, ok: 'account' in outcome, code: 'error' in outcome ? outcome.error.code : undefined }, 'OAuth2 callback');
    try {
      await owner.complete(outcome);
      // connected, unless connecting asked for yet another sign-in; the page names the account that signed in,
      // so whoever opened the link sees which mailbox the session now reads (as its reference when it came by one)
      const account = 'account' in outcome ? (data.expected?.sendHint === false ? data.expected.shownAs : outcome.account.username) : undefined;
      return { sessionName: owner.sessionName, awaiting: this.#pending.liveFor(owner) !== undefined, ...(account ? { account } : {}) };
    } catch (err) {
      return { sessionName: owner.sessionName, error: isAppError(err) ? err : new AppError('INTERNAL_ERROR', 'the session could not connect') };
    }
  }

  /** Whether this process handed out `state` (live, used or expired): its callback is answered here. */
  knowsState(state: string): boolean {
    return this.#pending.knows(state);
  }

  /** Withdraws an owner's pending sign-in (its session closed). */
  cancel(owner: AuthorizationOwner): void {
    this.#pending.cancel(owner);
  }

  async close(): Promise<void> {
    const entries = await Promise.allSettled(this.#apps.values());
    for (const e of entries) if (e.status === 'fulfilled') e.value.network.close();
    this.#apps.clear();
    await this.#store.flush();
  }

  async #redeem(request: CodeRequest, code: string, sessionName: string): Promise<AccountRef> {
    return this.#run(request.app, 'redeem', async (entry) => {
      const result = await entry.msal.acquireTokenByCode({
        code,
        scopes: request.scopes,
        redirectUri: this.redirectUri,
        codeVerifier: request.verifier,
        nonce: request.nonce,
      });
      const account = result.account;
      if (!account) throw new AppError('OAUTH_PROVIDER_ERROR', `identity provider ${request.app.authorityHost} returned no account (no id_token)`);
      const expected = request.expected;
      if (expected && account.username.toLowerCase() !== expected.username.toLowerCase()) {
        // tokens nobody asked for are not kept
        await entry.msal.getTokenCache().removeAccount(account);
        throw new AppError(
          'OAUTH_ACCOUNT_MISMATCH',
          `signed in as ${account.username}, but session "${sessionName}" is for ${expected.shownAs}: sign in with that account (GET /v1/sessions/${sessionName}/authorize), or create the session with the right username`,
        );
      }
      return { homeAccountId: account.homeAccountId, username: account.username };
    }, [code]);
  }

  /** Runs an MSAL call alone on its cache slot, mapping its errors (with the transport cause) to codes. */
  async #run<T>(app: OAuthApp, step: OAuthErrorContext['step'], task: (entry: AppEntry) => Promise<T>, secrets: string[] = []): Promise<T> {
    const started = Date.now();
    let entry: AppEntry | undefined;
    try {
      entry = await this.#entry(app);
      const running = entry;
      return await this.#store.withLock(running.slot, async () => {
        for (const secret of secrets) running.inFlight.add(secret);
        try {
          return await task(running);
        } finally {
          for (const secret of secrets) running.inFlight.delete(secret);
        }
      });
    } catch (err) {
      const failure = entry?.network.lastFailure;
      const transport = failure && failure.at >= started ? failure : undefined;
      // the outbound policy's own refusal says more than MSAL's "network_error" around it
      if (isAppError(transport?.error)) throw transport.error;
      throw toOAuthError(err, {
        authorityHost: app.authorityHost,
        step,
        ...(transport ? { transport } : {}),
        secrets: [...secrets, ...(app.clientSecret ? [app.clientSecret.reveal()] : [])],
      });
    }
  }

  #entry(app: OAuthApp): Promise<AppEntry> {
    const secret = app.clientSecret?.reveal() ?? '';
    // one cache slot per app registration, secret and partition: a caller with another secret for the same
    // client ID never gets tokens that were issued against the right one
    const slot = this.#store.slotName([app.authorityHost, app.clientId, secret, app.partition]);
    const key = this.#store.slotName([app.authorityHost, app.tenantId, app.clientId, secret, app.partition, app.callerAuthority ? 'guarded' : 'configured']);
    let entry = this.#apps.get(key);
    if (!entry) {
      entry = this.#createEntry(app, slot);
      this.#apps.set(key, entry);
      entry.catch(() => this.#apps.delete(key));
    }
    return entry;
  }

  async #createEntry(app: OAuthApp, slot: string): Promise<AppEntry> {
    this.#msal ??= import('@azure/msal-node');
    const msal = await this.#msal;
    const guard = app.callerAuthority ? this.#options.guard : undefined;
    const network = new HttpsNetworkClient(outboundSecureContext(this.#options.extraCaFile), this.#options.timeoutMs, guard);
    const inFlight = new Set<string>();
    const secrets = () => [...(app.clientSecret ? [app.clientSecret.reveal()] : []), ...inFlight];
    const configuration: Msal.Configuration = {
      auth: {
        clientId: app.clientId,
        authority: `https://${app.authorityHost}/${app.tenantId}`,
        // the configured host is trusted as is: MSAL then never calls login.microsoftonline.com for instance discovery
        knownAuthorities: [app.authorityHost],
        ...(app.clientSecret ? { clientSecret: app.clientSecret.reveal() } : {}),
      },
      cache: { cachePlugin: this.#store.plugin(slot) },
      system: {
        networkClient: network,
        loggerOptions: msalLoggerOptions(msal, this.#options.logger, this.#options.libLogLevel, secrets),
      },
    };
    const instance = app.clientSecret ? new msal.ConfidentialClientApplication(configuration) : new msal.PublicClientApplication(configuration);
    return { app, msal: instance, network, slot, inFlight };
  }
}

/** What MSAL returned, refused when it holds no access token (MSAL passes a token answer without one as ""). */
function toTokenResult(result: Msal.AuthenticationResult, authorityHost: string): TokenResult {
  if (typeof result.accessToken !== 'string' || result.accessToken === '') {
    throw new AppError('OAUTH_PROVIDER_ERROR', `identity provider ${authorityHost} answered without an access token`);
  }
  return {
    accessToken: new Secret(result.accessToken),
    expiresOn: result.expiresOn ?? new Date(Date.now() + 60_000),
    ...(result.account ? { account: { homeAccountId: result.account.homeAccountId, username: result.account.username } } : {}),
  };
}

function describe(err: unknown): string {
  const e = err as { errorCode?: unknown; errorNo?: unknown };
  return [typeof e.errorCode === 'string' ? e.errorCode : 'interaction_required', typeof e.errorNo === 'string' ? `AADSTS${e.errorNo}` : '']
    .filter(Boolean)
    .join(' ');
}
