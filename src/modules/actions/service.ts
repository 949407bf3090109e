import type { RedisClient } from '../../redis/client.js'
import type { Database, Executor } from '../../db/client.js'
import type { PageRequest } from '../../db/keyset.js'
import type { incidents, IncidentStatus } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import type { Clock } from '../../lib/clock.js'
import { actorRef, type ChangeContext } from '../../lib/context.js'
import { InvalidTransitionError } from '../../lib/domain-errors.js'
import type { PublishEvents } from '../events/publisher.js'
import { PLAN_LIMITS } from '../subscription/plans.js'
import { findSubscription } from '../subscription/repository.js'
import type { Enqueue } from './dispatch.js'
import type { ActionEvent, ActionRow } from './lifecycle.js'
import { mirrorAction } from './mirror.js'
import { assertValidParams, type ActionType } from './params.js'
import {
  changeAction,
  findAction,
  findWebhookSecret,
  insertAction,
  listActions,
  lockAction,
  lockMatchingRunbooks,
  proposedWithin,
  type ActionFilter
} from './repository.js'
import { presentAction } from './schemas.js'

type IncidentRow = typeof incidents.$inferSelect

/**
 * What actions need of incidents, wired in by the composition root: incidents show their actions and ask
 * remediation to propose, so they sit above this module.
 */
export interface IncidentLookup {
  /** the organization's incident; 404 across tenants */
  get(exec: Executor, organizationId: string, id: string): Promise<{ status: IncidentStatus; serviceId: string }>
}

export interface ActionDeps {
  db: Database
  redis: RedisClient
  publish: PublishEvents
  incidents: IncidentLookup
  /** absent where no queue producer runs: the reconciler dispatches instead */
  enqueue?: Enqueue
  clock: Clock
  approvalTtlSeconds: number
  allowedHosts: string[]
  onError: (err: unknown) => void
}

/** Proposing, deciding and dispatching actions; the worker's side is in execution.ts and sweeps.ts. */
export function createActionService(deps: ActionDeps) {
  const { db, clock } = deps

  /** After a commit: mirror in Redis and tell the event stream. */
  async function announce(rows: ActionRow[]) {
    await Promise.all(rows.map((row) => mirrorAction(deps.redis, row, deps.onError)))
    for (const row of rows) await deps.publish(row.organizationId, [{ type: 'action.updated', data: presentAction(row) }])
  }

  /**
   * The outbox hand-off: approved actions go to the queue, and those it took move approved → queued.
   * Whatever the queue did not take stays approved and the reconciler sends it again.
   */
  async function dispatch(actionIds: string[]): Promise<ActionRow[]> {
    if (actionIds.length === 0 || !deps.enqueue) return []
    const sent = await deps.enqueue(actionIds).catch(() => [])
    if (sent.length === 0) return []
    return db.transaction(async (tx) => {
      const queued: ActionRow[] = []
      for (const id of sent) {
        const before = await lockAction(tx, id)
        if (before?.status !== 'approved') continue
        const after = await changeAction(tx, { organizationId: before.organizationId, actor: { type: 'system', id: 'dispatcher' } }, before, { type: 'dispatch' }, clock.now())
        if (after) queued.push(after)
      }
      return queued
    })
  }

  /** After a commit: approved actions go to the queue, then every change is mirrored and announced. */
  async function settle(rows: ActionRow[]): Promise<ActionRow[]> {
    if (rows.length === 0) return rows
    const queued = new Map((await dispatch(rows.filter((row) => row.status === 'approved').map((row) => row.id)).catch(() => [])).map((row) => [row.id, row]))
    const settled = rows.map((row) => queued.get(row.id) ?? row)
    await announce(settled)
    return settled
  }

  async function propose(ctx: ChangeContext, incidentId: string, input: { type: ActionType; params: Record<string, unknown>; reason?: string }) {
    assertValidParams(input.type, input.params, deps.allowedHosts, '/body/params')
    const row = await db.transaction(async (tx) => {
      const incident = await deps.incidents.get(tx, ctx.organizationId, incidentId)
      if (incident.status === 'resolved') throw errors.invalidTransition('the incident is resolved; actions are proposed on open incidents')
      return insertAction(tx, ctx, {
        organizationId: ctx.organizationId,
        incidentId,
        serviceId: incident.serviceId,
        type: input.type,
        params: input.params,
        reason: input.reason ?? null,
        requestedBy: actorRef(ctx.actor),
        expiresAt: new Date(clock.now().getTime() + deps.approvalTtlSeconds * 1000)
      })
    })
    return (await settle([row]))[0]!
  }

  /** A person approves or rejects: 404 across tenants, 409 from any status but pending_approval or past the deadline. */
  async function decide(ctx: ChangeContext, id: string, event: Extract<ActionEvent, { type: 'approve' | 'reject' }>) {
    const row = await db.transaction(async (tx) => {
      const before = await lockAction(tx, id, ctx.organizationId)
      if (!before) throw errors.notFound('action')
      try {
        return await changeAction(tx, ctx, before, event, clock.now())
      } catch (err) {
        if (err instanceof InvalidTransitionError) throw errors.invalidTransition(err.message)
        throw err
      }
    })
    if (!row) throw errors.invalidTransition('the action changed meanwhile; retry')
    return (await settle([row]))[0]!
  }

  const approve = (ctx: ChangeContext, id: string) => decide(ctx, id, { type: 'approve', by: actorRef(ctx.actor) })
  const reject = (ctx: ChangeContext, id: string, reason: string) => decide(ctx, id, { type: 'reject', by: actorRef(ctx.actor), reason })

  /**
   * Inside the transaction that opened or escalated an incident: every matching runbook of the service
   * proposes its action, unless it already did within its cooldown. `auto` runbooks approve at once
   * when the plan allows auto-remediation; otherwise the action waits and says why.
   */
  async function proposeFromRunbooks(tx: Executor, ctx: ChangeContext, incident: IncidentRow): Promise<ActionRow[]> {
    const candidates = await lockMatchingRunbooks(tx, incident)
    if (candidates.length === 0) return []
    const plan = (await findSubscription(tx, incident.organizationId))?.plan ?? 'free'
    const created: ActionRow[] = []
    for (const runbook of candidates) {
      const now = clock.now()
      if (await proposedWithin(tx, runbook.id, new Date(now.getTime() - runbook.cooldownSeconds * 1000))) continue
      const auto = runbook.approval === 'auto' && PLAN_LIMITS[plan].autoRemediation
      created.push(
        await insertAction(tx, ctx, {
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
      )
    }
    return created
  }

  async function list(organizationId: string, filter: ActionFilter, page: PageRequest) {
    return listActions(db, organizationId, filter, page)
  }

  async function get(organizationId: string, id: string) {
    const row = await findAction(db, organizationId, id)
    if (!row) throw errors.notFound('action')
    return row
  }

  /** The organization's webhook signing secret (admins only, at the route). */
  async function webhookSecret(organizationId: string) {
    const secret = await findWebhookSecret(db, organizationId)
    if (secret === undefined) throw errors.notFound('organization')
    return secret
  }

  return { list, get, webhookSecret, propose, approve, reject, proposeFromRunbooks, settle, dispatch, announce }
}
export type ActionService = ReturnType<typeof createActionService>
