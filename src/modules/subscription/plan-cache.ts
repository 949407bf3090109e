import { LRUCache } from 'lru-cache'
import type { Database } from '../../db/client.js'
import type { Plan } from '../../db/schema/index.js'
import { cachedOrFetch } from '../../lib/invalidation.js'
import { findSubscription } from './repository.js'

/**
 * The plan of an organization, for per-request decisions (rate limits). Postgres is the truth; this process
 * caches it for a few seconds, so a plan change reaches every process within `ttlMs`.
 */
export function createPlanCache(db: Database, ttlMs = 15_000) {
  const cache = new LRUCache<string, Plan>({
    max: 10_000,
    ttl: ttlMs,
    fetchMethod: async (organizationId) => (await findSubscription(db, organizationId))?.plan ?? 'free'
  })
  return {
    planOf: (organizationId: string): Plan | Promise<Plan> => cachedOrFetch(cache, organizationId, 'free'),
    forget: (organizationId: string) => void cache.delete(organizationId)
  }
}
export type PlanCache = ReturnType<typeof createPlanCache>
