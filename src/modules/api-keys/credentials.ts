import type { RedisClient } from '../../redis/client.js'
import { LRUCache } from 'lru-cache'
import type { Database } from '../../db/client.js'
import type { Role } from '../../db/schema/index.js'
import { randomSecret, sha256 } from '../../lib/crypto.js'
import { withTimeout } from '../../lib/timeout.js'
import type { InvalidationBus } from '../../lib/invalidation.js'
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
export const API_KEY_CACHE = 'api-key'

/** Cache value of a revoked key: written over any cached identity, and never overwritten by a lookup. */
export const REVOKED = 'revoked'

/**
 * Resolves an API key: in-process LRU (keyed by the SHA-256, never the key), then the Redis cache, then
 * Postgres (also when Redis is down).
 *
 * A revocation must hold on the very next request in every process. It commits in Postgres, writes a
 * Redis tombstone, then invalidates the LRU entry everywhere and waits until no process can still serve
 * it (see invalidation.ts): the LRU is only trusted while this process provably receives invalidations,
 * and a lookup that raced an invalidation does not fill it. Lookups fill Redis with SET NX only, so a
 * lookup that read Postgres just before the revocation cannot overwrite the tombstone.
 */
export function createApiKeyResolver(deps: { db: Database; redis: RedisClient; invalidation: InvalidationBus; onCacheError: (err: unknown) => void }) {
  const local = deps.invalidation.register(API_KEY_CACHE, new LRUCache<string, ApiKeyIdentity>({ max: 10_000, ttl: 60_000 }))
  // Keys that are not valid: never issued, or revoked. A key is 32 random bytes, valid from its creation
  // until its revocation, which is final: one invalid now is never valid later, so the same wrong key tried
  // again costs no query (the failure limit per address bounds the distinct ones).
  const unknown = new LRUCache<string, true>({ max: 10_000, ttl: 600_000 })

  async function lookup(hash: string): Promise<ApiKeyIdentity | undefined> {
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

  async function lookupUnlessUnknown(hash: string): Promise<ApiKeyIdentity | undefined> {
    if (unknown.has(hash)) return undefined
    const found = await lookup(hash)
    if (!found) unknown.set(hash, true)
    return found
  }

  async function lookupAndRemember(hash: string, trusted: boolean) {
    const stamp = deps.invalidation.stamp()
    const found = await lookupUnlessUnknown(hash)
    if (found && trusted && deps.invalidation.unchanged(stamp)) local.set(hash, found)
    return found
  }

  /** The identity at once when this process may trust its cached copy, otherwise a promise of it. */
  return function resolveApiKey(key: string): ApiKeyIdentity | Promise<ApiKeyIdentity | undefined> {
    const hash = sha256(key)
    const trusted = deps.invalidation.isFresh()
    return (trusted && local.get(hash)) || lookupAndRemember(hash, trusted)
  }
}
