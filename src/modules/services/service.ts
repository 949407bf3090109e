import type { RedisClient } from '../../redis/client.js'
import type { Database } from '../../db/client.js'
import type { PageRequest } from '../../db/keyset.js'
import type { DetectionConfig } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import type { Clock } from '../../lib/clock.js'
import type { ChangeContext } from '../../lib/context.js'
import { AlreadyExistsError } from '../../lib/domain-errors.js'
import { recordAudit } from '../audit/repository.js'
import { baselinesOf, recentAnomalies, type BaselineQuery } from '../detection/window.js'
import { seriesHistory } from '../detection/series-history.js'
import { PLAN_LIMITS } from '../subscription/plans.js'
import { findSubscription, lockOrganization } from '../subscription/repository.js'
import { DETECTION_DEFAULTS } from './schemas.js'
import { countServices, findService, insertService, insertServicesByName, listServices, updateService, type ServiceRow } from './repository.js'
import type { ServiceResolver } from './resolver.js'

/** Stored configs predate newer settings: defaults fill what a row does not have. */
export const detectionOf = (row: Pick<ServiceRow, 'detection'>): DetectionConfig => ({
  ...DETECTION_DEFAULTS,
  ...row.detection,
  metrics: row.detection.metrics ?? {}
})

export const presentService = (row: ServiceRow) => ({
  id: row.id,
  name: row.name,
  description: row.description,
  environment: row.environment,
  detection: detectionOf(row),
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString()
})

export interface CreateServiceInput {
  name: string
  description?: string
  environment?: string
  detection?: DetectionConfig
}
export interface UpdateServiceInput {
  name?: string
  description?: string | null
  environment?: string | null
  detection?: Partial<DetectionConfig>
}

/** Rethrows a taken name as the caller's conflict (409), anything else as it is. */
const conflictOnTakenName = (err: unknown): never => {
  throw err instanceof AlreadyExistsError ? errors.conflict('a service with this name already exists') : err
}

export function createServicesService(deps: {
  db: Database
  /** the state Redis, where detection keeps baselines and recent anomalies */
  redis: RedisClient
  clock: Clock
  /** forgets a changed service in every process's name cache */
  resolver: Pick<ServiceResolver, 'forget'>
}) {
  async function get(organizationId: string, id: string) {
    const row = await findService(deps.db, organizationId, id)
    if (!row) throw errors.notFound('service')
    return row
  }

  const list = (organizationId: string, page: PageRequest) => listServices(deps.db, organizationId, page)

  /** Creates a service within the plan's limit; the organization lock makes the count-then-insert safe. */
  async function create(ctx: ChangeContext, input: CreateServiceInput) {
    return deps.db
      .transaction(async (tx) => {
        await lockOrganization(tx, ctx.organizationId)
        const subscription = await findSubscription(tx, ctx.organizationId)
        const { maxServices } = PLAN_LIMITS[subscription?.plan ?? 'free']
        if (maxServices !== null && (await countServices(tx, ctx.organizationId)) >= maxServices) {
          throw errors.planLimit(`the ${subscription?.plan ?? 'free'} plan allows ${maxServices} services; upgrade to add more`)
        }
        const row = await insertService(tx, {
          organizationId: ctx.organizationId,
          name: input.name,
          description: input.description ?? null,
          environment: input.environment ?? null,
          detection: input.detection ?? { ...DETECTION_DEFAULTS, metrics: {} }
        })
        await recordAudit(tx, ctx, { action: 'service.created', resourceType: 'service', resourceId: row.id, after: presentService(row) })
        return row
      })
      .catch(conflictOnTakenName)
  }

  /**
   * Registers the unknown service names of an ingestion batch, in one transaction that locks the
   * organization once (not once per name): as many as the plan has room for, in order; the rest are
   * refused. Names registered concurrently by another request are left out of `created` (the caller
   * reads them back).
   */
  async function registerAll(ctx: ChangeContext, names: string[]) {
    return deps.db.transaction(async (tx) => {
      await lockOrganization(tx, ctx.organizationId)
      const plan = (await findSubscription(tx, ctx.organizationId))?.plan ?? 'free'
      const { maxServices } = PLAN_LIMITS[plan]
      const room = maxServices === null ? names.length : Math.max(0, maxServices - (await countServices(tx, ctx.organizationId)))
      const created = await insertServicesByName(tx, ctx.organizationId, names.slice(0, room), { ...DETECTION_DEFAULTS, metrics: {} })
      await recordAudit(
        tx,
        ctx,
        ...created.map((row) => ({ action: 'service.created', resourceType: 'service', resourceId: row.id, after: presentService(row) }) as const)
      )
      return { created, refused: names.slice(room), plan, maxServices }
    })
  }

  /** Updates a service (detection fields merged over the stored config), then drops its cached copies. */
  async function update(ctx: ChangeContext, id: string, input: UpdateServiceInput) {
    const { before, after } = await deps.db
      .transaction(async (tx) => {
        const before = await findService(tx, ctx.organizationId, id)
        if (!before) throw errors.notFound('service')
        const after = await updateService(
          tx,
          id,
          {
            ...(input.name !== undefined && { name: input.name }),
            ...(input.description !== undefined && { description: input.description }),
            ...(input.environment !== undefined && { environment: input.environment }),
            ...(input.detection !== undefined && { detection: { ...detectionOf(before), ...input.detection } })
          },
          deps.clock.now()
        )
        await recordAudit(tx, ctx, {
          action: 'service.updated',
          resourceType: 'service',
          resourceId: id,
          before: presentService(before),
          after: presentService(after)
        })
        return { before, after }
      })
      .catch(conflictOnTakenName)
    await deps.resolver.forget(ctx.organizationId, before.name)
    return after
  }

  /** Soft-deletes a service (its incidents and audit trail are kept), then drops its cached copies. */
  async function remove(ctx: ChangeContext, id: string) {
    const removed = await deps.db.transaction(async (tx) => {
      const before = await findService(tx, ctx.organizationId, id)
      if (!before) throw errors.notFound('service')
      const now = deps.clock.now()
      await updateService(tx, id, { deletedAt: now }, now)
      await recordAudit(tx, ctx, { action: 'service.deleted', resourceType: 'service', resourceId: id, before: presentService(before) })
      return before
    })
    await deps.resolver.forget(ctx.organizationId, removed.name)
  }

  /** Rolling baselines of the service, one per series, a page of them. */
  async function baselines(organizationId: string, id: string, query: BaselineQuery) {
    const service = await get(organizationId, id)
    return baselinesOf(deps.redis, service.id, detectionOf(service), query)
  }

  /** Anomalies of the service in its recent window since `since` (epoch ms), newest first. */
  async function anomalies(organizationId: string, id: string, window: { since: number; offset: number; limit: number }) {
    const service = await get(organizationId, id)
    return recentAnomalies(deps.redis, service.id, window.since, window.offset, window.limit)
  }

  /** A series of the service with its values of the last hour, minute by minute. */
  async function history(organizationId: string, id: string, seriesId: string) {
    const service = await get(organizationId, id)
    const { metrics } = detectionOf(service)
    const found = await seriesHistory(deps.redis, service.id, seriesId, deps.clock.now().getTime(), (metric) => metrics[metric]?.direction ?? 'both')
    if (!found) throw errors.notFound('series')
    return found
  }

  return { get, list, create, registerAll, update, remove, baselines, anomalies, history }
}
export type ServicesService = ReturnType<typeof createServicesService>
