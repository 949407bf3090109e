import { DelayedError, Worker, type Job, type Queue } from 'bullmq'
import closeWithGrace from 'close-with-grace'
import pino, { type Logger } from 'pino'
import { createServices } from './composition.js'
import { ACTION_SLOTS, loadConfigOrExit, type Config } from './config.js'
import { createDb } from './db/client.js'
import { startReplayer } from './jobs/dlq.js'
import { createActionRunner } from './jobs/execute-action.js'
import { PERIODIC_TASKS, type PeriodicDeps } from './jobs/periodic.js'
import { supervisedWorker, type Processor } from './jobs/supervisor.js'
import { systemClock, type Clock } from './lib/clock.js'
import { createInvalidationBus } from './lib/invalidation.js'
import { isMain } from './lib/is-main.js'
import { throttled } from './lib/throttle.js'
import { connectLeniently, createRedis, duplicateClient, isCluster } from './redis/client.js'
import { createQueues, PERIODIC_JOB_OPTIONS, queuePrefix, type QueueName } from './redis/queues.js'

const BUSY_RETRY_MS = 1000

/** Starts the BullMQ workers, their job schedulers and the audit replayer; returns a graceful stop. */
export async function startWorker(config: Config, logger: Logger = pino({ level: config.logLevel, name: 'worker' }), clock: Clock = systemClock) {
  const { db, pool } = createDb(config.databaseUrl, { applicationName: 'autopilot-worker', max: 10 })
  // Workers block on Redis: they need maxRetriesPerRequest null and an offline queue (BullMQ's requirement).
  const connection = createRedis(config.queueRedisUrl, 'queue', config.redisCommandTimeoutMs, {
    lazyConnect: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    commandTimeout: undefined
  })
  connection.on('error', throttled((err: Error) => logger.warn({ err: err.message }, 'queue redis connection problem')))
  const replayConnection = duplicateClient(connection, {})
  replayConnection.on('error', () => {})
  const state = createRedis(config.redisUrl, 'state', config.redisCommandTimeoutMs)
  const warnState = throttled((err: unknown) => logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'state redis connection problem'))
  await connectLeniently(state, warnState)
  // On a cluster the bus opens its own subscriber, to the master of its channel's slot.
  const subscriber = isCluster(state) ? undefined : createRedis(config.redisUrl, 'state', config.redisCommandTimeoutMs, { lazyConnect: false, enableOfflineQueue: true })
  subscriber?.on('error', warnState)
  const invalidation = createInvalidationBus(state, subscriber, warnState)

  const queues = createQueues(connection, config.queuePrefix)
  for (const queue of Object.values(queues)) queue.on('error', throttled((err: Error) => logger.warn({ err: err.message, queue: queue.name }, 'queue error')))
  // The same composition root as the API's.
  const services = createServices({ config, db, redis: state, invalidation, actionsQueue: queues.actions, clock, log: logger })
  const runner = createActionRunner({ db, execution: services.actionExecution, queueRedis: connection, config, clock, log: logger })
  const periodicDeps: PeriodicDeps = { db, incidents: services.incidents, sweeps: services.actionSweeps, actionsQueue: queues.actions }

  // Job schedulers live in the queue Redis: (re)created at start and whenever it comes back, since it may
  // come back empty. Upserting is idempotent.
  const schedule = () =>
    Promise.all(
      PERIODIC_TASKS.map((task) => {
        const queue: Pick<Queue, 'upsertJobScheduler'> = queues[task.queue]
        return queue.upsertJobScheduler(task.name, { every: task.every(config) }, { name: task.name, opts: PERIODIC_JOB_OPTIONS })
      })
    )
  await schedule()
  const restoreSchedules = () => void schedule().catch((err) => logger.warn({ err: String(err) }, 'job schedulers not restored yet'))
  connection.on('ready', restoreSchedules)
  // A queue Redis emptied without a reconnect (FLUSHDB, a queue obliterated from the dashboard) loses them
  // silently, and BullMQ does not restore them (it re-schedules only when a scheduler's job runs): look
  // for them every sweep interval.
  const schedulerCheck = setInterval(async () => {
    if (connection.status !== 'ready') return
    const found = await Promise.all(PERIODIC_TASKS.map((task) => queues[task.queue].getJobScheduler(task.name))).catch(() => [])
    if (found.some((scheduler) => !scheduler)) {
      logger.warn('job schedulers missing from the queue Redis; recreating them')
      restoreSchedules()
    }
  }, config.sweepIntervalMs)
  schedulerCheck.unref()

  const byName = new Map(PERIODIC_TASKS.map((task) => [`${task.queue}:${task.name}`, task]))
  const periodic = async (job: Job) => {
    const task = byName.get(`${job.queueName}:${job.name}`)
    if (!task) throw new Error(`no periodic task ${job.queueName}:${job.name}`)
    const done = await task.run(periodicDeps)
    if (typeof done === 'number' ? done > 0 : done !== undefined) logger.info({ task: task.name, done }, 'periodic task')
    return done
  }

  const supervise = <T>(name: QueueName, processor: Processor<T>, concurrency: number) =>
    supervisedWorker<T>(
      queues[name],
      (counted) => {
        const worker = new Worker<T>(name, counted, { connection, prefix: queuePrefix(config.queuePrefix, name), concurrency })
        worker.on('error', throttled((err: Error) => logger.warn({ err: err.message, queue: name }, 'worker error')))
        worker.on('failed', (job, err) => logger.error({ jobId: job?.id, queue: name, err: err.message }, 'job failed'))
        return worker
      },
      processor,
      {
        checkEveryMs: Math.min(5000, config.workerStallSeconds * 200),
        stuckAfterMs: config.workerStallSeconds * 1000,
        closeTimeoutMs: 5000,
        shutdownTimeoutMs: 25_000,
        concurrency,
        log: logger
      }
    )
  const workers = [
    supervise('timers', periodic, 1),
    supervise('maintenance', periodic, 1),
    supervise<{ actionId: string }>(
      'actions',
      async (job, token) => {
        const result = await runner.run(job.data.actionId)
        if (result === 'busy') {
          // Another action of this service is running, or enough of its organization's: come back shortly
          // (not a failed attempt: moveToDelayed skips the attempt count).
          await job.moveToDelayed(Date.now() + BUSY_RETRY_MS, token)
          throw new DelayedError()
        }
        return result
      },
      ACTION_SLOTS
    )
  ]

  const stopReplayer = startReplayer({ db, redis: replayConnection, log: logger, consumer: `worker-${process.pid}` })
  logger.info({ prefix: config.queuePrefix }, 'worker started')

  async function stop() {
    clearInterval(schedulerCheck)
    // Running jobs finish (worker.close waits for them); nothing new starts.
    await Promise.all(workers.map((supervised) => supervised.close()))
    await stopReplayer()
    await Promise.all(Object.values(queues).map((queue) => queue.close()))
    invalidation.close()
    await services.ingest.close()
    await Promise.all([connection, replayConnection, state, ...(subscriber ? [subscriber] : [])].map((client) => client.quit().catch(() => client.disconnect())))
    await pool.end()
  }
  // The current workers are exposed for inspection (tests, diagnostics); stop() is the handle's purpose.
  return Object.assign(stop, { workers: () => workers.map((supervised) => supervised.current()) })
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
