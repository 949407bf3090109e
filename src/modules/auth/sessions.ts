import type { RedisClient } from '../../redis/client.js'
import { LRUCache } from 'lru-cache'
import type { Database } from '../../db/client.js'
import type { InvalidationBus } from '../../lib/invalidation.js'
import { withTimeout } from '../../lib/timeout.js'
import { keys } from '../../redis/keys.js'
import { isSessionLive } from './repository.js'

const CACHE_WAIT_MS = 250
export const SESSION_CACHE = 'session'

/**
 * Whether an access token's session (`sid`) is still live: in-process LRU of live sessions, then the Redis
 * tombstone of a revoked one, then Postgres (also when Redis is down). A session that is gone (its user or
 * organization deleted, or purged) is not live either.
 *
 * The same guarantee as API keys (see credentials.ts): a revocation commits in Postgres, writes the
 * tombstone, then invalidates the LRU entry everywhere and waits until no process can still serve it. The
 * LRU is trusted only while this process provably receives invalidations, and a lookup that raced an
 * invalidation does not fill it. Only revocations are written to Redis, so no lookup can hide one.
 */
export function createSessionChecker(deps: { db: Database; redis: RedisClient; invalidation: InvalidationBus; onCacheError: (err: unknown) => void }) {
  const live = deps.invalidation.register(SESSION_CACHE, new LRUCache<string, true>({ max: 100_000, ttl: 60_000 }))

  async function lookup(sessionId: string): Promise<boolean> {
    // A hung Redis must not cost a request its whole time budget before Postgres is asked.
    const read = deps.redis.exists(keys.revokedSession(sessionId)).catch((err) => {
      deps.onCacheError(err)
      return 0
    })
    const tombstoned = await withTimeout(read, CACHE_WAIT_MS, 'the session tombstone').catch(() => 0)
    return tombstoned === 0 && isSessionLive(deps.db, sessionId)
  }

  async function lookupAndRemember(sessionId: string, trusted: boolean) {
    const stamp = deps.invalidation.stamp()
    const found = await lookup(sessionId)
    if (found && trusted && deps.invalidation.unchanged(stamp)) live.set(sessionId, true)
    return found
  }

  /** `true` at once when this process may trust its cached copy, otherwise a promise of the answer. */
  return function isLive(sessionId: string): boolean | Promise<boolean> {
    const trusted = deps.invalidation.isFresh()
    return (trusted && live.get(sessionId)) || lookupAndRemember(sessionId, trusted)
  }
}

/**
 * After a session's revocation has committed: tombstones it for as long as one of its access tokens can
 * live and drops it from every process's cache, resolving once no process can still accept it. Throws
 * when Redis refuses (the caller's 503 says to repeat, which repeats this).
 */
export function createSessionRevocation(deps: {
  redis: Pick<RedisClient, 'set'>
  invalidation: Pick<InvalidationBus, 'invalidateEverywhere'>
  accessTtlSeconds: number
}) {
  return async function announceRevoked(sessionId: string) {
    await deps.redis.set(keys.revokedSession(sessionId), '1', 'EX', deps.accessTtlSeconds)
    await deps.invalidation.invalidateEverywhere(SESSION_CACHE, sessionId)
  }
}
