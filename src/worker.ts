import { Worker, type Processor, type Queue } from 'bullmq'
import closeWithGrace from 'close-with-grace'
import pino, { type Logger } from 'pino'
import { loadConfigOrExit, type Config } from './config.js'
import { createDb } from './db/client.js'
import { purgeExpired } from './jobs/maintenance.js'
import { createQueue, JOB_RETENTION, type QueueName } from './jobs/queues.js'
import { isMain } from './lib/is-main.js'
import { throttled } from './lib/throttle.js'
import { createEventPublisher } from './modules/events/publisher.js'
import { resolveQuietIncidents } from './modules/incidents/auto-resolve.js'
import { createCorrelator } from './modules/incidents/correlation.js'
import { connectLeniently, createRedis } from './redis/client.js'

const PURGE_EVERY_MS = 10 * 60_000

/** Starts the BullMQ workers and their schedules; returns a function that stops them gracefully. */
export async function startWorker(config: Config, logger: Logger = pino({ level: config.logLevel, name: 'worker' })) {
  const { db, pool } = createDb(config.databaseUrl, { applicationName: 'autopilot-worker', max: 5 })
  // Workers block on Redis: they need maxRetriesPerRequest null and an offline queue (BullMQ's requirement).
  const connection = createRedis(config.queueRedisUrl, 'queue', config.redisCommandTimeoutMs, {
    lazyConnect: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    commandTimeout: undefined
  })
  connection.on('error', throttled((err: Error) => logger.warn({ err: err.message }, 'queue redis connection problem')))
  const state = createRedis(config.redisUrl, 'state', config.redisCommandTimeoutMs)
  await connectLeniently(state, throttled((err: Error) => logger.warn({ err: err.message }, 'state redis connection problem')))
  const onCacheError = throttled((err: unknown) => logger.warn({ err }, 'state redis unavailable'))
  const correlator = createCorrelator({ db, redis: state, onCacheError })
  const publish = createEventPublisher(state, onCacheError)

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
        const resolved = await resolveQuietIncidents({ db, correlator, publish })
        if (resolved > 0) logger.info({ resolved }, 'auto-resolved quiet incidents')
        return { resolved }
      }
    }
  ]

  const queues: Queue[] = []
  const workers: Worker[] = []
  for (const { queue: name, every, processor } of schedules) {
    const queue = createQueue(name, connection, config.queuePrefix)
    await queue.upsertJobScheduler(name, { every }, { name, opts: JOB_RETENTION })
    queues.push(queue)
    const worker = new Worker(name, processor, { connection, prefix: config.queuePrefix, concurrency: 1 })
    worker.on('error', throttled((err: Error) => logger.warn({ err: err.message, queue: name }, 'worker error')))
    worker.on('failed', (job, err) => logger.error({ jobId: job?.id, queue: name, err: err.message }, 'job failed'))
    workers.push(worker)
  }
  logger.info({ prefix: config.queuePrefix }, 'worker started')

  return async function stop() {
    await Promise.all(workers.map((worker) => worker.close()))
    await Promise.all(queues.map((queue) => queue.close()))
    await Promise.all([connection, state].map((client) => client.quit().catch(() => client.disconnect())))
    await pool.end()
  }
}

if (isMain(import.meta.url)) {
  const config = loadConfigOrExit()
  const logger = pino({ level: config.logLevel, name: 'worker' })
  const stop = await startWorker(config, logger)
  closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'worker shutting down after an error')
    else logger.info({ signal }, 'worker shutting down')
    await stop()
  })
}
