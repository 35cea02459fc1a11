import { createHash } from 'node:crypto';
import type { RedisConnection } from './redis.js';

/**
 * Which replica started which OAuth2 sign-in: the identity provider may send the browser back to any
 * replica, and only the one that started it holds its PKCE verifier and the waiting session. Redis keeps
 * a hash of the state (never the state itself, which is a credential) and the replica's id.
 */
export class OAuthStates {
  readonly #redis: RedisConnection;
  readonly #me: string;

  constructor(redis: RedisConnection, me: string) {
    this.#redis = redis;
    this.#me = me;
  }

  /** Records a state this replica handed out (best effort: the callback then lands here or is forwarded here). */
  started(state: string, ttlMs: number): void {
    void this.#redis.client.set(this.#redis.keys.oauthState(hash(state)), this.#me, 'PX', ttlMs * 2).catch(() => {});
  }

  async replicaOf(state: string): Promise<string | undefined> {
    return (await this.#redis.client.get(this.#redis.keys.oauthState(hash(state)))) ?? undefined;
  }
}

function hash(state: string): string {
  return createHash('sha256').update(state).digest('base64url');
}
