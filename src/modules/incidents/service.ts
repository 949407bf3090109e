import type { Database } from '../../db/client.js'
import type { IncidentStatus } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import { actorRef, type ChangeContext } from '../../lib/context.js'
import { recordAudit } from '../audit/repository.js'
import type { PublishEvents } from '../events/publisher.js'
import type { Correlator } from './correlation.js'
import { findIncident, presentIncident, transitionIncident } from './repository.js'

export function createIncidentsService(deps: {
  db: Database
  correlator: Pick<Correlator, 'forgetOpenIncident'>
  publish: PublishEvents
}) {
  /** Applies a status change guarded by the allowed source statuses, auditing before and after. */
  async function transition(
    ctx: ChangeContext,
    id: string,
    action: string,
    from: IncidentStatus[],
    set: Parameters<typeof transitionIncident>[3]
  ) {
    const incident = await deps.db.transaction(async (tx) => {
      const before = await findIncident(tx, ctx.organizationId, id)
      if (!before) throw errors.notFound('incident')
      const updated = await transitionIncident(tx, id, from, set)
      if (!updated) {
        throw errors.invalidTransition(`incident is ${before.status}; ${action} needs it to be ${from.join(' or ')}`)
      }
      const after = { ...updated, service: before.service }
      await recordAudit(tx, ctx, {
        action: `incident.${action}`,
        resourceType: 'incident',
        resourceId: id,
        before: presentIncident(before),
        after: presentIncident(after)
      })
      return after
    })
    if (incident.status === 'resolved') await deps.correlator.forgetOpenIncident(incident.serviceId)
    const type = incident.status === 'resolved' ? 'incident.resolved' : 'incident.updated'
    await deps.publish(ctx.organizationId, [{ type, data: presentIncident(incident) }])
    return incident
  }

  const acknowledge = (ctx: ChangeContext, id: string) =>
    transition(ctx, id, 'acknowledged', ['open'], {
      status: 'acknowledged',
      acknowledgedAt: new Date(),
      acknowledgedBy: actorRef(ctx.actor)
    })

  const resolve = (ctx: ChangeContext, id: string, note?: string) =>
    transition(ctx, id, 'resolved', ['open', 'acknowledged'], {
      status: 'resolved',
      resolvedAt: new Date(),
      resolvedBy: actorRef(ctx.actor),
      resolutionNote: note ?? null,
      flapping: false
    })

  return { acknowledge, resolve }
}
