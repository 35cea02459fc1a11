import { REPLICA_HEADER, type ReplicaSigner } from './forwarding.js';
import type { Membership } from './membership.js';
import type { RedisConnection } from './redis.js';

/**
 * While this replica cannot reach Redis: is it alone in that (cut off by the network: the others will
 * take its sessions over once the leases expire, so it must stop using them in time), or can nobody
 * reach Redis (then nobody can take anything over, and held sessions keep working)? It asks the other
 * replicas over HTTP, every tick.
 */
export class Outage {
  readonly #redis: RedisConnection;
  readonly #membership: Membership;
  readonly #signer: ReplicaSigner;
  readonly #tickMs: number;
  /** Every other live replica answered, and none reaches Redis. */
  #downForAll = false;
  #lastPoll = 0;

  constructor(redis: RedisConnection, membership: Membership, signer: ReplicaSigner, tickMs: number) {
    this.#redis = redis;
    this.#membership = membership;
    this.#signer = signer;
    this.#tickMs = tickMs;
  }

  /**
   * Whether held sessions may stay in use past their lease: only while Redis is unreachable and every
   * other live replica said, within the last two ticks, that it cannot reach Redis either. A replica cut
   * off alone gets no such answer (or none at all) and closes its sessions in time.
   */
  nobodyCanTakeOver(): boolean {
    return !this.#redis.up && this.#downForAll && Date.now() - this.#lastPoll < 2 * this.#tickMs;
  }

  async pollPeers(): Promise<void> {
    const path = '/internal/cluster/health';
    const answers = await Promise.all(
      this.#membership.peers().map(async (peer) => {
        try {
          const res = await fetch(new URL(path, peer.url), { headers: { [REPLICA_HEADER]: this.#signer.sign('GET', path, undefined) }, signal: AbortSignal.timeout(1000) });
          if (!res.ok) return undefined;
          return ((await res.json()) as { redis?: unknown }).redis === true;
        } catch {
          return undefined;
        }
      }),
    );
    // a fleet of one has nobody to ask, and nobody to take over
    this.#downForAll = answers.every((reaches) => reaches === false);
    this.#lastPoll = Date.now();
  }
}
