import type { SessionRecord, SessionStore } from '../domain/session-store.js';
import { readIfExists, seal, unseal, writeAtomically } from '../security/sealed-file.js';

const MAGIC = Buffer.from('MSB-SESSIONS-1\n');

/**
 * Session definitions in one AES-256-GCM sealed file (the embedded store of a single container), written
 * atomically. Changes made within `delayMs` of each other are written together, so that creating
 * thousands of sessions does not rewrite the file thousands of times; close() writes what is pending.
 * A crash loses at most the changes of the last `delayMs`.
 */
export class FileSessionStore implements SessionStore {
  readonly #file: string;
  readonly #key: Buffer;
  readonly #delayMs: number;
  readonly #records = new Map<string, SessionRecord>();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #dirty = false;

  private constructor(file: string, key: Buffer, delayMs: number) {
    this.#file = file;
    this.#key = key;
    this.#delayMs = delayMs;
  }

  /** Opens the store, reading the file when there is one; throws when it cannot be decrypted (wrong key). */
  static async open(file: string, key: Buffer, delayMs = 50): Promise<FileSessionStore> {
    const store = new FileSessionStore(file, key, delayMs);
    const sealed = await readIfExists(file);
    if (sealed) {
      const records = JSON.parse(unseal(key, sealed, MAGIC).toString('utf8')) as SessionRecord[];
      for (const r of records) store.#records.set(keyOf(r.owner, r.name), r);
    }
    return store;
  }

  async load(): Promise<SessionRecord[]> {
    return [...this.#records.values()];
  }

  async save(record: SessionRecord): Promise<void> {
    this.#records.set(keyOf(record.owner, record.name), record);
    this.#schedule();
  }

  async remove(owner: string, name: string): Promise<void> {
    if (this.#records.delete(keyOf(owner, name))) this.#schedule();
  }

  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#dirty) this.#flush();
    await this.#writing;
  }

  #schedule(): void {
    this.#dirty = true;
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, this.#delayMs);
  }

  /** One write at a time, of the records as they are when it starts. */
  #flush(): void {
    this.#dirty = false;
    this.#writing = this.#writing
      .then(() => writeAtomically(this.#file, seal(this.#key, Buffer.from(JSON.stringify([...this.#records.values()])), MAGIC)))
      .catch(() => {
        // the next change writes again; a failed write never loses what is in memory
        this.#dirty = true;
      });
  }
}

const keyOf = (owner: string, name: string) => `${owner}\u0000${name}`;
