import type { Logger } from 'pino';
import type { SessionPool } from './domain/pool.js';
import type { SessionStore } from './domain/session-store.js';
import { isAppError } from './errors.js';
import { prepareSession, type PrepareDependencies } from './kinds/prepare-session.js';
import type { Principal } from './security/api-keys.js';

/**
 * Puts every stored session back into the pool at start, with its owner's rights as they are now: a
 * session whose owner has no key any more is dropped from the store; one that cannot be prepared (a
 * secret that is gone...) is logged and left in the store for the next start. Answers how many came back.
 */
export async function restoreSessions(
  store: SessionStore,
  pool: SessionPool,
  deps: PrepareDependencies,
  principalNamed: (name: string) => Principal | undefined,
  logger: Logger,
): Promise<number> {
  let restored = 0;
  for (const record of await store.load()) {
    const principal = principalNamed(record.owner);
    const where = { session: record.name, owner: record.owner };
    if (!principal) {
      logger.warn(where, 'stored session dropped: its owner has no API key any more');
      await store.remove(record.owner, record.name);
      continue;
    }
    try {
      const prepared = await prepareSession(record.definition as { name: string; type: string }, principal, deps);
      pool.restore(record.owner, record.name, prepared);
      restored += 1;
    } catch (err) {
      logger.warn({ ...where, code: isAppError(err) ? err.code : 'INTERNAL_ERROR' }, 'stored session not restored: it could not be prepared');
    }
  }
  if (restored > 0) logger.info({ sessions: restored }, 'sessions restored from the session store');
  return restored;
}
