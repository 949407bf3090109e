import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { eq, inArray } from 'drizzle-orm'
import { Redis } from 'ioredis'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { actions, auditLog } from '../../src/db/schema/index.js'
import { DLQ_STREAM } from '../../src/jobs/dlq.js'
import { startWorker } from '../../src/worker.js'
import { apiKey, call, signup, testConfig, warmSamples, type Org } from '../helpers.js'
import { startReceiver } from '../receiver.js'
import { startRedis } from '../servers.js'

type App = Awaited<ReturnType<typeof buildApp>>

/** An organization with a service, an open incident, and a way to propose and approve actions. */
async function scene(app: App, url: string) {
  const org: Org = await signup(app)
  const key = (await apiKey(app, org)).key
  await call(app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'svc', detection: { minSamples: 5, confirmSeconds: 0 } } })
  const send = (values: number[]) =>
    call(app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: values.map((value) => ({ service: 'svc', metric: 'm', value })) } })
  // Timestamped samples 5 minutes apart: enough sample time (minSpanSeconds 1800) for the baseline to score.
  await call(app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: warmSamples('svc', 'm', 10, { stepMs: 300_000 }) } })
  const incidentId = (await send([900])).json().incidents[0].id as string
  return {
    org,
    async propose(path: string) {
      const res = await call(app, org.token, { method: 'POST', url: `/v1/incidents/${incidentId}/actions`, payload: { type: 'webhook', params: { url: `${url}${path}` } } })
      expect(res.statusCode, res.body).toBe(201)
      return res.json().id as string
    },
    approve: (id: string) => call(app, org.token, { method: 'POST', url: `/v1/actions/${id}/approve` }),
    status: async (id: string) => (await call(app, org.token, { method: 'GET', url: `/v1/actions/${id}` })).json().status as string
  }
}

describe('worker killed (kill -9) after claiming, before recording', () => {
  it('the action ends needs_review and the webhook is never called twice', async () => {
    let release!: () => void
    const held = new Promise<number>((resolve) => (release = () => resolve(200)))
    const receiver = await startReceiver(() => held)
    const config = { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', ACTION_LEASE_SECONDS: '2', SWEEP_INTERVAL_MS: '200' }
    const app = await buildApp(testConfig(config), { logger: false })
    const env = { ...process.env, ...config, QUEUE_PREFIX: app.config.queuePrefix, LOG_LEVEL: 'silent' }
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], { env, stdio: 'ignore' })
    let stopSecond: (() => Promise<void>) | undefined
    try {
      const s = await scene(app, receiver.url)
      const id = await s.propose('/slow')
      await s.approve(id)
      await expect.poll(() => receiver.received.length, { timeout: 20_000 }).toBe(1)
      expect(await s.status(id)).toBe('running')
      child.kill('SIGKILL')
      await new Promise((resolve) => child.once('exit', resolve))
      release()

      // Another worker takes over: it sweeps the expired lease and must not run the action again.
      stopSecond = await startWorker(app.config)
      await expect.poll(() => s.status(id), { timeout: 10_000, interval: 100 }).toBe('needs_review')
      await app.queues.actions.add('execute', { actionId: id }, { jobId: `${id}-redelivered` })
      await sleep(1000)
      expect(receiver.received).toHaveLength(1)
      expect(await s.status(id)).toBe('needs_review')
      const trail = await app.db.select().from(auditLog).where(eq(auditLog.resourceId, id))
      expect(trail.map((e) => e.action).sort()).toEqual(['action.approved', 'action.needs_review', 'action.proposed', 'action.started'])
    } finally {
      child.kill('SIGKILL')
      await stopSecond?.()
      await app.close()
      await receiver.close()
    }
  }, 60_000)
})

describe('queue Redis down while actions are approved, then back empty', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>
  let receiver: Awaited<ReturnType<typeof startReceiver>>
  let app: App
  beforeAll(async () => {
    redis = await startRedis()
    receiver = await startReceiver()
    app = await buildApp(testConfig({ QUEUE_REDIS_URL: redis.url, WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', SWEEP_INTERVAL_MS: '200' }), { logger: false })
  })
  afterAll(async () => {
    await app?.close()
    await receiver?.close()
    await redis?.stop()
  })

  it('20 approvals commit while it is down; after it restarts all 20 execute exactly once', async () => {
    const s = await scene(app, receiver.url)
    const ids: string[] = []
    for (let i = 0; i < 20; i++) ids.push(await s.propose(`/a${i}`))
    await redis.stop()
    for (const id of ids) {
      const res = await s.approve(id)
      expect(res.statusCode, res.body).toBe(200)
      expect(res.json().status).toBe('approved') // committed, not yet dispatched
    }
    await redis.restart()
    const stop = await startWorker(app.config)
    try {
      await expect
        .poll(async () => (await app.db.select({ status: actions.status }).from(actions).where(inArray(actions.id, ids))).every((a) => a.status === 'succeeded'), {
          timeout: 30_000,
          interval: 200
        })
        .toBe(true)
      await sleep(500)
      const calls = receiver.received.map((r) => r.url).sort()
      expect(calls).toEqual(ids.map((_, i) => `/a${i}`).sort())
    } finally {
      await stop()
    }
  }, 60_000)
})

describe('Postgres refusing outcome writes', () => {
  const role = 'autopilot_limited'
  let redis: Awaited<ReturnType<typeof startRedis>>
  let admin: pg.Client
  beforeAll(async () => {
    redis = await startRedis()
    admin = new pg.Client({ connectionString: process.env.DATABASE_URL })
    await admin.connect()
    await admin.query(`DO $$ BEGIN CREATE ROLE ${role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
    await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`)
  })
  afterAll(async () => {
    await admin?.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`)
    await admin?.end()
    await redis?.stop()
  })

  it('outcomes go to {audit}:dlq, and after recovery every row is in Postgres once and the stream is empty', async () => {
    const gates: (() => void)[] = []
    const receiver = await startReceiver(() => new Promise<number>((resolve) => gates.push(() => resolve(200))))
    const overrides = { QUEUE_REDIS_URL: redis.url, WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', SWEEP_INTERVAL_MS: '200' }
    const app = await buildApp(testConfig(overrides), { logger: false })
    const limitedUrl = new URL(process.env.DATABASE_URL!)
    limitedUrl.username = role
    const stop = await startWorker(testConfig({ ...overrides, DATABASE_URL: limitedUrl.toString(), QUEUE_PREFIX: app.config.queuePrefix }))
    const queue = new Redis(redis.url)
    try {
      const s = await scene(app, receiver.url)
      const ids = [await s.propose('/one'), await s.propose('/two')]
      for (const id of ids) await s.approve(id)
      // Different services could run in parallel; these two share one, so they run one after the other.
      await expect.poll(() => gates.length, { timeout: 15_000 }).toBe(1)
      await admin.query(`REVOKE UPDATE ON actions FROM ${role}; REVOKE INSERT ON audit_log FROM ${role}`)
      gates.shift()!()
      await expect.poll(() => queue.xlen(DLQ_STREAM), { timeout: 10_000 }).toBeGreaterThanOrEqual(1)
      expect(await s.status(ids[0]!)).toBe('running')

      await admin.query(`GRANT UPDATE ON actions TO ${role}; GRANT INSERT ON audit_log TO ${role}`)
      await expect.poll(() => s.status(ids[0]!), { timeout: 15_000, interval: 200 }).toBe('succeeded')
      await expect.poll(() => queue.xlen(DLQ_STREAM), { timeout: 10_000 }).toBe(0)
      await expect.poll(() => gates.length, { timeout: 15_000 }).toBe(1)
      gates.shift()!()
      await expect.poll(() => s.status(ids[1]!), { timeout: 15_000, interval: 200 }).toBe('succeeded')

      for (const id of ids) {
        const outcomes = await app.db.select().from(auditLog).where(eq(auditLog.resourceId, id))
        expect(outcomes.filter((e) => e.action === 'action.succeeded'), id).toHaveLength(1)
      }
      expect(receiver.received).toHaveLength(2)
    } finally {
      await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`)
      for (const open of gates) open()
      queue.disconnect()
      await stop()
      await app.close()
      await receiver.close()
    }
  }, 90_000)
})

