import { setTimeout as sleep } from 'node:timers/promises'
import { eq } from 'drizzle-orm'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { runMigrations } from '../../src/db/migrate.js'
import { actions, auditLog } from '../../src/db/schema/index.js'
import { DLQ_STREAM } from '../../src/jobs/dlq.js'
import { startWorker } from '../../src/worker.js'
import { apiKey, call, signup, testConfig, warmSamples } from '../helpers.js'
import { startReceiver } from '../receiver.js'
import { startPostgres, startRedis } from '../servers.js'


describe('Postgres stopped for 10 s while actions complete (private cluster)', () => {
  let postgres: Awaited<ReturnType<typeof startPostgres>>
  let queueRedis: Awaited<ReturnType<typeof startRedis>>
  beforeAll(async () => {
    postgres = await startPostgres()
    await runMigrations(postgres.url)
    queueRedis = await startRedis()
  }, 60_000)
  afterAll(async () => {
    await queueRedis?.stop()
    await postgres?.destroy()
  })

  it('outcomes wait in {audit}:dlq; after the restart every one lands once and the stream empties', async () => {
    const gates: (() => void)[] = []
    const receiver = await startReceiver(() => new Promise<number>((resolve) => gates.push(() => resolve(200))))
    const config = testConfig({
      DATABASE_URL: postgres.url,
      QUEUE_REDIS_URL: queueRedis.url,
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      SWEEP_INTERVAL_MS: '200',
      ACTION_LEASE_SECONDS: '60',
      // The three actions below are one organization's, and must all be running when Postgres stops.
      ACTION_CONCURRENCY_PER_ORGANIZATION: '3'
    })
    const app = await buildApp(config, { logger: false })
    const stopWorker = await startWorker(config)
    const queue = new Redis(queueRedis.url)
    try {
      const org = await signup(app)
      const key = (await apiKey(app, org)).key
      const ids: string[] = []
      // Three services: their actions run at the same time (one at a time per service).
      for (const service of ['pg-a', 'pg-b', 'pg-c']) {
        await call(app, org.token, { method: 'POST', url: '/v1/services', payload: { name: service, detection: { minSamples: 5, confirmSeconds: 0 } } })
        const send = (sample: object) => call(app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: [sample] } })
        // Timestamped samples 5 minutes apart: enough sample time (minSpanSeconds 1800) for the baseline to score.
        for (const sample of warmSamples(service, 'lat', 8, { stepMs: 300_000 })) await send(sample)
        const incidentId = (await send({ service, metric: 'lat', value: 900 })).json().incidents[0].id
        const action = await call(app, org.token, { method: 'POST', url: `/v1/incidents/${incidentId}/actions`, payload: { type: 'webhook', params: { url: `${receiver.url}/${service}` } } })
        ids.push(action.json().id)
        await call(app, org.token, { method: 'POST', url: `/v1/actions/${action.json().id}/approve` })
      }
      await expect.poll(() => gates.length, { timeout: 20_000 }).toBe(3)

      await postgres.stop()
      for (const open of gates.splice(0)) open()
      await expect.poll(() => queue.xlen(DLQ_STREAM), { timeout: 15_000 }).toBe(3)
      // While Postgres is down, writes answer 503, not 500.
      expect((await call(app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'while-down' } })).statusCode).toBe(503)
      await sleep(10_000 - 1000)
      await postgres.start()

      await expect.poll(() => queue.xlen(DLQ_STREAM), { timeout: 60_000, interval: 250 }).toBe(0)
      for (const id of ids) {
        const [row] = await app.db.select().from(actions).where(eq(actions.id, id))
        expect(row!.status, id).toBe('succeeded')
        const trail = await app.db.select().from(auditLog).where(eq(auditLog.resourceId, id))
        expect(trail.filter((e) => e.action === 'action.succeeded')).toHaveLength(1)
      }
      expect(receiver.received).toHaveLength(3)
    } finally {
      for (const open of gates) open()
      queue.disconnect()
      await stopWorker()
      await app.close()
      await receiver.close()
    }
  }, 150_000)
})
