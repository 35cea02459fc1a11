import type { Secret } from '../domain/secret.js';

/** An app registration as a session uses it, and where its tokens may be shared. */
export interface OAuthApp {
  /** Identity provider host[:port], e.g. login.microsoftonline.com. */
  authorityHost: string;
  /** Tenant ID or domain, or "organizations" / "common". */
  tenantId: string;
  clientId: string;
  /** Present for a confidential client (required by the client credentials flow). */
  clientSecret?: Secret | undefined;
  /**
   * Separates token caches beyond the app: tokens are shared only between sessions with equal apps and
   * partitions. Kinds put the resource endpoint here, so a token obtained for one endpoint is never sent
   * to another one a caller names.
   */
  partition: string;
  /** The caller named this authority host (not the configured one): its requests pass the outbound policy. */
  callerAuthority?: boolean;
}

/** The account a delegated token belongs to. */
export interface AccountRef {
  homeAccountId: string;
  username: string;
}

export interface TokenResult {
  accessToken: Secret;
  expiresOn: Date;
  account?: AccountRef;
}

/** A silent lookup: a token, no cached account, or a sign-in needed (refresh refused, expired, MFA, consent). */
export type SilentResult = { kind: 'token'; result: TokenResult } | { kind: 'none' } | { kind: 'interaction'; reason: string };

export type OAuthFlow = 'authorizationCode' | 'password' | 'clientCredentials';
