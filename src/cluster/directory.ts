import type { SessionView } from '../domain/session.js';
import { defineScript, sessionId, type RedisConnection, type Script } from './redis.js';
import type { Sealer } from './sealer.js';

/** What the owner of a session last published about it. */
export interface DirectoryEntry {
  view: SessionView;
  replica: string;
  fence: number;
  /** When it was published (ms). */
  at: number;
}

// Only the lease holder writes (its fence is in the lease value): a replica that lost the session cannot
// overwrite what the new owner published. KEYS: lease, directory hash, principals. ARGV: mine, name, sealed, principal
const PUBLISH = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
return 1
`;

/**
 * The shared directory: per principal, one hash of the sessions' last views as their owners published
 * them (sealed: a view holds no secret, but an authorizationUrl carries a sign-in state), so that any
 * replica can list sessions and inspect one without asking its owner.
 */
export class Directory {
  readonly #redis: RedisConnection;
  readonly #sealer: Sealer;
  readonly #publish: Script;

  constructor(redis: RedisConnection, sealer: Sealer) {
    this.#redis = redis;
    this.#sealer = sealer;
    this.#publish = defineScript(redis.client, PUBLISH);
  }

  async publish(entry: DirectoryEntry, leaseValue: string): Promise<boolean> {
    const { owner, name } = entry.view;
    const k = this.#redis.keys;
    const sealed = this.#sealer.sealJson(`dir:${sessionId(owner, name)}`, entry);
    return (await this.#publish([k.lease(sessionId(owner, name)), k.directory(owner), k.principals], [leaseValue, name, sealed, owner])) === 1;
  }

  async get(owner: string, name: string): Promise<DirectoryEntry | undefined> {
    const sealed = await this.#redis.client.hget(this.#redis.keys.directory(owner), name);
    return sealed === null ? undefined : this.#open(owner, name, sealed);
  }

  /** Every entry of one principal, or of all principals. */
  async list(owner?: string): Promise<DirectoryEntry[]> {
    const owners = owner !== undefined ? [owner] : await this.#redis.client.smembers(this.#redis.keys.principals);
    const out: DirectoryEntry[] = [];
    for (const o of owners) {
      const all = await this.#redis.client.hgetall(this.#redis.keys.directory(o));
      for (const [name, sealed] of Object.entries(all)) {
        const entry = this.#open(o, name, sealed);
        if (entry) out.push(entry);
      }
    }
    return out;
  }

  async remove(owner: string, name: string): Promise<void> {
    await this.#redis.client.hdel(this.#redis.keys.directory(owner), name);
  }

  /** An entry that does not decrypt (another key, altered) is skipped, never shown. */
  #open(owner: string, name: string, sealed: string): DirectoryEntry | undefined {
    try {
      return this.#sealer.unsealJson<DirectoryEntry>(`dir:${sessionId(owner, name)}`, sealed);
    } catch {
      return undefined;
    }
  }
}
