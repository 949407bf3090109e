import type { RedisClient } from '../../redis/client.js'
import { LRUCache } from 'lru-cache'
import { keys, TTL } from '../../redis/keys.js'
import '../../redis/scripts.js'
import type { MetadataType } from '../detection/series.js'

/** A series admitted lately is not checked again in Redis for this long (its last-seen time is refreshed then). */
const TOUCH_MS = 5 * 60_000
/** Series per admission script call: each call stays short. */
const ADMIT_CHUNK = 1000

/**
 * The organization's active series (those with a sample within TTL.activeSeriesMs), held to its plan's
 * limit. Series this process admitted within TOUCH_MS cost nothing; the others go to Redis in one script
 * call per 1,000, which refreshes the known and admits the new while there is room.
 */
export function createSeriesAdmission(deps: { redis: RedisClient }) {
  const admitted = new LRUCache<string, true>({ max: 500_000, ttl: TOUCH_MS })
  const counts = new LRUCache<string, number>({ max: 10_000 })

  /** Which of `members` ("<serviceId>:<seriesId>") the organization may not add: their positions. */
  async function admit(organizationId: string, members: string[], limit: number, now: number): Promise<Set<number>> {
    const unknown: number[] = []
    members.forEach((member, i) => {
      if (!admitted.has(`${organizationId}:${member}`)) unknown.push(i)
    })
    const refused = new Set<number>()
    for (let from = 0; from < unknown.length; from += ADMIT_CHUNK) {
      const chunk = unknown.slice(from, from + ADMIT_CHUNK)
      const [count, positions] = await deps.redis.admitSeries(
        1,
        keys.activeSeries(organizationId),
        now,
        TTL.activeSeriesMs,
        limit,
        ...chunk.map((i) => members[i]!)
      )
      counts.set(organizationId, count)
      const out = new Set(positions.map((p) => chunk[p - 1]!))
      for (const i of chunk) {
        if (out.has(i)) refused.add(i)
        else admitted.set(`${organizationId}:${members[i]}`, true)
      }
    }
    return refused
  }

  /** The active series of the organizations this process admitted series for lately (for /metrics). */
  const activeCounts = () => [...counts.entries()] as [string, number][]

  /** The organization's active series now. */
  async function activeOf(organizationId: string, now: number): Promise<number> {
    const key = keys.activeSeries(organizationId)
    const [, [, count]] = (await deps.redis.multi().zremrangebyscore(key, '-inf', now - TTL.activeSeriesMs).zcard(key).exec()) as [unknown, [unknown, number]]
    counts.set(organizationId, count)
    return count
  }

  return { admit, activeCounts, activeOf }
}
export type SeriesAdmission = ReturnType<typeof createSeriesAdmission>

const METADATA_TYPES = new Set<MetadataType>(['counter', 'gauge', 'histogram', 'gaugehistogram', 'summary', 'info', 'stateset', 'unknown'])
/** Metric families an organization may describe (Prometheus sends its whole metadata cache every minute). */
export const MAX_METRIC_FAMILIES = 20_000
const TYPES_FRESH_MS = 30_000

/**
 * Metric types from Prometheus remote_write metadata, per organization: kept in Redis (Prometheus resends
 * them every minute, so they are reconstructible), read through a 30 s in-process copy.
 */
export function createMetricTypes(deps: { redis: RedisClient }) {
  const cache = new LRUCache<string, { at: number; types: Map<string, MetadataType> }>({ max: 10_000 })

  async function typesOf(organizationId: string, now: number): Promise<Map<string, MetadataType>> {
    const cached = cache.get(organizationId)
    if (cached && now - cached.at < TYPES_FRESH_MS) return cached.types
    const stored = await deps.redis.hgetall(keys.metricTypes(organizationId))
    const types = new Map(Object.entries(stored).filter((entry): entry is [string, MetadataType] => METADATA_TYPES.has(entry[1] as MetadataType)))
    cache.set(organizationId, { at: now, types })
    return types
  }

  /** Records families' types; only those that changed are written. Returns how many were refused (over the bound). */
  async function record(organizationId: string, families: Map<string, MetadataType>, now: number): Promise<number> {
    const known = await typesOf(organizationId, now)
    const changed: string[] = []
    let refused = 0
    for (const [family, type] of families) {
      if (known.get(family) === type) continue
      if (!known.has(family) && known.size + changed.length / 2 >= MAX_METRIC_FAMILIES) {
        refused++
        continue
      }
      changed.push(family, type)
    }
    const key = keys.metricTypes(organizationId)
    if (changed.length > 0) {
      await deps.redis.multi().hset(key, ...changed).expire(key, TTL.metricTypesSeconds).exec()
      for (let i = 0; i < changed.length; i += 2) known.set(changed[i]!, changed[i + 1] as MetadataType)
    } else if (families.size > 0) {
      await deps.redis.expire(key, TTL.metricTypesSeconds)
    }
    return refused
  }

  return { typesOf, record }
}
export type MetricTypes = ReturnType<typeof createMetricTypes>
