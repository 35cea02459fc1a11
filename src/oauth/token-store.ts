import { createHmac, randomBytes } from 'node:crypto';
import type { ICachePlugin, TokenCacheContext } from '@azure/msal-node';
import type { Logger } from 'pino';
import type { Secret } from '../domain/secret.js';
import { readIfExists, seal, unseal, writeAtomically } from '../security/sealed-file.js';

export interface TokenStoreOptions {
  /** Where the sealed cache lives; empty: memory only. */
  file: string;
  /** AES-256-GCM key (32 bytes, base64); undefined: memory only. */
  key: Secret | undefined;
  logger: Logger;
  /** Slots kept where every replica reads them (Redis, sealed there), instead of the file. */
  shared?: SharedTokenSlots | undefined;
}

/** A place for token cache slots that replicas share; `slotKey` names slots the same on every replica. */
export interface SharedTokenSlots {
  slotKey: Buffer;
  get(slot: string): Promise<string | undefined>;
  set(slot: string, value: string): Promise<void>;
}

interface FileContent {
  v: 1;
  slots: Record<string, string>;
}

/**
 * MSAL token caches, one "slot" per (authority, client, secret, partition), kept in memory and, with a
 * key, in one AES-256-GCM sealed file that survives restarts. MSAL reads a slot before every cache access
 * and writes it after a change (ICachePlugin); operations on one slot are serialized (withLock) so two
 * app instances sharing a slot never overwrite each other's refresh tokens.
 */
export class TokenStore {
  readonly #slots = new Map<string, string>();
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #file: string;
  readonly #key: Buffer | undefined;
  readonly #slotKey: Buffer;
  readonly #logger: Logger;
  readonly #shared: SharedTokenSlots | undefined;
  #writing: Promise<void> | undefined;
  #dirty = false;
  #warned = false;

  private constructor(options: TokenStoreOptions, key: Buffer | undefined) {
    this.#file = options.file;
    this.#key = key;
    this.#logger = options.logger;
    this.#shared = options.shared;
    // slot names are derived from the cache key so that they stay the same across restarts (and replicas)
    const base = key ?? options.shared?.slotKey;
    this.#slotKey = base ? createHmac('sha256', base).update('msb token-cache slot names').digest() : randomBytes(32);
  }

  /** Opens the store, reading the sealed file when there is one. Throws when it cannot be decrypted. */
  static async open(options: TokenStoreOptions): Promise<TokenStore> {
    const key = options.key && options.file ? Buffer.from(options.key.reveal(), 'base64') : undefined;
    const store = new TokenStore(options, key);
    if (Boolean(options.key) !== Boolean(options.file)) {
      options.logger.warn(`MSB_TOKEN_CACHE_${options.key ? 'FILE' : 'KEY'} is not set: OAuth2 tokens are kept in memory only (the cache file needs both)`);
    }
    if (!key) return store;
    const sealed = await readIfExists(options.file);
    if (!sealed) return store;
    let content: FileContent;
    try {
      content = JSON.parse(unseal(key, sealed).toString('utf8')) as FileContent;
    } catch (err) {
      throw new Error(
        `MSB_TOKEN_CACHE_FILE ${options.file} cannot be decrypted with MSB_TOKEN_CACHE_KEY (wrong key or damaged file); set the right key, or move the file away to start with an empty cache`,
        { cause: err },
      );
    }
    for (const [slot, value] of Object.entries(content.slots ?? {})) store.#slots.set(slot, value);
    options.logger.info({ file: options.file, slots: store.#slots.size }, 'token cache loaded');
    return store;
  }

  get persistent(): boolean {
    return this.#key !== undefined || this.#shared !== undefined;
  }

  /** Says once, when OAuth2 is first used, that tokens will not survive a restart. */
  warnIfVolatile(): void {
    if (this.persistent || this.#warned) return;
    this.#warned = true;
    this.#logger.warn(
      'OAuth2 tokens are kept in memory only: set MSB_TOKEN_CACHE_FILE and MSB_TOKEN_CACHE_KEY so that sign-ins survive a restart',
    );
  }

  /** A stable, non-reversible slot name for these parts (they may include a client secret). */
  slotName(parts: readonly string[]): string {
    return createHmac('sha256', this.#slotKey).update(JSON.stringify(parts)).digest('base64url');
  }

  /** The MSAL cache plugin of one slot. */
  plugin(slot: string): ICachePlugin {
    return {
      beforeCacheAccess: async (context: TokenCacheContext) => {
        // another replica may have refreshed the tokens since; while the shared place is away, the copy here serves
        const shared = this.#shared ? await this.#shared.get(slot).catch(() => undefined) : undefined;
        if (shared !== undefined) this.#slots.set(slot, shared);
        context.tokenCache.deserialize(this.#slots.get(slot) ?? '');
      },
      afterCacheAccess: async (context: TokenCacheContext) => {
        if (!context.cacheHasChanged) return;
        const serialized = context.tokenCache.serialize();
        if (this.#slots.get(slot) === serialized) return;
        this.#slots.set(slot, serialized);
        if (this.#shared) {
          await this.#shared.set(slot, serialized).catch((err: unknown) => {
            this.#logger.error({ err: { message: (err as Error).message } }, 'cannot write the shared token cache: tokens stay in this process until the next change');
          });
          return;
        }
        await this.#persist();
      },
    };
  }

  /** Runs `task` alone among the tasks of the same slot. */
  withLock<T>(slot: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(slot) ?? Promise.resolve();
    const run = previous.then(task, task);
    const tail = run.catch(() => undefined);
    this.#locks.set(slot, tail);
    void tail.then(() => {
      if (this.#locks.get(slot) === tail) this.#locks.delete(slot);
    });
    return run;
  }

  /** Waits for pending writes (on shutdown). */
  async flush(): Promise<void> {
    await this.#writing;
  }

  /** Writes the sealed file; concurrent changes are coalesced into the next write. Never throws. */
  #persist(): Promise<void> {
    if (!this.#key) return Promise.resolve();
    this.#dirty = true;
    this.#writing ??= (async () => {
      while (this.#dirty) {
        this.#dirty = false;
        const content: FileContent = { v: 1, slots: Object.fromEntries(this.#slots) };
        try {
          await writeAtomically(this.#file, seal(this.#key!, Buffer.from(JSON.stringify(content), 'utf8')));
        } catch (err) {
          // the tokens stay usable in memory; only the restart would need a new sign-in
          this.#logger.error({ err: { message: (err as Error).message, code: (err as NodeJS.ErrnoException).code } }, 'cannot write the token cache file');
        }
      }
      this.#writing = undefined;
    })();
    return this.#writing;
  }
}
