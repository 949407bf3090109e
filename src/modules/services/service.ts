import type { Database } from '../../db/client.js'
import type { DetectionConfig } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import type { ChangeContext } from '../../lib/context.js'
import { recordAudit } from '../audit/repository.js'
import { PLAN_LIMITS } from '../subscription/plans.js'
import { findSubscription, lockOrganization } from '../subscription/repository.js'
import { DETECTION_DEFAULTS } from './schemas.js'
import { countServices, findService, insertService, updateService, type ServiceRow } from './repository.js'

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

export function createServicesService(deps: { db: Database }) {
  /** Creates a service within the plan's limit; the organization lock makes the count-then-insert safe. */
  async function create(ctx: ChangeContext, input: CreateServiceInput) {
    return deps.db.transaction(async (tx) => {
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
  }

  async function update(ctx: ChangeContext, id: string, input: UpdateServiceInput) {
    return deps.db.transaction(async (tx) => {
      const before = await findService(tx, ctx.organizationId, id)
      if (!before) throw errors.notFound('service')
      const after = await updateService(tx, id, {
        ...(input.name !== undefined && { name: input.name }),
        ...(input.description !== undefined && { description: input.description }),
        ...(input.environment !== undefined && { environment: input.environment }),
        ...(input.detection !== undefined && { detection: { ...detectionOf(before), ...input.detection } })
      })
      await recordAudit(tx, ctx, {
        action: 'service.updated',
        resourceType: 'service',
        resourceId: id,
        before: presentService(before),
        after: presentService(after)
      })
      return { before, after }
    })
  }

  async function remove(ctx: ChangeContext, id: string) {
    return deps.db.transaction(async (tx) => {
      const before = await findService(tx, ctx.organizationId, id)
      if (!before) throw errors.notFound('service')
      await updateService(tx, id, { deletedAt: new Date() })
      await recordAudit(tx, ctx, { action: 'service.deleted', resourceType: 'service', resourceId: id, before: presentService(before) })
      return before
    })
  }

  return { create, update, remove }
}
