import type { Logger } from 'pino';
import type { Secret } from '../domain/secret.js';
import { AppError } from '../errors.js';
import type { ExpectedAccount, OAuthBroker } from './broker.js';
import type { AuthorizationOwner } from './pending-authorizations.js';
import type { AccountRef, OAuthApp, OAuthFlow } from './types.js';

export interface TokenSourceSpec {
  sessionName: string;
  app: OAuthApp;
  flow: OAuthFlow;
  scopes: string[];
  /** The mailbox user: login hint and expected account (authorizationCode), ROPC username. */
  username: string;
  /**
   * The secret's name when `username` came by reference: the value is then never put in the sign-in URL
   * (login_hint, which the caller reads in authorizationUrl) and messages show `secret:<name>` instead.
   */
  usernameRef?: string | undefined;
  /** ROPC only. */
  password?: Secret | undefined;
}

export interface TokenSourceContext {
  /** Makes the session connect again (ConnectorContext.resume). */
  resume: () => Promise<void>;
  logger: Logger;
}

/**
 * A session's access tokens for one flow: what a connector calls before each use of the mailbox. The
 * broker keeps tokens fresh (MSAL refreshes within 5 minutes of expiry), so a long session keeps working.
 * When a person must sign in (no cached account, refresh refused), token() throws AUTHORIZATION_REQUIRED
 * with a fresh URL; the redirect endpoint later calls complete(), which resumes the session.
 */
export class TokenSource implements AuthorizationOwner {
  readonly sessionName: string;
  readonly #broker: OAuthBroker;
  readonly #spec: TokenSourceSpec;
  readonly #ctx: TokenSourceContext;
  #account: AccountRef | undefined;
  /** Why the last sign-in failed; thrown once by the next token() so the session fails with it. */
  #failure: AppError | undefined;

  constructor(broker: OAuthBroker, spec: TokenSourceSpec, ctx: TokenSourceContext) {
    this.sessionName = spec.sessionName;
    this.#broker = broker;
    this.#spec = spec;
    this.#ctx = ctx;
  }

  /**
   * `fresh`: the resource refused the last token (HTTP 401, SASL failure) although it had not expired:
   * a new one is fetched instead of the cached one (refresh token, password or client credentials).
   */
  async token(options: { fresh?: boolean } = {}): Promise<Secret> {
    const { app, scopes, flow } = this.#spec;
    const fresh = options.fresh === true;
    if (flow === 'clientCredentials') return (await this.#broker.byClientCredentials(app, scopes, fresh)).accessToken;
    if (flow === 'password') return this.#byPassword(fresh);

    const failure = this.#failure;
    if (failure) {
      this.#failure = undefined;
      throw failure;
    }
    // a later session of the same account and app connects silently through the cached refresh token
    const silent = await this.#broker.silent(app, this.#account ?? { username: this.#spec.username }, scopes, fresh);
    if (silent.kind === 'token') {
      if (silent.result.account) this.#account = silent.result.account;
      return silent.result.accessToken;
    }
    if (silent.kind === 'interaction') this.#ctx.logger.info({ reason: silent.reason }, 'the stored sign-in cannot be refreshed: a new sign-in is needed');
    this.#account = undefined;
    const authorizationUrl = await this.#broker.beginAuthorization(app, scopes, this, this.#expected());
    const name = this.sessionName;
    throw new AppError(
      'AUTHORIZATION_REQUIRED',
      `session "${name}" waits for an OAuth2 sign-in by ${this.#expected()?.shownAs ?? 'the mailbox owner'}${silent.kind === 'interaction' ? ' (the stored sign-in can no longer be refreshed)' : ''}: open authorizationUrl, or GET /v1/sessions/${name}/authorize, in a browser`,
      { authorizationUrl },
    );
  }

  /** The account that has signed in, once one has (what inspect shows of an unpinned session). */
  get account(): string | undefined {
    return this.#account?.username;
  }

  /** Who must sign in: the session's username, shown as its reference when it came by one. */
  #expected(): ExpectedAccount | undefined {
    const { username, usernameRef } = this.#spec;
    if (!username) return undefined;
    return { username, sendHint: usernameRef === undefined, shownAs: usernameRef === undefined ? username : `secret:${usernameRef}` };
  }

  /** Called by the redirect endpoint (through the broker) with the sign-in's outcome. */
  async complete(outcome: { account: AccountRef } | { error: AppError }): Promise<void> {
    if ('account' in outcome) this.#account = outcome.account;
    else this.#failure = outcome.error;
    await this.#ctx.resume();
  }

  renewAuthorization(): Promise<string> {
    const { app, scopes } = this.#spec;
    return this.#broker.beginAuthorization(app, scopes, this, this.#expected(), false);
  }

  /** Withdraws a pending sign-in (the session is closing). */
  close(): void {
    this.#broker.cancel(this);
  }

  async #byPassword(fresh = false): Promise<Secret> {
    const { app, scopes, username, password } = this.#spec;
    // the cache is used only once this session's own password was accepted: a caller cannot borrow
    // another session's tokens by naming the same user with a wrong password
    if (this.#account && !fresh) {
      const silent = await this.#broker.silent(app, this.#account, scopes);
      if (silent.kind === 'token') return silent.result.accessToken;
    }
    if (!password) throw new AppError('VALIDATION_ERROR', 'the password flow needs a password');
    const result = await this.#broker.byPassword(app, username, password, scopes);
    this.#account = result.account;
    return result.accessToken;
  }
}
