import type { Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import { and, eq, inArray, isNull } from 'drizzle-orm'
import type { Database } from '../../db/client.js'
import { services, type DetectionConfig } from '../../db/schema/index.js'
import { AppError } from '../../errors.js'
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

/**
 * Service names → services for ingestion: in-process LRU, then Redis, then Postgres; unknown names are
 * registered within the plan's limit. Service changes drop entries everywhere (see `forget`).
 */
export function createServiceResolver(deps: {
  db: Database
  redis: Redis
  invalidation: InvalidationBus
  services: Pick<ReturnType<typeof createServicesService>, 'create'>
  onCacheError: (err: unknown) => void
}) {
  const local = deps.invalidation.register(SERVICE_CACHE, new LRUCache<string, ResolvedService>({ max: 50_000, ttl: 60_000 }))

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

  async function register(ctx: ChangeContext, name: string): Promise<Resolution> {
    try {
      const row = await deps.services.create(ctx, { name })
      return { id: row.id, name: row.name, detection: detectionOf(row) }
    } catch (err) {
      if (err instanceof AppError && err.code === 'plan_limit') return { rejected: 'plan_limit', detail: err.message }
      // Registered concurrently by another request: read it back.
      if (err instanceof AppError && err.code === 'conflict') {
        const again = (await fromPostgres(ctx.organizationId, [name])).get(name)
        if (again) return again
      }
      throw err
    }
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
    // Auto-registration is serialised per organization by the plan-limit lock, so do it in order.
    for (const name of missing) {
      const resolution = await register(ctx, name)
      if (!('rejected' in resolution)) local.set(cacheKey(ctx.organizationId, name), resolution)
      out.set(name, resolution)
    }
    return out
  }

  /** After a service is renamed, reconfigured or deleted: drop it from Redis and from every process. */
  async function forget(organizationId: string, name: string) {
    await deps.redis.set(keys.serviceByName(organizationId, name), FORGOTTEN, 'EX', FORGOTTEN_SECONDS).catch(deps.onCacheError)
    await deps.invalidation.invalidate(SERVICE_CACHE, cacheKey(organizationId, name))
  }

  return { resolve, forget }
}
export type ServiceResolver = ReturnType<typeof createServiceResolver>
