import { DelayedError, Worker, type Processor, type Queue } from 'bullmq'
import closeWithGrace from 'close-with-grace'
import pino, { type Logger } from 'pino'
import { loadConfigOrExit, type Config } from './config.js'
import { createDb } from './db/client.js'
import { createDispatcher } from './jobs/dispatch.js'
import { startReplayer } from './jobs/dlq.js'
import { createActionRunner } from './jobs/execute-action.js'
import { purgeExpired } from './jobs/maintenance.js'
import { createQueue, JOB_RETENTION, type QueueName } from './jobs/queues.js'
import { isMain } from './lib/is-main.js'
import { throttled } from './lib/throttle.js'
import { expirePendingActions, flagAbandonedRuns, reconcileDispatch, verifySucceededActions } from './modules/actions/sweeps.js'
import { createEventPublisher } from './modules/events/publisher.js'
import { resolveQuietIncidents } from './modules/incidents/auto-resolve.js'
import { createCorrelator } from './modules/incidents/correlation.js'
import { connectLeniently, createRedis } from './redis/client.js'

const PURGE_EVERY_MS = 10 * 60_000
const ACTION_CONCURRENCY = 5
const BUSY_RETRY_MS = 1000

/** Starts the BullMQ workers, their schedules and the audit replayer; returns a graceful stop. */
export async function startWorker(config: Config, logger: Logger = pino({ level: config.logLevel, name: 'worker' })) {
  const { db, pool } = createDb(config.databaseUrl, { applicationName: 'autopilot-worker', max: 10 })
  // Workers block on Redis: they need maxRetriesPerRequest null and an offline queue (BullMQ's requirement).
  const connection = createRedis(config.queueRedisUrl, 'queue', config.redisCommandTimeoutMs, {
    lazyConnect: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    commandTimeout: undefined
  })
  connection.on('error', throttled((err: Error) => logger.warn({ err: err.message }, 'queue redis connection problem')))
  const replayConnection = connection.duplicate()
  replayConnection.on('error', () => {})
  const state = createRedis(config.redisUrl, 'state', config.redisCommandTimeoutMs)
  await connectLeniently(state, throttled((err: Error) => logger.warn({ err: err.message }, 'state redis connection problem')))
  const onError = throttled((err: unknown) => logger.warn({ err }, 'state redis unavailable'))
  const correlator = createCorrelator({ db, redis: state, onCacheError: onError })
  const publish = createEventPublisher(state, onError)

  const actionsQueue = createQueue('actions', connection, config.queuePrefix)
  const dispatch = createDispatcher(db, actionsQueue)
  const runner = createActionRunner({ db, queueRedis: connection, publish, config, log: logger })
  const sweepDeps = { db, redis: state, publish, onError }

  /** Each timer on its own: one failing (say Redis down for verification) does not stop the others. */
  const timers: [string, () => Promise<number>][] = [
    ['auto-resolved incidents', () => resolveQuietIncidents({ db, correlator, publish })],
    ['expired actions', () => expirePendingActions(sweepDeps)],
    ['abandoned runs flagged needs_review', () => flagAbandonedRuns(sweepDeps)],
    ['verified actions', () => verifySucceededActions({ ...sweepDeps, correlator, windowSeconds: config.actions.verificationWindowSeconds })],
    ['dispatched actions', () => reconcileDispatch({ db, dispatch, queue: actionsQueue })]
  ]

  /** When the timers job last ran: the canary the watchdog below looks at. */
  let lastTimersRun = Date.now()
  const schedules: { queue: QueueName; every: number; processor: Processor }[] = [
    {
      queue: 'maintenance',
      every: PURGE_EVERY_MS,
      processor: async () => {
        const purged = await purgeExpired(db)
        logger.info(purged, 'purged expired rows')
        return purged
      }
    },
    {
      queue: 'timers',
      every: config.sweepIntervalMs,
      processor: async () => {
        lastTimersRun = Date.now()
        const done: Record<string, number | string> = {}
        for (const [name, timer] of timers) {
          try {
            const count = await timer()
            if (count > 0) done[name] = count
          } catch (err) {
            done[name] = `failed: ${String(err)}`
          }
        }
        if (Object.keys(done).length > 0) logger.info(done, 'timers')
        return done
      }
    }
  ]

  const queues: Queue[] = [actionsQueue]
  const scheduled: [Queue, number][] = []
  for (const { queue: name, every } of schedules) {
    const queue = createQueue(name, connection, config.queuePrefix)
    scheduled.push([queue, every])
    queues.push(queue)
  }
  // Schedulers live in the queue Redis: (re)create them at start and whenever it comes back, since it
  // may come back empty. Upserting is idempotent.
  const schedule = () =>
    Promise.all(scheduled.map(([queue, every]) => queue.upsertJobScheduler(queue.name, { every }, { name: queue.name, opts: JOB_RETENTION })))
  await schedule()
  const restoreSchedules = () => void schedule().catch((err) => logger.warn({ err: String(err) }, 'schedulers not restored yet'))
  connection.on('ready', restoreSchedules)
  // A queue Redis emptied without a reconnect (FLUSHDB, an obliterated queue) loses them too: the watchdog
  // looks for them on every tick.
  const schedulesMissing = async () => {
    const found = await Promise.all(scheduled.map(([queue]) => queue.getJobScheduler(queue.name)))
    return found.some((scheduler) => !scheduler)
  }

  function createWorkers(): Worker[] {
    const created = schedules.map(({ queue, processor }) => new Worker(queue, processor, { connection, prefix: config.queuePrefix, concurrency: 1 }))
    created.push(
      new Worker<{ actionId: string }>(
        'actions',
        async (job, token) => {
          const result = await runner.run(job.data.actionId)
          if (result === 'busy') {
            // Another action of this service is running: come back shortly (not a failed attempt).
            await job.moveToDelayed(Date.now() + BUSY_RETRY_MS, token)
            throw new DelayedError()
          }
          return result
        },
        { connection, prefix: config.queuePrefix, concurrency: ACTION_CONCURRENCY }
      )
    )
    for (const worker of created) {
      worker.on('error', throttled((err: Error) => logger.warn({ err: err.message, queue: worker.name }, 'worker error')))
      worker.on('failed', (job, err) => logger.error({ jobId: job?.id, queue: worker.name, err: err.message }, 'job failed'))
    }
    return created
  }
  let workers = createWorkers()

  // Canary: the timers job is scheduled every few seconds, so while the queue Redis is up it must keep
  // running. BullMQ workers have been seen never to resume after a long Redis outage; when the canary
  // goes quiet, the workers are replaced (their active jobs are guarded by the Postgres claim anyway).
  const stallMs = Math.max(config.workerStallSeconds * 1000, 3 * config.sweepIntervalMs)
  let restarting = false
  const watchdog = setInterval(async () => {
    if (connection.status !== 'ready') return
    if (await schedulesMissing().catch(() => false)) {
      logger.warn('job schedulers missing from the queue Redis; recreating them')
      restoreSchedules()
    }
    if (restarting || Date.now() - lastTimersRun < stallMs) return
    restarting = true
    logger.error({ silentForMs: Date.now() - lastTimersRun }, 'BullMQ workers stopped consuming; replacing them')
    const stale = workers
    workers = createWorkers()
    lastTimersRun = Date.now()
    await Promise.all(stale.map((worker) => worker.close(true).catch(() => {})))
    restarting = false
  }, Math.max(250, Math.floor(stallMs / 4)))
  watchdog.unref()

  const stopReplayer = startReplayer({ db, redis: replayConnection, log: logger, consumer: `worker-${process.pid}` })
  logger.info({ prefix: config.queuePrefix }, 'worker started')

  async function stop() {
    clearInterval(watchdog)
    // Running jobs finish (worker.close waits for them); nothing new starts.
    await Promise.all(workers.map((worker) => worker.close()))
    await stopReplayer()
    await Promise.all(queues.map((queue) => queue.close()))
    await Promise.all([connection, replayConnection, state].map((client) => client.quit().catch(() => client.disconnect())))
    await pool.end()
  }
  // The current workers are exposed for inspection (tests, diagnostics); stop() is the handle's purpose.
  return Object.assign(stop, { workers: () => workers })
}

if (isMain(import.meta.url)) {
  const config = loadConfigOrExit()
  const logger = pino({ level: config.logLevel, name: 'worker' })
  const stop = await startWorker(config, logger)
  closeWithGrace({ delay: 30_000 }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'worker shutting down after an error')
    else logger.info({ signal }, 'worker shutting down')
    await stop()
  })
}
