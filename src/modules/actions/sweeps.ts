import type { RedisClient } from '../../redis/client.js'
import type { Database } from '../../db/client.js'
import type { DetectionConfig } from '../../db/schema/index.js'
import type { Clock } from '../../lib/clock.js'
import type { Actor } from '../../lib/context.js'
import type { TypedQueue } from '../../redis/queues.js'
import { allBaselinesOf, recentAnomalies } from '../detection/window.js'
import type { ChangeContext } from '../../lib/context.js'
import type { Executor } from '../../db/client.js'
import { detectionOf } from '../services/service.js'
import type { ActionEvent, ActionRow, VerificationVerdict } from './lifecycle.js'
import {
  actionsToVerify,
  approvedActionIds,
  changeAction,
  deadlinePassed,
  leasePassed,
  lockAction,
  lockDueActions,
  queuedActionIds
} from './repository.js'
import type { ActionService } from './service.js'

/** A verification's verdict on the action's incident (applied by the incident lifecycle). */
export type IncidentVerdict = { type: 'recovered'; actionId: string; since: Date } | { type: 'not_recovered' }

/** What verification needs of incidents, wired in by the composition root. */
export interface IncidentVerdicts<Committed> {
  /** inside the verifier's transaction; null when the verdict changes nothing */
  applyVerdict(tx: Executor, ctx: ChangeContext, incidentId: string, verdict: IncidentVerdict): Promise<Committed | null>
  /** after the commit */
  announce(organizationId: string, committed: Committed): Promise<unknown>
}

const BATCH = 200
/** A queued action's job is looked for only after this long (it was added before the row said queued). */
const QUEUED_GRACE_MS = 2000
const TIMER: Actor = { type: 'system', id: 'timer' }
const VERIFIER: Actor = { type: 'system', id: 'verifier' }

/** The worker's periodic work on actions: expiry, abandoned runs, the outbox, and verification. */
export function createActionSweeps<Committed>(deps: {
  db: Database
  redis: RedisClient
  clock: Clock
  actions: Pick<ActionService, 'announce' | 'dispatch'>
  incidents: IncidentVerdicts<Committed>
  verificationWindowSeconds: number
}) {
  const { db, clock } = deps

  /** Locks the due actions of one status and applies the same event to each, one audit row apiece. */
  async function sweep(status: ActionRow['status'], due: Parameters<typeof lockDueActions>[2], event: ActionEvent) {
    const changed = await db.transaction(async (tx) => {
      const now = clock.now()
      const out: ActionRow[] = []
      for (const before of await lockDueActions(tx, status, due, BATCH)) {
        const after = await changeAction(tx, { organizationId: before.organizationId, actor: TIMER }, before, event, now)
        if (after) out.push(after)
      }
      return out
    })
    await deps.actions.announce(changed)
    return changed.length
  }

  /** Proposals nobody approved in time. */
  const expirePending = () => sweep('pending_approval', deadlinePassed(clock.now()), { type: 'expire' })

  /** Runs whose worker vanished mid-side-effect: the outcome is unknown, so a person decides. */
  const flagAbandonedRuns = () => sweep('running', leasePassed(clock.now()), { type: 'abandon' })

  /**
   * The outbox: approved actions not yet in the queue, and queued ones whose job is gone (a flushed or
   * restarted queue Redis) or failed, are sent again. Job ids are action ids, so this never doubles a job.
   */
  async function reconcileDispatch(queue: Pick<TypedQueue<'actions'>, 'add' | 'getJob'>) {
    let sent = (await deps.actions.dispatch(await approvedActionIds(db, BATCH))).length
    for (const id of await queuedActionIds(db, new Date(clock.now().getTime() - QUEUED_GRACE_MS), BATCH)) {
      const job = await queue.getJob(id)
      if (!job) {
        await queue.add('execute', { actionId: id }, { jobId: id })
        sent++
      } else if (await job.isFailed()) {
        await job.retry()
        sent++
      }
    }
    return sent
  }

  /** What the window says about an incident's metrics since the action finished. */
  async function verdictOf(serviceId: string, detection: DetectionConfig, metrics: string[], since: number): Promise<[VerificationVerdict, Record<string, unknown>]> {
    if (metrics.length === 0) return ['skipped', { reason: 'the incident has no metrics to measure' }]
    // Only what would page counts: an unconfirmed blip after the action is no failed remediation.
    const anomalies = (await recentAnomalies(deps.redis, serviceId, since)).filter(
      (a) => !a.suppressed && a.confirmed && metrics.includes(a.metric) && Date.parse(a.at) > since
    )
    if (anomalies.length > 0) return ['not_recovered', { anomalies: anomalies.slice(0, 20) }]
    const baselines = (await allBaselinesOf(deps.redis, serviceId, detection, metrics)).filter((b) => Date.parse(b.updatedAt) > since)
    // An episode that began before the action and is still going: its metric has not come back.
    const ongoing = baselines.filter((b) => b.episode?.confirmed && Date.parse(b.episode.lastAt) > since)
    if (ongoing.length > 0) return ['not_recovered', { episodes: ongoing.map((b) => ({ metric: b.metric, ...b.episode })) }]
    if (baselines.length === 0) return ['skipped', { reason: 'no samples of the incident metrics since the action' }]
    return ['recovered', { metrics: baselines.map((b) => ({ metric: b.metric, mean: b.mean, stddev: b.stddev })) }]
  }

  /**
   * After the verification window: did the incident's metrics recover? No unsuppressed anomaly on them since
   * the action finished, and fresh samples to prove it → recovered, and the incident resolves. Anomalies →
   * not_recovered, and the incident escalates to critical. No samples since (or nothing to measure) → skipped.
   */
  async function verifySucceeded() {
    const due = await actionsToVerify(db, new Date(clock.now().getTime() - deps.verificationWindowSeconds * 1000), BATCH)

    let verified = 0
    for (const { action, metrics, service } of due) {
      const since = action.finishedAt!
      const [verdict, details] = await verdictOf(service.id, detectionOf(service), metrics, since.getTime())
      const ctx = { organizationId: action.organizationId, actor: VERIFIER }
      const outcome = await db.transaction(async (tx) => {
        const before = await lockAction(tx, action.id)
        if (before?.status !== 'succeeded' || before.verificationState !== 'pending') return null
        const updated = await changeAction(tx, ctx, before, { type: 'verify', verdict, details }, clock.now())
        if (!updated) return null
        const incident =
          verdict === 'skipped'
            ? null
            : await deps.incidents.applyVerdict(tx, ctx, action.incidentId, verdict === 'recovered' ? { type: 'recovered', actionId: action.id, since } : { type: 'not_recovered' })
        return { updated, incident }
      })
      if (!outcome) continue
      verified++
      await deps.actions.announce([outcome.updated])
      if (outcome.incident) await deps.incidents.announce(action.organizationId, outcome.incident)
    }
    return verified
  }

  return { expirePending, flagAbandonedRuns, reconcileDispatch, verifySucceeded }
}
export type ActionSweeps = ReturnType<typeof createActionSweeps<unknown>>
