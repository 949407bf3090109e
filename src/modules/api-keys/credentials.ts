import type { Redis } from 'ioredis'
import type { Database } from '../../db/client.js'
import type { Role } from '../../db/schema/index.js'
import { randomSecret, sha256 } from '../../lib/crypto.js'
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

/** Cache value of a revoked key: written over any cached identity, and never overwritten by a lookup. */
export const REVOKED = 'revoked'

/**
 * Resolves an API key through the Redis cache, falling back to Postgres (also when Redis is down).
 * Revocation writes a tombstone after the Postgres commit; lookups only fill the cache with SET NX, so a
 * lookup that read Postgres just before the revocation cannot resurrect the key in the cache.
 */
export function createApiKeyResolver(deps: { db: Database; redis: Redis; onCacheError: (err: unknown) => void }) {
  return async function resolveApiKey(key: string): Promise<ApiKeyIdentity | undefined> {
    const cacheKey = keys.apiKeyAuth(sha256(key))
    const cached = await deps.redis.get(cacheKey).catch((err) => {
      deps.onCacheError(err)
      return undefined
    })
    if (cached === REVOKED) return undefined
    if (cached) return JSON.parse(cached) as ApiKeyIdentity
    const found = await findActiveKeyByHash(deps.db, sha256(key))
    if (found) {
      await deps.redis.set(cacheKey, JSON.stringify(found), 'EX', TTL.apiKeyAuthSeconds, 'NX').catch(deps.onCacheError)
    }
    return found
  }
}
