import { and, eq, ne, sql } from 'drizzle-orm'
import type { Database } from '../../db/client.js'
import { incidents, type Severity } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import { actorRef, type ChangeContext } from '../../lib/context.js'
import { recordAudit } from '../audit/repository.js'
import type { AppEvent, PublishEvents } from '../events/publisher.js'
import { presentIncident } from '../incidents/repository.js'
import type { RunbookHook } from '../incidents/correlation.js'
import type { ServiceResolver } from '../services/resolver.js'

export interface AlertInput {
  service: string
  dedupKey: string
  action: 'trigger' | 'resolve'
  title: string
  severity: Severity
  details?: Record<string, unknown>
}

/**
 * External alerts deduplicate by key within the organization: a trigger updates the open incident with
 * that key or opens one; a resolve closes it; a trigger after a resolve opens a new one.
 */
export function createAlertService(deps: { db: Database; resolver: ServiceResolver; publish: PublishEvents; runbooks?: RunbookHook }) {
  async function handle(ctx: ChangeContext, input: AlertInput, source: 'alert' | 'alertmanager' = 'alert') {
    const resolution = (await deps.resolver.resolve(ctx, [input.service])).get(input.service)!
    if ('rejected' in resolution) throw errors.planLimit(resolution.detail)
    const service = resolution
    const now = new Date()

    const outcome = await deps.db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`${ctx.organizationId}:${input.dedupKey}`}, 0))`)
      const [open] = await tx
        .select()
        .from(incidents)
        .where(and(eq(incidents.organizationId, ctx.organizationId), eq(incidents.dedupKey, input.dedupKey), ne(incidents.status, 'resolved')))
        .for('update')
      const named = <T extends typeof open>(row: NonNullable<T>, serviceName: string) => presentIncident({ ...row, service: serviceName })

      if (input.action === 'resolve') {
        if (!open) return null
        const [resolved] = await tx
          .update(incidents)
          .set({ status: 'resolved', resolvedAt: now, resolvedBy: actorRef(ctx.actor), updatedAt: now })
          .where(eq(incidents.id, open.id))
          .returning()
        const serviceName = open.serviceId === service.id ? service.name : input.service
        await recordAudit(tx, ctx, {
          action: 'incident.resolved',
          resourceType: 'incident',
          resourceId: open.id,
          before: named(open, serviceName),
          after: named(resolved!, serviceName)
        })
        return { incident: named(resolved!, serviceName), event: 'incident.resolved' as const, proposed: [] }
      }

      if (open) {
        const severity: Severity = open.severity === 'critical' || input.severity === 'critical' ? 'critical' : 'warning'
        const [updated] = await tx
          .update(incidents)
          .set({
            severity,
            title: input.title,
            details: { ...open.details, ...input.details },
            anomalyCount: open.anomalyCount + 1,
            lastAnomalyAt: sql`now()`,
            updatedAt: now
          })
          .where(eq(incidents.id, open.id))
          .returning()
        await recordAudit(tx, ctx, {
          action: severity !== open.severity ? 'incident.escalated' : 'incident.updated',
          resourceType: 'incident',
          resourceId: open.id,
          before: named(open, service.name),
          after: named(updated!, service.name)
        })
        const proposed = severity !== open.severity && deps.runbooks ? await deps.runbooks.proposeFromRunbooks(tx, ctx, updated!) : []
        return { incident: named(updated!, service.name), event: 'incident.updated' as const, proposed }
      }

      const [opened] = await tx
        .insert(incidents)
        .values({
          organizationId: ctx.organizationId,
          serviceId: service.id,
          title: input.title,
          severity: input.severity,
          source,
          dedupKey: input.dedupKey,
          details: input.details ?? null,
          anomalyCount: 1,
          openedAt: now,
          lastAnomalyAt: sql`now()`
        })
        .returning()
      await recordAudit(tx, ctx, {
        action: 'incident.opened',
        resourceType: 'incident',
        resourceId: opened!.id,
        after: named(opened!, service.name)
      })
      const proposed = deps.runbooks ? await deps.runbooks.proposeFromRunbooks(tx, ctx, opened!) : []
      return { incident: named(opened!, service.name), event: 'incident.opened' as const, proposed }
    })

    if (outcome) {
      const events: AppEvent[] = [{ type: outcome.event, data: outcome.incident }]
      await deps.publish(ctx.organizationId, events)
      if (outcome.proposed.length > 0) await deps.runbooks!.settle(outcome.proposed)
    }
    return outcome?.incident ?? null
  }

  return { handle }
}
