import type { Redis } from 'ioredis'
import type { Database } from '../../db/client.js'
import type { Role } from '../../db/schema/index.js'
import { randomSecret, sha256 } from '../../lib/crypto.js'
import { withTimeout } from '../../lib/timeout.js'
import { keys, TTL } from '../../redis/keys.js'
import { findActiveKeyByHash } from './repository.js'

export const API_KEY_PREFIX = 'dap_'

export function generateApiKey() {
  const key = `${API_KEY_PREFIX}${randomSecret(32)}`
  return { key, hash: sha256(key), prefix: key.slice(0, API_KEY_PREFIX.length + 6) }
}

export interface ApiKeyIdentity {
  id: string
  organizationId: string
  role: Role
}

const CACHE_WAIT_MS = 250

/** Cache value of a revoked key: written over any cached identity, and never overwritten by a lookup. */
export const REVOKED = 'revoked'

/**
 * Resolves an API key through the Redis cache, then Postgres (also when Redis is down). There is
 * deliberately no in-process cache: a revocation must hold on the very next request in every process,
 * and a pub/sub invalidation can arrive after that request. Revocation writes a Redis tombstone after the
 * Postgres commit; lookups only fill the cache with SET NX, so a lookup that read Postgres just before
 * the revocation cannot resurrect the key.
 */
export function createApiKeyResolver(deps: { db: Database; redis: Redis; onCacheError: (err: unknown) => void }) {
  return async function resolveApiKey(key: string): Promise<ApiKeyIdentity | undefined> {
    const hash = sha256(key)
    const cacheKey = keys.apiKeyAuth(hash)
    // A hung Redis must not cost a request its whole time budget before Postgres is asked.
    const read = deps.redis.get(cacheKey).catch((err) => {
      deps.onCacheError(err)
      return undefined
    })
    const cached = await withTimeout(read, CACHE_WAIT_MS, 'the API key cache').catch(() => undefined)
    if (cached === REVOKED) return undefined
    if (cached) return JSON.parse(cached) as ApiKeyIdentity
    const found = await findActiveKeyByHash(deps.db, hash)
    if (found) {
      await deps.redis.set(cacheKey, JSON.stringify(found), 'EX', TTL.apiKeyAuthSeconds, 'NX').catch(deps.onCacheError)
    }
    return found
  }
}
