import type { RedisClient } from '../../redis/client.js'
import { LRUCache } from 'lru-cache'
import { and, eq, inArray, isNull } from 'drizzle-orm'
import type { Database } from '../../db/client.js'
import { services, type DetectionConfig } from '../../db/schema/index.js'
import type { ChangeContext } from '../../lib/context.js'
import type { InvalidationBus } from '../../lib/invalidation.js'
import { keys, TTL } from '../../redis/keys.js'
import { detectionOf, type createServicesService } from './service.js'

export interface ResolvedService {
  id: string
  name: string
  detection: DetectionConfig
}
export type Resolution = ResolvedService | { rejected: 'plan_limit'; detail: string }

export const SERVICE_CACHE = 'serviceByName'
/**
 * Left in Redis for a while when a service changes, instead of deleting the entry: lookups fill the cache
 * with SET NX only, so one that read the old row just before the change (Postgres statements end within
 * 10 s) cannot put it back.
 */
const FORGOTTEN = '-'
const FORGOTTEN_SECONDS = 30
const cacheKey = (organizationId: string, name: string) => `${organizationId}:${name}`
const FULL_MS = 10_000

/**
 * Service names → services for ingestion: in-process LRU, then Redis, then Postgres; unknown names are
 * registered within the plan's limit. Service changes drop entries everywhere (see `forget`).
 */
export function createServiceResolver(deps: {
  db: Database
  redis: RedisClient
  invalidation: InvalidationBus
  services: Pick<ReturnType<typeof createServicesService>, 'registerAll'>
  onCacheError: (err: unknown) => void
}) {
  const local = deps.invalidation.register(SERVICE_CACHE, new LRUCache<string, ResolvedService>({ max: 50_000, ttl: 60_000 }))
  /**
   * Organizations found at their plan's service limit lately, with the refusal's detail: their unknown names
   * are refused without a transaction for FULL_MS (or until a service of theirs is deleted in this process),
   * so a stream of batches of new names past the limit does not queue on the organization's lock.
   */
  const full = new LRUCache<string, string>({ max: 100_000, ttl: FULL_MS })

  // One organization's names share a hash tag (keys.serviceByName): each pipeline here is one Redis Cluster slot.
  async function fromRedis(organizationId: string, names: string[]) {
    const pipeline = deps.redis.pipeline()
    for (const name of names) pipeline.get(keys.serviceByName(organizationId, name))
    const replies = await pipeline.exec().catch((err) => {
      deps.onCacheError(err)
      return null
    })
    const found = new Map<string, ResolvedService>()
    replies?.forEach(([err, value], i) => {
      if (!err && typeof value === 'string' && value !== FORGOTTEN) found.set(names[i]!, JSON.parse(value) as ResolvedService)
    })
    return found
  }

  async function fromPostgres(organizationId: string, names: string[]) {
    const rows = await deps.db
      .select({ id: services.id, name: services.name, detection: services.detection })
      .from(services)
      .where(and(eq(services.organizationId, organizationId), inArray(services.name, names), isNull(services.deletedAt)))
    const found = new Map(rows.map((row) => [row.name, { id: row.id, name: row.name, detection: detectionOf(row) }]))
    if (found.size > 0) {
      const pipeline = deps.redis.pipeline()
      for (const service of found.values()) {
        pipeline.set(keys.serviceByName(organizationId, service.name), JSON.stringify(service), 'EX', TTL.serviceByNameSeconds, 'NX')
      }
      await pipeline.exec().catch(deps.onCacheError)
    }
    return found
  }

  /** Unknown names, registered in one transaction within the plan; the rest refused. */
  async function register(ctx: ChangeContext, names: string[]): Promise<Map<string, Resolution>> {
    const out = new Map<string, Resolution>()
    let refusal = full.get(ctx.organizationId)
    if (refusal === undefined) {
      const { created, refused, plan, maxServices } = await deps.services.registerAll(ctx, names)
      for (const row of created) out.set(row.name, { id: row.id, name: row.name, detection: detectionOf(row) })
      if (refused.length > 0) {
        refusal = `the ${plan} plan allows ${maxServices} services; upgrade to add more`
        full.set(ctx.organizationId, refusal)
      }
      // Registered concurrently by another request: read back.
      const taken = names.filter((name) => !out.has(name) && !refused.includes(name))
      if (taken.length > 0) for (const [name, service] of await fromPostgres(ctx.organizationId, taken)) out.set(name, service)
    }
    for (const name of names) if (!out.has(name)) out.set(name, { rejected: 'plan_limit', detail: refusal ?? 'the service could not be registered' })
    return out
  }

  async function resolve(ctx: ChangeContext, names: string[]): Promise<Map<string, Resolution>> {
    const out = new Map<string, Resolution>()
    let missing: string[] = []
    for (const name of names) {
      const hit = local.get(cacheKey(ctx.organizationId, name))
      if (hit) out.set(name, hit)
      else missing.push(name)
    }
    // A lookup that raced an invalidation is used for this request but not cached.
    const stamp = deps.invalidation.stamp()
    for (const lookup of [fromRedis, fromPostgres]) {
      if (missing.length === 0) break
      const found = await lookup(ctx.organizationId, missing)
      for (const [name, service] of found) {
        if (deps.invalidation.unchanged(stamp)) local.set(cacheKey(ctx.organizationId, name), service)
        out.set(name, service)
      }
      missing = missing.filter((name) => !found.has(name))
    }
    if (missing.length > 0) {
      for (const [name, resolution] of await register(ctx, missing)) {
        if (!('rejected' in resolution)) local.set(cacheKey(ctx.organizationId, name), resolution)
        out.set(name, resolution)
      }
    }
    return out
  }

  /** After a service is renamed, reconfigured or deleted: drop it from Redis and from every process. */
  async function forget(organizationId: string, name: string) {
    full.delete(organizationId)
    await deps.redis.set(keys.serviceByName(organizationId, name), FORGOTTEN, 'EX', FORGOTTEN_SECONDS).catch(deps.onCacheError)
    await deps.invalidation.invalidate(SERVICE_CACHE, cacheKey(organizationId, name))
  }

  return { resolve, forget }
}
export type ServiceResolver = ReturnType<typeof createServiceResolver>
