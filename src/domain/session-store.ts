/**
 * Where session definitions outlive the process: what was asked at create (the body as the caller gave
 * it, secrets and secret references included), so that a restarted service restores its sessions by
 * itself. Implementations encrypt everything they write.
 */
export interface SessionRecord {
  owner: string;
  name: string;
  /** The create body as given (secret references stay references and are resolved again at restore). */
  definition: Record<string, unknown>;
  createdAt: string;
}

export interface SessionStore {
  load(): Promise<SessionRecord[]>;
  save(record: SessionRecord): Promise<void>;
  remove(owner: string, name: string): Promise<void>;
  /** Writes what is pending and releases the store. */
  close(): Promise<void>;
}

/** The default: sessions live in memory only and end with the process. */
export const noSessionStore: SessionStore = {
  load: async () => [],
  save: async () => {},
  remove: async () => {},
  close: async () => {},
};
