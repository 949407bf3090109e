import type { Config } from '../config.js'
import type { Database } from '../db/client.js'
import type { JobName } from '../redis/queues.js'
import type { ActionSweeps } from '../modules/actions/sweeps.js'
import type { IncidentsService } from '../modules/incidents/service.js'
import type { TypedQueue } from '../redis/queues.js'
import { purgeExpired } from './maintenance.js'

const PURGE_EVERY_MS = 10 * 60_000

/** What the periodic tasks run on. */
export interface PeriodicDeps {
  db: Database
  incidents: Pick<IncidentsService, 'resolveQuiet'>
  sweeps: ActionSweeps
  actionsQueue: Pick<TypedQueue<'actions'>, 'add' | 'getJob'>
}

interface PeriodicTask<Q extends 'timers' | 'maintenance'> {
  queue: Q
  name: JobName<Q>
  every: (config: Config) => number
  run: (deps: PeriodicDeps) => Promise<unknown>
}
type AnyPeriodicTask = PeriodicTask<'timers'> | PeriodicTask<'maintenance'>

/**
 * Every periodic task, each with its own BullMQ job scheduler (the scheduler's id is the task's name): one
 * failing (say Redis down for verification) does not hold back the others, and each shows on its own in
 * the queue dashboard. All are idempotent and bounded per run.
 */
export const PERIODIC_TASKS: AnyPeriodicTask[] = [
  { queue: 'timers', name: 'auto-resolve', every: (c) => c.sweepIntervalMs, run: (d) => d.incidents.resolveQuiet() },
  { queue: 'timers', name: 'expire-actions', every: (c) => c.sweepIntervalMs, run: (d) => d.sweeps.expirePending() },
  { queue: 'timers', name: 'flag-abandoned-runs', every: (c) => c.sweepIntervalMs, run: (d) => d.sweeps.flagAbandonedRuns() },
  { queue: 'timers', name: 'verify-actions', every: (c) => c.sweepIntervalMs, run: (d) => d.sweeps.verifySucceeded() },
  { queue: 'timers', name: 'reconcile-dispatch', every: (c) => c.sweepIntervalMs, run: (d) => d.sweeps.reconcileDispatch(d.actionsQueue) },
  { queue: 'maintenance', name: 'purge-expired', every: () => PURGE_EVERY_MS, run: (d) => purgeExpired(d.db) }
]
