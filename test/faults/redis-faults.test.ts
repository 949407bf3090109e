import { and, eq, ne } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDb } from '../../src/db/client.js'
import { incidents } from '../../src/db/schema/index.js'
import { startRedis } from '../servers.js'
import { json, startProcess, tenant } from './processes.js'
import { steady, warmSamples } from '../helpers.js'

const { db, pool } = createDb(process.env.DATABASE_URL!)
afterAll(() => pool.end())

describe('state Redis killed and restarted empty during ingestion (real API process)', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>
  let api: Awaited<ReturnType<typeof startProcess>>
  beforeAll(async () => {
    redis = await startRedis()
    api = await startProcess('src/server.ts', { REDIS_URL: redis.url, QUEUE_REDIS_URL: 'redis://127.0.0.1:6379/1' })
  })
  afterAll(async () => {
    await api?.kill()
    await redis?.stop()
  })

  it('answers 503 with Retry-After in the gap, never crashes, resumes detection, no duplicate incident', async () => {
    const { key, token } = await tenant(api.url)
    await json(`${api.url}/v1/services`, { token, body: { name: 'victim', detection: { minSamples: 5, confirmSeconds: 0 } } })
    const sendSample = (sample: object) => json(`${api.url}/v1/metrics`, { token: key, body: { samples: [sample] } })
    const send = (value: number) => sendSample({ service: 'victim', metric: 'lat', value })
    // Timestamped samples 5 minutes apart: enough sample time (minSpanSeconds 1800) for the baseline to score.
    for (const sample of warmSamples('victim', 'lat', 10, { stepMs: 300_000 })) expect((await sendSample(sample)).status).toBe(202)
    const opened = await send(900)
    expect(opened.body.incidents[0].created).toBe(true)

    await redis.stop()
    const during = []
    for (let i = 0; i < 10; i++) during.push(await send(steady(i)))
    for (const res of during) {
      expect(res.status).toBe(503)
      expect(res.body.code).toBe('unavailable')
      expect(res.headers.get('retry-after')).toBeTruthy()
      expect(res.ms).toBeLessThan(2500)
    }
    // Postgres-backed reads keep answering; readiness says what is wrong.
    expect((await json(`${api.url}/v1/incidents`, { token: key })).status).toBe(200)
    const ready = await json(`${api.url}/health/ready`)
    expect(ready.status).toBe(503)
    expect(ready.body).toMatchObject({ status: 'degraded', checks: { redis: 'down', postgres: 'ok' } })

    await redis.restart()
    // The baseline relearns from scratch: 7 timestamped samples over 30 minutes, the first one sent until accepted.
    const [first, ...relearn] = warmSamples('victim', 'lat', 7, { stepMs: 300_000 })
    await expect.poll(async () => (await sendSample(first!)).status, { timeout: 10_000, interval: 200 }).toBe(202)
    for (const sample of relearn) await sendSample(sample)
    const after = await send(900)
    expect(after.status).toBe(202)
    expect(after.body.anomalies).toHaveLength(1)
    expect(after.body.incidents[0]).toMatchObject({ id: opened.body.incidents[0].id, created: false })
    const serviceId = (await db.select().from(incidents).where(eq(incidents.id, opened.body.incidents[0].id)))[0]!.serviceId
    expect(await db.select().from(incidents).where(and(eq(incidents.serviceId, serviceId), ne(incidents.status, 'resolved')))).toHaveLength(1)
    expect(api.child.exitCode).toBeNull()
    expect(api.stderr()).not.toMatch(/unhandled|UnhandledPromiseRejection/i)
  }, 90_000)

  it('a Redis frozen by SIGSTOP for 5 s: requests answer within about 2 s, and everything resumes', async () => {
    const { key } = await tenant(api.url)
    const send = () => json(`${api.url}/v1/metrics`, { token: key, body: { samples: [{ service: 'frozen', metric: 'lat', value: 1 }] } })
    expect((await send()).status).toBe(202)
    redis.signal('SIGSTOP')
    const started = Date.now()
    const results = []
    while (Date.now() - started < 5000) results.push(...(await Promise.all([send(), send(), send()])))
    redis.signal('SIGCONT')
    expect(results.length).toBeGreaterThan(3)
    expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(2500)
    expect(results.every((r) => r.status === 202 || r.status === 503)).toBe(true)
    expect(results.some((r) => r.status === 503)).toBe(true)
    await expect.poll(async () => (await send()).status, { timeout: 10_000, interval: 200 }).toBe(202)
    expect(api.child.exitCode).toBeNull()
  }, 60_000)
})

