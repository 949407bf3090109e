import { Worker } from 'bullmq'
import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import { loadConfigOrExit, type Config } from './config.js'
import { createDb } from './db/client.js'
import { purgeExpired } from './jobs/maintenance.js'
import { createQueue } from './jobs/queues.js'
import { isMain } from './lib/is-main.js'
import { createRedis } from './redis/client.js'

const PURGE_EVERY_MS = 10 * 60_000

/** Starts the BullMQ workers and their schedules; returns a function that stops them gracefully. */
export async function startWorker(config: Config, logger = pino({ level: config.logLevel, name: 'worker' })) {
  const { db, pool } = createDb(config.databaseUrl, { applicationName: 'autopilot-worker', max: 5 })
  // Workers block on Redis: they need maxRetriesPerRequest null and an offline queue (BullMQ's requirement).
  const connection = createRedis(config.queueRedisUrl, 'queue', config.redisCommandTimeoutMs, {
    lazyConnect: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    commandTimeout: undefined
  })
  connection.on('error', (err) => logger.warn({ err: err.message }, 'queue redis connection problem'))

  const maintenance = createQueue('maintenance', connection, config.queuePrefix)
  await maintenance.upsertJobScheduler('purge-expired', { every: PURGE_EVERY_MS }, { name: 'purge', data: { task: 'purge_expired' } })

  const worker = new Worker(
    'maintenance',
    async () => {
      const purged = await purgeExpired(db)
      logger.info(purged, 'purged expired rows')
      return purged
    },
    { connection, prefix: config.queuePrefix, concurrency: 1 }
  )
  worker.on('error', (err) => logger.warn({ err: err.message }, 'maintenance worker error'))
  worker.on('failed', (job, err) => logger.error({ jobId: job?.id, err: err.message }, 'maintenance job failed'))
  logger.info({ prefix: config.queuePrefix }, 'worker started')

  return async function stop() {
    await worker.close()
    await maintenance.close()
    await connection.quit().catch(() => connection.disconnect())
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
