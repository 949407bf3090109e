import { and, desc, eq, gt, inArray, isNull, or, sql } from 'drizzle-orm'
import type { Redis } from 'ioredis'
import type { Database, Executor } from '../../db/client.js'
import { actions, incidents, runbooks, subscriptions, type Severity } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import { actorRef, type ChangeContext } from '../../lib/context.js'
import type { Dispatch } from '../../jobs/dispatch.js'
import { recordAudit } from '../audit/repository.js'
import type { PublishEvents } from '../events/publisher.js'
import { PLAN_LIMITS } from '../subscription/plans.js'
import { mirrorAction } from './mirror.js'
import { assertValidParams, type ActionType } from './params.js'
import { findAction, insertAction, transitionAction, type ActionRow } from './repository.js'
import { presentAction } from './schemas.js'

export interface ActionDeps {
  db: Database
  redis: Redis
  publish: PublishEvents
  /** absent where no queue producer runs: the reconciler dispatches instead */
  dispatch?: Dispatch
  approvalTtlSeconds: number
  allowedHosts: string[]
  onError: (err: unknown) => void
}

const SEVERITY_RANK: Record<Severity, number> = { warning: 1, critical: 2 }

export function createActionService(deps: ActionDeps) {
  /** After a commit: mirror in Redis, tell the event stream, and hand approved actions to the queue. */
  async function settle(rows: ActionRow[]): Promise<ActionRow[]> {
    if (rows.length === 0) return rows
    const approved = rows.filter((row) => row.status === 'approved').map((row) => row.id)
    const dispatched = approved.length > 0 && deps.dispatch ? new Set(await deps.dispatch(approved).catch(() => [])) : new Set()
    const settled = rows.map((row) => (dispatched.has(row.id) ? { ...row, status: 'queued' as const } : row))
    await Promise.all(settled.map((row) => mirrorAction(deps.redis, row, deps.onError)))
    for (const row of settled) {
      await deps.publish(row.organizationId, [{ type: 'action.updated', data: presentAction(row) }])
    }
    return settled
  }

  async function propose(ctx: ChangeContext, incidentId: string, input: { type: ActionType; params: Record<string, unknown>; reason?: string }) {
    assertValidParams(input.type, input.params, deps.allowedHosts, '/body/params')
    const row = await deps.db.transaction(async (tx) => {
      const [incident] = await tx
        .select()
        .from(incidents)
        .where(and(eq(incidents.organizationId, ctx.organizationId), eq(incidents.id, incidentId)))
      if (!incident) throw errors.notFound('incident')
      if (incident.status === 'resolved') throw errors.invalidTransition('the incident is resolved; actions are proposed on open incidents')
      const created = await insertAction(tx, {
        organizationId: ctx.organizationId,
        incidentId,
        serviceId: incident.serviceId,
        type: input.type,
        params: input.params,
        reason: input.reason ?? null,
        requestedBy: actorRef(ctx.actor),
        expiresAt: new Date(Date.now() + deps.approvalTtlSeconds * 1000)
      })
      await recordAudit(tx, ctx, { action: 'action.proposed', resourceType: 'action', resourceId: created.id, after: presentAction(created) })
      return created
    })
    return (await settle([row]))[0]!
  }

  /** Guarded status change with its audit row; 404 across tenants, 409 from any other status. */
  async function decide(
    ctx: ChangeContext,
    id: string,
    verb: 'approved' | 'rejected',
    set: Partial<typeof actions.$inferInsert>
  ) {
    const row = await deps.db.transaction(async (tx) => {
      const before = await findAction(tx, ctx.organizationId, id)
      if (!before) throw errors.notFound('action')
      // An approval must land before the deadline; the expiry sweep may not have run yet.
      const after = await transitionAction(tx, id, ['pending_approval'], set, gt(actions.expiresAt, new Date()))
      if (!after) {
        const why = before.status === 'pending_approval' ? 'it expired' : `it is ${before.status}`
        throw errors.invalidTransition(`the action cannot be ${verb}: ${why}`)
      }
      await recordAudit(tx, ctx, {
        action: `action.${verb}`,
        resourceType: 'action',
        resourceId: id,
        before: presentAction(before),
        after: presentAction(after)
      })
      return after
    })
    return (await settle([row]))[0]!
  }

  const approve = (ctx: ChangeContext, id: string) =>
    decide(ctx, id, 'approved', { status: 'approved', approvedBy: actorRef(ctx.actor), approvedAt: new Date(), statusReason: null })

  const reject = (ctx: ChangeContext, id: string, reason: string) =>
    decide(ctx, id, 'rejected', { status: 'rejected', rejectedBy: actorRef(ctx.actor), statusReason: reason, finishedAt: new Date() })

  /**
   * Inside the transaction that opened or escalated an incident: every matching runbook of the service
   * proposes its action, unless it already did within its cooldown. `auto` runbooks approve at once
   * when the plan allows auto-remediation; otherwise the action waits and says why.
   */
  async function proposeFromRunbooks(tx: Executor, ctx: ChangeContext, incident: typeof incidents.$inferSelect): Promise<ActionRow[]> {
    const candidates = await tx
      .select()
      .from(runbooks)
      .where(
        and(
          eq(runbooks.serviceId, incident.serviceId),
          isNull(runbooks.deletedAt),
          or(isNull(runbooks.matchMetric), inArray(runbooks.matchMetric, incident.metrics.length > 0 ? incident.metrics : [''])),
          or(isNull(runbooks.matchMinSeverity), SEVERITY_RANK[incident.severity] === 2 ? sql`true` : eq(runbooks.matchMinSeverity, 'warning'))
        )
      )
      // Locked (in id order, so concurrent proposers cannot deadlock): two incidents of the service opening
      // at once (an alert and the detector) take turns, and the second sees the first's action in the
      // cooldown check below.
      .orderBy(runbooks.id)
      .for('update')
    if (candidates.length === 0) return []
    const [subscription] = await tx.select().from(subscriptions).where(eq(subscriptions.organizationId, incident.organizationId))
    const plan = subscription?.plan ?? 'free'
    const created: ActionRow[] = []
    for (const runbook of candidates) {
      const [recent] = await tx
        .select({ id: actions.id })
        .from(actions)
        .where(and(eq(actions.runbookId, runbook.id), gt(actions.createdAt, new Date(Date.now() - runbook.cooldownSeconds * 1000))))
        .orderBy(desc(actions.id))
        .limit(1)
      if (recent) continue
      const auto = runbook.approval === 'auto' && PLAN_LIMITS[plan].autoRemediation
      const now = new Date()
      const row = await insertAction(tx, {
        organizationId: incident.organizationId,
        incidentId: incident.id,
        serviceId: incident.serviceId,
        runbookId: runbook.id,
        type: runbook.actionType,
        params: runbook.actionParams,
        reason: `runbook ${runbook.name}`,
        status: auto ? 'approved' : 'pending_approval',
        statusReason: auto
          ? null
          : runbook.approval === 'auto'
            ? `the ${plan} plan does not allow auto-remediation: waiting for approval`
            : 'the runbook requires manual approval',
        requestedBy: `runbook:${runbook.id}`,
        approvedBy: auto ? `runbook:${runbook.id}` : null,
        approvedAt: auto ? now : null,
        expiresAt: new Date(now.getTime() + deps.approvalTtlSeconds * 1000)
      })
      const entries = [{ action: 'action.proposed', resourceType: 'action', resourceId: row.id, after: presentAction(row) }]
      if (auto) entries.push({ action: 'action.approved', resourceType: 'action', resourceId: row.id, after: presentAction(row) })
      await recordAudit(tx, ctx, ...entries)
      created.push(row)
    }
    return created
  }

  return { propose, approve, reject, proposeFromRunbooks, settle }
}
export type ActionService = ReturnType<typeof createActionService>
