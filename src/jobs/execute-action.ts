import { setTimeout as sleep } from 'node:timers/promises'
import { and, eq } from 'drizzle-orm'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { v7 as uuidv7 } from 'uuid'
import type { Config } from '../config.js'
import type { Database } from '../db/client.js'
import { isUniqueViolation } from '../db/errors.js'
import { actions, organizations } from '../db/schema/index.js'
import type { ChangeContext } from '../lib/context.js'
import type { WebhookParams } from '../modules/actions/params.js'
import { transitionAction, type ActionRow } from '../modules/actions/repository.js'
import { presentAction } from '../modules/actions/schemas.js'
import { recordAudit } from '../modules/audit/repository.js'
import type { PublishEvents } from '../modules/events/publisher.js'
import { applyOutcome, deferOutcome, type DeferredOutcome } from './dlq.js'
import { callWebhook, type Outcome } from './executors.js'

export const WORKER_ACTOR = { type: 'system', id: 'worker' } as const
const RECORD_RETRY_MS = 30_000

export type Execution = 'done' | 'busy' | 'not_claimable'

/**
 * Runs one action at most once. The claim is a guarded UPDATE (approved|queued → running, with a lease):
 * a duplicate or redelivered job finds nothing to claim. A run whose lease expires is never retried here;
 * the sweep marks it needs_review. Outcomes Postgres refuses go to the dead-letter stream.
 */
export function createActionRunner(deps: {
  db: Database
  queueRedis: Redis
  publish: PublishEvents
  config: Config
  log: Logger
}) {
  const { leaseSeconds, webhookTimeoutMs, webhookMaxAttempts } = deps.config.actions
  const leaseUntil = () => new Date(Date.now() + leaseSeconds * 1000)

  async function claim(actionId: string): Promise<ActionRow | 'busy' | null> {
    try {
      return await deps.db.transaction(async (tx) => {
        const claimed = await transitionAction(tx, actionId, ['approved', 'queued'], {
          status: 'running',
          startedAt: new Date(),
          leaseExpiresAt: leaseUntil()
        })
        if (!claimed) return null
        await recordAudit(
          tx,
          { organizationId: claimed.organizationId, actor: WORKER_ACTOR },
          { action: 'action.started', resourceType: 'action', resourceId: claimed.id, after: presentAction(claimed) }
        )
        return claimed
      })
    } catch (err) {
      // Another action of the same service is running: one at a time per service.
      if (isUniqueViolation(err, 'actions_one_running_per_service')) return 'busy'
      throw err
    }
  }

  /** Extends the lease before each attempt; false when the action is no longer running (e.g. needs_review). */
  async function renewLease(actionId: string) {
    const [row] = await deps.db
      .update(actions)
      .set({ leaseExpiresAt: leaseUntil() })
      .where(and(eq(actions.id, actionId), eq(actions.status, 'running')))
      .returning({ id: actions.id })
    return row !== undefined
  }

  async function execute(action: ActionRow): Promise<Outcome> {
    if (action.type === 'dry_run') {
      return { status: 'succeeded', result: { dryRun: true, wouldRun: { type: action.type, params: action.params } }, error: null, attempts: 1 }
    }
    const [org] = await deps.db.select({ secret: organizations.webhookSecret }).from(organizations).where(eq(organizations.id, action.organizationId))
    return callWebhook(action.params as unknown as WebhookParams, {
      actionId: action.id,
      secret: org!.secret,
      allowedHosts: deps.config.webhookAllowedHosts,
      timeoutMs: webhookTimeoutMs,
      maxAttempts: webhookMaxAttempts,
      beforeAttempt: () => renewLease(action.id)
    })
  }

  /** Postgres first; if it refuses, the dead-letter stream; if both refuse, keep trying for a while. */
  async function record(action: ActionRow, outcome: Outcome) {
    const finishedAt = new Date()
    const after = {
      ...action,
      status: outcome.status,
      result: outcome.result,
      error: outcome.error,
      attempts: outcome.attempts,
      finishedAt,
      leaseExpiresAt: null,
      verificationState: outcome.status === 'succeeded' ? ('pending' as const) : ('skipped' as const)
    }
    const ctx: ChangeContext = { organizationId: action.organizationId, actor: WORKER_ACTOR }
    const entry: DeferredOutcome = {
      kind: 'action_outcome',
      organizationId: action.organizationId,
      actionId: action.id,
      set: { status: outcome.status, result: outcome.result, error: outcome.error, attempts: outcome.attempts, finishedAt: finishedAt.toISOString() },
      ctx,
      audit: {
        id: uuidv7(),
        action: `action.${outcome.status}`,
        resourceType: 'action',
        resourceId: action.id,
        before: presentAction(action),
        after: presentAction(after)
      }
    }
    const deadline = Date.now() + RECORD_RETRY_MS
    for (let attempt = 0; ; attempt++) {
      try {
        await applyOutcome(deps.db, entry)
        break
      } catch (err) {
        deps.log.warn({ err: String(err), actionId: action.id }, 'outcome not written to Postgres; deferring it')
        try {
          await deferOutcome(deps.queueRedis, entry)
          break
        } catch (dlqErr) {
          if (Date.now() > deadline) {
            deps.log.error({ err: String(dlqErr), entry }, 'outcome could not be recorded anywhere; the lease sweep will mark the action needs_review')
            return
          }
          await sleep(Math.min(200 * 2 ** attempt, 5000))
        }
      }
    }
    await deps.publish(action.organizationId, [{ type: 'action.updated', data: presentAction(after) }])
  }

  async function run(actionId: string): Promise<Execution> {
    const claimed = await claim(actionId)
    if (claimed === 'busy') return 'busy'
    if (!claimed) return 'not_claimable'
    await deps.publish(claimed.organizationId, [{ type: 'action.updated', data: presentAction(claimed) }])
    const outcome = await execute(claimed).catch(
      (err): Outcome => ({ status: 'failed', result: null, error: `executor error: ${String(err)}`, attempts: 0 })
    )
    await record(claimed, outcome)
    return 'done'
  }

  return { run }
}

