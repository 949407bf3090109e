import type { Queue } from 'bullmq'
import { and, asc, eq, inArray, isNull, lte, ne, or } from 'drizzle-orm'
import type { Redis } from 'ioredis'
import type { Database } from '../../db/client.js'
import { actions, incidents, services } from '../../db/schema/index.js'
import type { Actor } from '../../lib/context.js'
import type { Dispatch } from '../../jobs/dispatch.js'
import { recordAudit } from '../audit/repository.js'
import { baselinesOf, recentAnomalies } from '../detection/window.js'
import type { AppEvent, PublishEvents } from '../events/publisher.js'
import type { Correlator } from '../incidents/correlation.js'
import { presentIncident } from '../incidents/repository.js'
import { detectionOf } from '../services/service.js'
import { mirrorAction } from './mirror.js'
import type { ActionRow } from './repository.js'
import { presentAction } from './schemas.js'

const BATCH = 200
/** A queued action's job is looked for only after this long (it was added before the row said queued). */
const QUEUED_GRACE_MS = 2000
const TIMER: Actor = { type: 'system', id: 'timer' }
const VERIFIER: Actor = { type: 'system', id: 'verifier' }

interface SweepDeps {
  db: Database
  redis: Redis
  publish: PublishEvents
  onError: (err: unknown) => void
}

async function announce(deps: SweepDeps, rows: ActionRow[]) {
  for (const row of rows) {
    await mirrorAction(deps.redis, row, deps.onError)
    await deps.publish(row.organizationId, [{ type: 'action.updated', data: presentAction(row) }])
  }
}

/** Guarded bulk transition for the timers, one audit row per action, in one transaction. */
async function sweepTransition(
  deps: SweepDeps,
  from: ActionRow['status'],
  due: ReturnType<typeof lte>,
  set: Partial<typeof actions.$inferInsert>,
  auditAction: string
) {
  const changed = await deps.db.transaction(async (tx) => {
    const rows = await tx
      .select()
      .from(actions)
      .where(and(eq(actions.status, from), due))
      .orderBy(asc(actions.id))
      .limit(BATCH)
      .for('update', { skipLocked: true })
    if (rows.length === 0) return []
    const updated = await tx
      .update(actions)
      .set({ ...set, updatedAt: new Date() })
      .where(and(inArray(actions.id, rows.map((r) => r.id)), eq(actions.status, from)))
      .returning()
    const before = new Map(rows.map((r) => [r.id, r]))
    for (const row of updated) {
      await recordAudit(
        tx,
        { organizationId: row.organizationId, actor: TIMER },
        { action: auditAction, resourceType: 'action', resourceId: row.id, before: presentAction(before.get(row.id)!), after: presentAction(row) }
      )
    }
    return updated
  })
  await announce(deps, changed)
  return changed.length
}

/** Proposals nobody approved in time. */
export const expirePendingActions = (deps: SweepDeps) =>
  sweepTransition(deps, 'pending_approval', lte(actions.expiresAt, new Date()), { status: 'expired', finishedAt: new Date(), statusReason: 'not approved in time' }, 'action.expired')

/** Runs whose worker vanished mid-side-effect: the outcome is unknown, so a person decides. */
export const flagAbandonedRuns = (deps: SweepDeps) =>
  sweepTransition(
    deps,
    'running',
    lte(actions.leaseExpiresAt, new Date()),
    { status: 'needs_review', statusReason: 'the run lost its worker before recording an outcome; it is not retried automatically', leaseExpiresAt: null },
    'action.needs_review'
  )

/**
 * The outbox: approved actions not yet in the queue, and queued ones whose job is gone (a flushed or
 * restarted queue Redis) or failed, are sent again. Job ids are action ids, so this never doubles a job.
 */
export async function reconcileDispatch(deps: { db: Database; dispatch: Dispatch; queue: Queue }) {
  const approved = await deps.db.select({ id: actions.id }).from(actions).where(eq(actions.status, 'approved')).orderBy(asc(actions.id)).limit(BATCH)
  let sent = (await deps.dispatch(approved.map((a) => a.id))).length
  const queued = await deps.db
    .select({ id: actions.id })
    .from(actions)
    .where(and(eq(actions.status, 'queued'), lte(actions.dispatchedAt, new Date(Date.now() - QUEUED_GRACE_MS))))
    .orderBy(asc(actions.id))
    .limit(BATCH)
  for (const { id } of queued) {
    const job = await deps.queue.getJob(id)
    if (!job) {
      await deps.queue.add('execute', { actionId: id }, { jobId: id })
      sent++
    } else if (await job.isFailed()) {
      await job.retry()
      sent++
    }
  }
  return sent
}

/**
 * After the verification window: did the incident's metrics recover? No unsuppressed anomaly on them since
 * the action finished, and fresh samples to prove it → recovered, and the incident resolves. Anomalies →
 * not_recovered, and the incident escalates to critical. No samples since (or nothing to measure) → skipped.
 */
export async function verifySucceededActions(
  deps: SweepDeps & { correlator: Pick<Correlator, 'forgetOpenIncident'>; windowSeconds: number }
) {
  const due = await deps.db
    .select({ action: actions, incident: incidents, service: services })
    .from(actions)
    .innerJoin(incidents, eq(incidents.id, actions.incidentId))
    .innerJoin(services, eq(services.id, actions.serviceId))
    .where(
      and(
        eq(actions.status, 'succeeded'),
        eq(actions.verificationState, 'pending'),
        lte(actions.finishedAt, new Date(Date.now() - deps.windowSeconds * 1000))
      )
    )
    .limit(BATCH)

  let verified = 0
  for (const { action, incident, service } of due) {
    const since = action.finishedAt!.getTime()
    let state: 'recovered' | 'not_recovered' | 'skipped'
    let details: Record<string, unknown>
    if (incident.metrics.length === 0) {
      state = 'skipped'
      details = { reason: 'the incident has no metrics to measure' }
    } else {
      const anomalies = (await recentAnomalies(deps.redis, service.id, since)).filter(
        (a) => !a.suppressed && incident.metrics.includes(a.metric) && Date.parse(a.at) > since
      )
      const baselines = (await baselinesOf(deps.redis, service.id, detectionOf(service).minSamples)).filter(
        (b) => incident.metrics.includes(b.metric) && Date.parse(b.updatedAt) > since
      )
      if (anomalies.length > 0) {
        state = 'not_recovered'
        details = { anomalies: anomalies.slice(0, 20) }
      } else if (baselines.length === 0) {
        state = 'skipped'
        details = { reason: 'no samples of the incident metrics since the action' }
      } else {
        state = 'recovered'
        details = { metrics: baselines.map((b) => ({ metric: b.metric, mean: b.mean, stddev: b.stddev })) }
      }
    }

    const outcome = await deps.db.transaction(async (tx) => {
      const [updated] = await tx
        .update(actions)
        .set({ verificationState: state, verification: { ...details, checkedAt: new Date().toISOString() }, updatedAt: new Date() })
        .where(and(eq(actions.id, action.id), eq(actions.verificationState, 'pending')))
        .returning()
      if (!updated) return null
      const ctx = { organizationId: action.organizationId, actor: VERIFIER }
      await recordAudit(tx, ctx, {
        action: 'action.verified',
        resourceType: 'action',
        resourceId: action.id,
        before: presentAction(action),
        after: presentAction(updated)
      })
      let incidentAfter = null
      if (state !== 'skipped' && incident.status !== 'resolved') {
        const set =
          state === 'recovered'
            ? { status: 'resolved' as const, resolvedAt: new Date(), resolvedBy: 'auto', resolutionNote: `recovered after action ${action.id}`, flapping: false }
            : { severity: 'critical' as const }
        // Resolve only if no anomaly (of any metric) attached since the action finished, including one
        // that arrived after the window was read; escalate only what is not critical yet.
        const guard =
          state === 'recovered'
            ? or(isNull(incidents.lastAnomalyAt), lte(incidents.lastAnomalyAt, action.finishedAt!))
            : ne(incidents.severity, 'critical')
        const [changed] = await tx
          .update(incidents)
          .set({ ...set, updatedAt: new Date() })
          .where(and(eq(incidents.id, incident.id), ne(incidents.status, 'resolved'), guard))
          .returning()
        if (changed) {
          incidentAfter = presentIncident({ ...changed, service: service.name })
          await recordAudit(tx, ctx, {
            action: state === 'recovered' ? 'incident.resolved' : 'incident.escalated',
            resourceType: 'incident',
            resourceId: incident.id,
            before: presentIncident({ ...incident, service: service.name }),
            after: incidentAfter
          })
        }
      }
      return { updated, incidentAfter }
    })
    if (!outcome) continue
    verified++
    const events: AppEvent[] = [{ type: 'action.updated', data: presentAction(outcome.updated) }]
    if (outcome.incidentAfter) {
      events.push({ type: outcome.incidentAfter.status === 'resolved' ? 'incident.resolved' : 'incident.updated', data: outcome.incidentAfter })
      if (outcome.incidentAfter.status === 'resolved') await deps.correlator.forgetOpenIncident(service.id)
    }
    await deps.publish(action.organizationId, events)
  }
  return verified
}
