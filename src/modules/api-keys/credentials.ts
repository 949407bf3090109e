import type { Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import type { InvalidationBus } from '../../lib/invalidation.js'
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

export const API_KEY_CACHE = 'apiKey'

/**
 * Resolves an API key: in-process LRU, then the Redis cache, then Postgres (also when Redis is down).
 * Revocation writes a Redis tombstone after the Postgres commit and drops the LRU entry in every process;
 * lookups only fill the Redis cache with SET NX, so a lookup that read Postgres just before the
 * revocation cannot resurrect the key.
 */
export function createApiKeyResolver(deps: {
  db: Database
  redis: Redis
  invalidation: InvalidationBus
  onCacheError: (err: unknown) => void
}) {
  const local = deps.invalidation.register(API_KEY_CACHE, new LRUCache<string, ApiKeyIdentity>({ max: 10_000, ttl: 10_000 }))
  return async function resolveApiKey(key: string): Promise<ApiKeyIdentity | undefined> {
    const hash = sha256(key)
    const hit = local.get(hash)
    if (hit) return hit
    const identity = await lookup(hash)
    if (identity) local.set(hash, identity)
    return identity
  }

  async function lookup(hash: string): Promise<ApiKeyIdentity | undefined> {
    const cacheKey = keys.apiKeyAuth(hash)
    const cached = await deps.redis.get(cacheKey).catch((err) => {
      deps.onCacheError(err)
      return undefined
    })
    if (cached === REVOKED) return undefined
    if (cached) return JSON.parse(cached) as ApiKeyIdentity
    const found = await findActiveKeyByHash(deps.db, hash)
    if (found) {
      await deps.redis.set(cacheKey, JSON.stringify(found), 'EX', TTL.apiKeyAuthSeconds, 'NX').catch(deps.onCacheError)
    }
    return found
  }
}
