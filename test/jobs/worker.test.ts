import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Queue } from 'bullmq'
import { eq } from 'drizzle-orm'
import { describe, expect, it } from 'vitest'
import { idempotencyKeys, sessions } from '../../src/db/schema/index.js'
import { purgeExpired } from '../../src/jobs/maintenance.js'
import { queuePrefix, type QueueName } from '../../src/redis/queues.js'
import { startWorker } from '../../src/worker.js'
import { Redis } from 'ioredis'
import { signup, testConfig, useApp } from '../helpers.js'
import { startRedis } from '../servers.js'

const ctx = useApp()
const DAY = 86_400_000

describe('maintenance', () => {
  it('purges long-dead sessions and expired idempotency keys, keeping live ones', async () => {
    const org = await signup(ctx.app)
    const db = ctx.app.db
    const [live] = await db.select().from(sessions).where(eq(sessions.organizationId, org.organizationId))
    const dead = await db
      .insert(sessions)
      .values({ userId: live!.userId, organizationId: org.organizationId, refreshTokenHash: randomUUID(), expiresAt: new Date(Date.now() - 8 * DAY) })
      .returning()
    await db.insert(idempotencyKeys).values([
      { organizationId: org.organizationId, key: 'old', scope: 'POST /v1/services', requestHash: 'h', expiresAt: new Date(Date.now() - 1000) },
      { organizationId: org.organizationId, key: 'fresh', scope: 'POST /v1/services', requestHash: 'h', expiresAt: new Date(Date.now() + DAY) }
    ])

    const purged = await purgeExpired(db)
    expect(purged.sessions).toBeGreaterThanOrEqual(1)
    expect(purged.idempotencyKeys).toBeGreaterThanOrEqual(1)
    const left = await db.select({ id: sessions.id }).from(sessions).where(eq(sessions.organizationId, org.organizationId))
    expect(left.map((s) => s.id)).toEqual([live!.id])
    expect(dead[0]!.id).not.toBe(live!.id)
    const keys = await db.select({ key: idempotencyKeys.key }).from(idempotencyKeys).where(eq(idempotencyKeys.organizationId, org.organizationId))
    expect(keys.map((k) => k.key)).toEqual(['fresh'])
  })

  it('the worker process schedules the purge and runs it through BullMQ, then stops cleanly', async () => {
    const config = testConfig()
    const stop = await startWorker(config)
    const connection = { host: '127.0.0.1', port: 6379, db: 1 }
    const queues = (['maintenance', 'timers', 'actions'] as QueueName[]).map((name) => new Queue(name, { connection, prefix: queuePrefix(config.queuePrefix, name) }))
    try {
      // One job scheduler per periodic task: one purge, five timers.
      for (const [queue, schedulers] of [[queues[0]!, 1], [queues[1]!, 5]] as const) {
        await expect.poll(() => queue.getJobCounts('completed').then((c) => c.completed), { timeout: 10_000 }).toBeGreaterThanOrEqual(1)
        expect(await queue.getJobSchedulersCount()).toBe(schedulers)
      }
    } finally {
      await stop()
      for (const queue of queues) {
        await queue.obliterate({ force: true })
        await queue.close()
      }
    }
  })
})

describe('worker job schedulers', () => {
  it('recreates its job schedulers when the queue Redis loses them without a reconnect', async () => {
    const config = testConfig({ SWEEP_INTERVAL_MS: '200' })
    const handle = await startWorker(config)
    const timers = new Queue('timers', { connection: { host: '127.0.0.1', port: 6379, db: 1 }, prefix: queuePrefix(config.queuePrefix, 'timers') })
    try {
      await expect.poll(() => timers.getJobScheduler('auto-resolve').then(Boolean), { timeout: 5000 }).toBe(true)
      // What a FLUSHDB or an obliterate from a dashboard does: this run's queue keys are gone, the connection stays.
      const client = new Redis(config.queueRedisUrl)
      const queueKeys = await client.keys(`${queuePrefix(config.queuePrefix, 'timers')}:*`)
      if (queueKeys.length > 0) await client.del(...queueKeys)
      client.disconnect()
      expect(await timers.getJobScheduler('auto-resolve')).toBeUndefined()
      await expect.poll(() => timers.getJobScheduler('auto-resolve').then(Boolean), { timeout: 5000 }).toBe(true)
      const completed = (await timers.getJobCounts('completed')).completed ?? 0
      await expect.poll(() => timers.getJobCounts('completed').then((c) => c.completed), { timeout: 10_000 }).toBeGreaterThan(completed)
    } finally {
      await handle()
      await timers.obliterate({ force: true })
      await timers.close()
    }
  })

  // bullmq before 6.3.3 never resumed after an outage longer than its drainDelay (5 s) on a standalone
  // Redis (taskforcesh/bullmq#4585); the pinned version does, so the worker keeps no watchdog of its own.
  it('resumes consuming after the queue Redis was down for 10 s and came back empty', async () => {
    const redis = await startRedis()
    const config = testConfig({ QUEUE_REDIS_URL: redis.url, SWEEP_INTERVAL_MS: '200' })
    const handle = await startWorker(config)
    const timers = new Queue('timers', { connection: { url: redis.url }, prefix: queuePrefix(config.queuePrefix, 'timers') })
    timers.on('error', () => {})
    try {
      await expect.poll(() => timers.getJobCounts('completed').then((c) => c.completed), { timeout: 10_000 }).toBeGreaterThanOrEqual(1)
      await redis.stop()
      await sleep(10_000)
      await redis.restart()
      await expect.poll(() => timers.getJobCounts('completed').then((c) => c.completed), { timeout: 10_000, interval: 200 }).toBeGreaterThanOrEqual(5)
    } finally {
      await handle()
      await timers.close()
      await redis.stop()
    }
  }, 40_000)
})
