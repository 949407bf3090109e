import type { Static } from 'typebox'
import type { Database } from '../../db/client.js'
import type { PageRequest } from '../../db/keyset.js'
import { errors } from '../../errors.js'
import type { Clock } from '../../lib/clock.js'
import type { ChangeContext } from '../../lib/context.js'
import { assertValidParams } from '../actions/params.js'
import { recordAudit } from '../audit/repository.js'
import type { ServicesService } from '../services/service.js'
import { deleteRunbook, findRunbook, insertRunbook, listRunbooks } from './repository.js'
import { presentRunbook, type RunbookBody } from './schemas.js'

export function createRunbooksService(deps: {
  db: Database
  services: Pick<ServicesService, 'get'>
  /** hosts a webhook action may call (WEBHOOK_ALLOWED_HOSTS) */
  allowedHosts: string[]
  clock: Clock
}) {
  /** Adds a runbook to a service; a webhook URL outside the allowed hosts is refused (400). */
  async function create(ctx: ChangeContext, serviceId: string, input: Static<typeof RunbookBody>) {
    const service = await deps.services.get(ctx.organizationId, serviceId)
    assertValidParams(input.action.type, input.action.params, deps.allowedHosts, '/body/action/params')
    return deps.db.transaction(async (tx) => {
      const created = await insertRunbook(tx, {
        organizationId: ctx.organizationId,
        serviceId: service.id,
        name: input.name,
        matchMetric: input.match.metric ?? null,
        matchMinSeverity: input.match.minSeverity ?? null,
        actionType: input.action.type,
        actionParams: input.action.params,
        approval: input.approval,
        cooldownSeconds: input.cooldownSeconds
      })
      await recordAudit(tx, ctx, { action: 'runbook.created', resourceType: 'runbook', resourceId: created.id, after: presentRunbook(created) })
      return created
    })
  }

  async function list(organizationId: string, serviceId: string, page: PageRequest) {
    const service = await deps.services.get(organizationId, serviceId)
    return listRunbooks(deps.db, organizationId, service.id, page)
  }

  async function get(organizationId: string, serviceId: string, id: string) {
    const row = await findRunbook(deps.db, organizationId, serviceId, id)
    if (!row) throw errors.notFound('runbook')
    return row
  }

  /** Deletes a runbook; actions it proposed keep their history. */
  async function remove(ctx: ChangeContext, serviceId: string, id: string) {
    await deps.db.transaction(async (tx) => {
      const before = await findRunbook(tx, ctx.organizationId, serviceId, id)
      if (!before) throw errors.notFound('runbook')
      await deleteRunbook(tx, before.id, deps.clock.now())
      await recordAudit(tx, ctx, { action: 'runbook.deleted', resourceType: 'runbook', resourceId: before.id, before: presentRunbook(before) })
    })
  }

  return { create, list, get, remove }
}
