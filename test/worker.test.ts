import { randomUUID } from 'node:crypto'
import { Queue } from 'bullmq'
import { eq } from 'drizzle-orm'
import { describe, expect, it } from 'vitest'
import { idempotencyKeys, sessions } from '../src/db/schema/index.js'
import { purgeExpired } from '../src/jobs/maintenance.js'
import { startWorker } from '../src/worker.js'
import { Redis } from 'ioredis'
import { signup, testConfig, useApp } from './helpers.js'

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
    const queues = ['maintenance', 'timers', 'actions'].map((name) => new Queue(name, { connection, prefix: config.queuePrefix }))
    try {
      for (const queue of queues.slice(0, 2)) {
        await expect.poll(() => queue.getJobCounts('completed').then((c) => c.completed), { timeout: 10_000 }).toBeGreaterThanOrEqual(1)
        expect(await queue.getJobSchedulersCount()).toBe(1)
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

describe('worker canary', () => {
  it('recreates its job schedulers when the queue Redis loses them without a reconnect', async () => {
    const config = testConfig({ SWEEP_INTERVAL_MS: '200', WORKER_STALL_SECONDS: '1' })
    const handle = await startWorker(config)
    const timers = new Queue('timers', { connection: { host: '127.0.0.1', port: 6379, db: 1 }, prefix: config.queuePrefix })
    try {
      await expect.poll(() => timers.getJobScheduler('timers').then(Boolean), { timeout: 5000 }).toBe(true)
      // What a FLUSHDB or an obliterate from a dashboard does: this run's queue keys are gone, the connection stays.
      const client = new Redis(config.queueRedisUrl)
      const queueKeys = await client.keys(`${config.queuePrefix}:*`)
      if (queueKeys.length > 0) await client.del(...queueKeys)
      client.disconnect()
      expect(await timers.getJobScheduler('timers')).toBeUndefined()
      await expect.poll(() => timers.getJobScheduler('timers').then(Boolean), { timeout: 5000 }).toBe(true)
      const completed = (await timers.getJobCounts('completed')).completed ?? 0
      await expect.poll(() => timers.getJobCounts('completed').then((c) => c.completed), { timeout: 10_000 }).toBeGreaterThan(completed)
    } finally {
      await handle()
      await timers.obliterate({ force: true })
      await timers.close()
    }
  })

  it('replaces BullMQ workers that stopped consuming while Redis is up', async () => {
    const config = testConfig({ SWEEP_INTERVAL_MS: '200', WORKER_STALL_SECONDS: '1' })
    const handle = await startWorker(config)
    const timers = new Queue('timers', { connection: { host: '127.0.0.1', port: 6379, db: 1 }, prefix: config.queuePrefix })
    try {
      await expect.poll(() => timers.getJobCounts('completed').then((c) => c.completed), { timeout: 10_000 }).toBeGreaterThanOrEqual(1)
      const before = handle.workers()
      // The failure mode, reproduced: the workers are alive but consume nothing.
      await Promise.all(before.map((worker) => worker.pause(true)))
      await expect.poll(() => handle.workers() !== before, { timeout: 10_000, interval: 100 }).toBe(true)
      const completed = (await timers.getJobCounts('completed')).completed ?? 0
      await expect.poll(() => timers.getJobCounts('completed').then((c) => c.completed), { timeout: 10_000 }).toBeGreaterThan(completed)
      expect(handle.workers().every((worker) => !worker.isPaused())).toBe(true)
    } finally {
      await handle()
      await timers.obliterate({ force: true })
      await timers.close()
    }
  })
})
