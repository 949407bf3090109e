import { and, eq, getTableColumns, inArray, isNotNull, ne, sql } from 'drizzle-orm'
import type { Database } from '../../db/client.js'
import { incidents, services } from '../../db/schema/index.js'
import { recordAudit } from '../audit/repository.js'
import type { PublishEvents } from '../events/publisher.js'
import type { Correlator } from './correlation.js'
import { presentIncident } from './repository.js'

const BATCH = 200
const AUTO_RESOLVER = { type: 'system', id: 'auto-resolve' } as const

/**
 * Resolves detector incidents whose service has had no anomaly for its quiet period. Runs on a timer in
 * the worker, so an incident resolves even when its service sends nothing more. Rows another transaction
 * holds (a correlation attaching anomalies right now) are skipped until the next sweep.
 */
export async function resolveQuietIncidents(deps: {
  db: Database
  correlator: Pick<Correlator, 'forgetOpenIncident'>
  publish: PublishEvents
}): Promise<number> {
  const resolved = await deps.db.transaction(async (tx) => {
    const due = await tx
      .select({ ...getTableColumns(incidents), service: services.name })
      .from(incidents)
      .innerJoin(services, eq(services.id, incidents.serviceId))
      .where(
        and(
          ne(incidents.status, 'resolved'),
          eq(incidents.source, 'detector'),
          isNotNull(incidents.lastAnomalyAt),
          sql`${incidents.lastAnomalyAt} < now() - make_interval(secs => COALESCE((${services.detection}->>'quietPeriodSeconds')::int, 600))`
        )
      )
      .orderBy(incidents.lastAnomalyAt)
      .limit(BATCH)
      .for('update', { of: incidents, skipLocked: true })
    if (due.length === 0) return []

    const now = new Date()
    const updated = await tx
      .update(incidents)
      .set({ status: 'resolved', resolvedAt: now, resolvedBy: 'auto', flapping: false, updatedAt: now })
      .where(inArray(incidents.id, due.map((row) => row.id)))
      .returning()
    const byId = new Map(updated.map((row) => [row.id, row]))
    const out = due.map((before) => ({
      before: presentIncident(before),
      after: presentIncident({ ...byId.get(before.id)!, service: before.service }),
      organizationId: before.organizationId,
      serviceId: before.serviceId
    }))
    for (const change of out) {
      await recordAudit(
        tx,
        { organizationId: change.organizationId, actor: AUTO_RESOLVER },
        { action: 'incident.resolved', resourceType: 'incident', resourceId: change.after.id, before: change.before, after: change.after }
      )
    }
    return out
  })

  for (const { after, organizationId, serviceId } of resolved) {
    await deps.correlator.forgetOpenIncident(serviceId)
    await deps.publish(organizationId, [{ type: 'incident.resolved', data: after }])
  }
  return resolved.length
}
