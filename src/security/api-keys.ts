import { createHash, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../config.js';
import { VerifiedKeyCache } from './verified-key-cache.js';

export type Role = 'bot' | 'admin';

/** Who is calling: every session belongs to one principal. */
export interface Principal {
  name: string;
  role: Role;
}

interface KeyEntry extends Principal {
  hash: Buffer;
}

const ENTRY = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63}):(bot|admin):([0-9a-f]{64})$/;

/** SHA-256 of an API key, hex: what MSB_API_KEYS stores instead of the key. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * The configured API keys, as SHA-256 hashes only. Parsed from MSB_API_KEYS:
 * comma-separated `principal:role:sha256hex` entries.
 */
export class ApiKeys {
  readonly #entries: KeyEntry[];
  /** Keys verified lately (by keyed digest): a bot's every request skips the full check. Bounded, 5 minutes. */
  readonly #verified: VerifiedKeyCache<Principal>;

  constructor(spec: string) {
    this.#entries = spec
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((entry, i) => {
        const m = ENTRY.exec(entry);
        if (!m) throw new ConfigError(`invalid configuration: MSB_API_KEYS entry ${i + 1} is not "principal:bot|admin:<64 hex sha256>"`);
        return { name: m[1]!, role: m[2] as Role, hash: Buffer.from(m[3]!, 'hex') };
      });
    const names = this.#entries.map((e) => e.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) throw new ConfigError(`invalid configuration: MSB_API_KEYS names principal "${dup}" twice`);
    this.#verified = new VerifiedKeyCache({ maxEntries: Math.max(64, 4 * this.#entries.length), ttlMs: 5 * 60_000 });
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The principal of that name, while it has a key (restored sessions keep their owner's rights). */
  principal(name: string): Principal | undefined {
    const entry = this.#entries.find((e) => e.name === name);
    return entry ? { name: entry.name, role: entry.role } : undefined;
  }

  /** The principal whose key this is, or undefined. Compares against every entry in constant time. */
  verify(key: string): Principal | undefined {
    const digest = this.#verified.digest(key);
    const known = this.#verified.get(digest);
    if (known) return known;
    const presented = createHash('sha256').update(key, 'utf8').digest();
    let found: KeyEntry | undefined;
    for (const entry of this.#entries) {
      // no early exit: the time taken does not tell which entry matched
      if (timingSafeEqual(presented, entry.hash) && !found) found = entry;
    }
    if (!found) return undefined;
    const principal = Object.freeze({ name: found.name, role: found.role });
    this.#verified.set(digest, principal);
    return principal;
  }
}
