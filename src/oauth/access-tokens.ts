import type { Secret } from '../domain/secret.js';

/**
 * What a connector asks before each use of the mailbox: an access token that is valid now. Implemented
 * by TokenSource (Microsoft, through msal-node) and GenericTokenSource (any RFC 6749 token endpoint).
 * Both refresh before expiry; `fresh` asks for a new token although the cached one has not expired,
 * because the resource just refused it.
 */
export interface AccessTokens {
  token(options?: { fresh?: boolean }): Promise<Secret>;
  /** Withdraws pending sign-ins and forgets tokens (the session is closing). */
  close(): void;
}
