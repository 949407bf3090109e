import type { Database } from '../../db/client.js'
import { isUniqueViolation } from '../../db/errors.js'
import type { Clock } from '../../lib/clock.js'
import type { Actor, ChangeContext } from '../../lib/context.js'
import type { PublishEvents } from '../events/publisher.js'
import { ACTION_FROM, type ActionRow, type Outcome } from './lifecycle.js'
import { changeAction, findActionOrganization, findWebhookSecret, lockAction, renewActionLease } from './repository.js'
import { presentAction } from './schemas.js'

export const WORKER_ACTOR: Actor = { type: 'system', id: 'worker' }

/**
 * The worker's side of an action's run, in Postgres: the claim (approved|queued → running, with a lease),
 * lease renewals, and the outcome. A duplicate or redelivered job finds nothing to claim, so a side effect
 * runs at most once.
 */
export function createActionExecution(deps: { db: Database; publish: PublishEvents; clock: Clock; leaseSeconds: number }) {
  const { db, clock } = deps
  const leaseUntil = () => new Date(clock.now().getTime() + deps.leaseSeconds * 1000)

  /** The action, now running and ours; 'busy' while another action of its service runs; null when it is not claimable. */
  async function claim(actionId: string): Promise<ActionRow | 'busy' | null> {
    try {
      return await db.transaction(async (tx) => {
        const before = await lockAction(tx, actionId)
        if (!before || !ACTION_FROM.claim.includes(before.status)) return null
        const ctx = { organizationId: before.organizationId, actor: WORKER_ACTOR }
        return (await changeAction(tx, ctx, before, { type: 'claim', leaseUntil: leaseUntil() }, clock.now())) ?? null
      })
    } catch (err) {
      // Another action of the same service is running: one at a time per service.
      if (isUniqueViolation(err, 'actions_one_running_per_service')) return 'busy'
      throw err
    }
  }

  /** The action's organization (job payloads carry the action id only); undefined when there is no such action. */
  const organizationOf = (actionId: string) => findActionOrganization(db, actionId)

  /** Extends the lease before each attempt; false when the action is no longer running (e.g. needs_review). */
  const renewLease = (actionId: string) => renewActionLease(db, actionId, leaseUntil())

  async function webhookSecret(organizationId: string) {
    const secret = await findWebhookSecret(db, organizationId)
    if (secret === undefined) throw new Error(`organization ${organizationId} is gone`)
    return secret
  }

  /** Announces a change of the action on the organization's event stream. */
  const announce = (row: ActionRow) => deps.publish(row.organizationId, [{ type: 'action.updated', data: presentAction(row) }])

  return { organizationOf, claim, renewLease, webhookSecret, announce }
}
export type ActionExecution = ReturnType<typeof createActionExecution>

/**
 * Records a run's outcome with its audit row; idempotent, so a deferred outcome can be replayed: the audit
 * row has a fixed id, and an action that has its outcome already is left alone. A lease that ran out while
 * the outcome was on its way (needs_review) learns it after all.
 */
export async function recordOutcome(
  db: Database,
  entry: { actionId: string; outcome: Outcome; finishedAt: Date; ctx: ChangeContext; auditId: string; now: Date }
): Promise<ActionRow | undefined> {
  return db.transaction(async (tx) => {
    const before = await lockAction(tx, entry.actionId)
    if (!before || !ACTION_FROM.finish.includes(before.status)) return undefined
    return changeAction(tx, entry.ctx, before, { type: 'finish', outcome: entry.outcome, finishedAt: entry.finishedAt }, entry.now, entry.auditId)
  })
}
