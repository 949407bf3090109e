import { setTimeout as sleep } from 'node:timers/promises'
import type { RedisClient } from '../redis/client.js'
import type { Logger } from 'pino'
import { v7 as uuidv7 } from 'uuid'
import type { Config } from '../config.js'
import type { Database } from '../db/client.js'
import type { Clock } from '../lib/clock.js'
import { retryDelay, RETRY } from '../lib/retry.js'
import { storableText } from '../lib/text.js'
import type { ChangeContext } from '../lib/context.js'
import { recordOutcome, WORKER_ACTOR, type ActionExecution } from '../modules/actions/execution.js'
import { transition, type ActionRow } from '../modules/actions/lifecycle.js'
import type { WebhookParams } from '../modules/actions/params.js'
import { presentAction } from '../modules/actions/schemas.js'
import { deferOutcome, type DeferredOutcome } from './dlq.js'
import { callWebhook, type Outcome } from './executors.js'

const RECORD_RETRY_MS = 30_000

/** 'busy': not run now, to be tried again shortly (its service or its organization has enough running). */
export type Execution = 'done' | 'busy' | 'not_claimable'

/**
 * Runs one action at most once. The claim is a guarded transition (approved|queued → running, with a
 * lease): a duplicate or redelivered job finds nothing to claim. A run whose lease expires is never
 * retried here; the sweep marks it needs_review. Outcomes Postgres refuses go to the dead-letter stream.
 * An organization runs at most `concurrencyPerOrganization` actions at once in this process, so one
 * tenant's slow webhooks cannot take every slot; its other actions are left unclaimed ('busy').
 */
export function createActionRunner(deps: {
  db: Database
  execution: ActionExecution
  queueRedis: RedisClient
  config: Pick<Config, 'actions' | 'webhookAllowedHosts'>
  clock: Clock
  log: Logger
}) {
  const { webhookTimeoutMs, webhookMaxAttempts, concurrencyPerOrganization } = deps.config.actions
  /*
   * Running actions per organization, counted in this process: fairness is a matter of each process's
   * slots, and each worker process keeps slots beyond one organization's share for the others, however
   * many processes run. Not covered: one organization's calls across the fleet (processes × the share),
   * which fairness does not need; in exchange nothing is held outside the process, so nothing leaks
   * when one dies.
   */
  const running = new Map<string, number>()

  async function execute(action: ActionRow): Promise<Outcome> {
    if (action.type === 'dry_run') {
      return { status: 'succeeded', result: { dryRun: true, wouldRun: { type: action.type, params: action.params } }, error: null, attempts: 1 }
    }
    return callWebhook(action.params as unknown as WebhookParams, {
      actionId: action.id,
      secret: await deps.execution.webhookSecret(action.organizationId),
      allowedHosts: deps.config.webhookAllowedHosts,
      timeoutMs: webhookTimeoutMs,
      maxAttempts: webhookMaxAttempts,
      beforeAttempt: () => deps.execution.renewLease(action.id)
    })
  }

  /** Postgres first; if it refuses, the dead-letter stream; if both refuse, keep trying for a while. */
  async function record(action: ActionRow, outcome: Outcome) {
    const finishedAt = deps.clock.now()
    const ctx: ChangeContext = { organizationId: action.organizationId, actor: WORKER_ACTOR }
    const auditId = uuidv7()
    let recorded: ActionRow | undefined
    const deadline = Date.now() + RECORD_RETRY_MS
    for (let attempt = 0; ; attempt++) {
      try {
        recorded = await recordOutcome(deps.db, { actionId: action.id, outcome, finishedAt, ctx, auditId, now: deps.clock.now() })
        break
      } catch (err) {
        deps.log.warn({ err: String(err), actionId: action.id }, 'outcome not written to Postgres; deferring it')
        const entry: DeferredOutcome = {
          kind: 'action_outcome',
          organizationId: action.organizationId,
          actionId: action.id,
          set: { ...outcome, finishedAt: finishedAt.toISOString() },
          ctx,
          audit: { id: auditId, action: `action.${outcome.status}`, resourceType: 'action', resourceId: action.id, before: presentAction(action) }
        }
        try {
          await deferOutcome(deps.queueRedis, entry)
          break
        } catch (dlqErr) {
          if (Date.now() > deadline) {
            // The outcome, not the whole entry: its audit snapshot holds the params, and so receivers' secrets.
            deps.log.error(
              { err: String(dlqErr), actionId: action.id, auditId, outcome: entry.set },
              'outcome could not be recorded anywhere; the lease sweep will mark the action needs_review'
            )
            return
          }
          await sleep(retryDelay(RETRY.outcome, attempt + 1))
        }
      }
    }
    // Deferred: announced as the lifecycle will record it once the replayer lands it.
    await deps.execution.announce(recorded ?? { ...action, ...transition(action, { type: 'finish', outcome, finishedAt }, deps.clock.now()).set })
  }

  async function run(actionId: string): Promise<Execution> {
    const organizationId = await deps.execution.organizationOf(actionId)
    if (organizationId === undefined) return 'not_claimable'
    // Checked and taken with no await in between: this process's runs cannot both take the last place.
    const before = running.get(organizationId) ?? 0
    if (before >= concurrencyPerOrganization) return 'busy'
    running.set(organizationId, before + 1)
    try {
      return await claimAndRun(actionId)
    } finally {
      const left = running.get(organizationId)! - 1
      if (left === 0) running.delete(organizationId)
      else running.set(organizationId, left)
    }
  }

  async function claimAndRun(actionId: string): Promise<Execution> {
    const claimed = await deps.execution.claim(actionId)
    if (claimed === 'busy') return 'busy'
    if (!claimed) return 'not_claimable'
    await deps.execution.announce(claimed)
    const outcome = await execute(claimed).catch(
      (err): Outcome => ({ status: 'failed', result: null, error: storableText(`executor error: ${String(err)}`.slice(0, 2048)), attempts: 0 })
    )
    await record(claimed, outcome)
    return 'done'
  }

  return { run }
}
