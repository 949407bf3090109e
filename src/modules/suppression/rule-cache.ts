import { and, eq, gt } from 'drizzle-orm'
import { LRUCache } from 'lru-cache'
import type { Database } from '../../db/client.js'
import { suppressionRules } from '../../db/schema/index.js'
import { cachedOrFetch, type InvalidationBus } from '../../lib/invalidation.js'
import type { RuleWindow } from './matcher.js'

export const RULE_CACHE = 'suppressionRules'
/** Samples may carry past timestamps: rules that ended within this long still apply to them. */
const LOOKBACK_MS = 24 * 3_600_000

/** An organization's current and recent suppression rules, cached per process and dropped on change. */
export function createRuleCache(db: Database, invalidation: InvalidationBus) {
  const cache = invalidation.register(
    RULE_CACHE,
    new LRUCache<string, RuleWindow[]>({
      max: 10_000,
      ttl: 30_000,
      fetchMethod: (organizationId) =>
        db
          .select({
            servicePattern: suppressionRules.servicePattern,
            metricPattern: suppressionRules.metricPattern,
            maxSeverity: suppressionRules.maxSeverity,
            startsAt: suppressionRules.startsAt,
            endsAt: suppressionRules.endsAt,
            schedule: suppressionRules.schedule
          })
          .from(suppressionRules)
          .where(and(eq(suppressionRules.organizationId, organizationId), gt(suppressionRules.endsAt, new Date(Date.now() - LOOKBACK_MS))))
    })
  )
  return {
    rulesOf: (organizationId: string): RuleWindow[] | Promise<RuleWindow[]> => cachedOrFetch(cache, organizationId, []),
    changed: (organizationId: string) => invalidation.invalidate(RULE_CACHE, organizationId)
  }
}
export type RuleCache = ReturnType<typeof createRuleCache>
