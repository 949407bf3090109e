import { and, eq, ne } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../../src/app.js'
import { incidents } from '../../../src/db/schema/index.js'
import { startWorker } from '../../../src/worker.js'
import { apiKey, calmSamples, call, signup, testConfig, useApp, warmSamples, type Org } from '../../helpers.js'
import { startRedis } from '../../servers.js'

const ctx = useApp({ SWEEP_INTERVAL_MS: '200' })

async function makeService(org: Org, name: string, detection: object = {}) {
  const res = await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: { name, detection: { minSamples: 5, confirmSeconds: 0, ...detection } } })
  expect(res.statusCode, res.body).toBe(201)
  return res.json() as { id: string; name: string }
}

function ingestVia(app: typeof ctx.app, key: string, samples: object[]) {
  return call(app, key, { method: 'POST', url: '/v1/metrics', payload: { samples } })
}

const openIncidents = (serviceId: string) =>
  ctx.app.db.select().from(incidents).where(and(eq(incidents.serviceId, serviceId), ne(incidents.status, 'resolved')))

describe('correlation', () => {
  let org: Org
  let key: string
  beforeAll(async () => {
    org = await signup(ctx.app)
    key = (await apiKey(ctx.app, org)).key
  })
  const ingest = (samples: object[]) => ingestVia(ctx.app, key, samples)
  // 40 timestamped samples over 39 minutes per metric: enough samples and sample time to score.
  const warm = (service: string, metrics: string[], n = 40) => ingest(metrics.flatMap((metric) => warmSamples(service, metric, n)))
  // Ends the series' anomaly episode, so its next anomaly starts a new one (listed, and correlated).
  const calm = (service: string, metric: string) => ingest(calmSamples(service, metric))

  it('remembers "nothing open" for a minute only (a stale "none" would hide an open incident)', async () => {
    const service = await makeService(org, 'quiet-warning')
    await warm('quiet-warning', ['lat'])
    // 110 on 100 ± 2: z ≈ 5.5, a warning (4 ≤ z < 8).
    const res = (await ingest([{ service: 'quiet-warning', metric: 'lat', value: 110 }])).json()
    expect(res.anomalies).toMatchObject([{ severity: 'warning' }])
    expect(res.incidents).toEqual([])
    const cacheKey = `incidents:{${service.id}}`
    expect(await ctx.app.redis.get(cacheKey)).toBe('none')
    const ttl = await ctx.app.redis.ttl(cacheKey)
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(60)
  })

  it('50 parallel batches of anomalies on one service open exactly one incident', async () => {
    const service = await makeService(org, 'crowded')
    const metrics = Array.from({ length: 10 }, (_, i) => `m${i}`)
    await warm('crowded', metrics)
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => ingest([{ service: 'crowded', metric: metrics[i % 10]!, value: 10_000 + i }]))
    )
    expect(results.every((r) => r.statusCode === 202)).toBe(true)
    const open = await openIncidents(service.id)
    expect(open).toHaveLength(1)
    // The 5 spikes of each metric are one episode: only its start is listed and counted, one per metric.
    expect(open[0]!.anomalyCount).toBe(10)
    expect(results.flatMap((r) => r.json().anomalies)).toHaveLength(10)
    expect([...open[0]!.metrics].sort()).toEqual([...metrics].sort())
    expect(results.flatMap((r) => r.json().incidents.map((i: { id: string }) => i.id)).every((id: string) => id === open[0]!.id)).toBe(true)
    expect(results.filter((r) => r.json().incidents[0]?.created)).toHaveLength(1)
  })

  it('auto-resolves after the quiet period with no further samples; a quick relapse re-opens the same incident as flapping', async () => {
    const stopWorker = await startWorker(ctx.config)
    try {
      const service = await makeService(org, 'quiet', { quietPeriodSeconds: 1 })
      await warm('quiet', ['lat'])
      const opened = (await ingest([{ service: 'quiet', metric: 'lat', value: 500 }])).json().incidents[0]
      expect(opened).toMatchObject({ created: true, status: 'open' })

      const get = async () => (await call(ctx.app, key, { method: 'GET', url: `/v1/incidents/${opened.id}` })).json()
      await expect.poll(async () => (await get()).status, { timeout: 5000, interval: 100 }).toBe('resolved')
      const resolved = await get()
      expect(resolved).toMatchObject({ resolvedBy: 'auto', flapping: false })
      expect(resolved.timeline.at(-1)).toMatchObject({ action: 'incident.resolved', actor: { type: 'system', id: 'auto-resolve' } })

      // Within 3× the quiet period: the same incident comes back, marked flapping. (Calm samples first end the
      // first episode: a further sample of an episode already reported does not re-open anything.)
      await calm('quiet', 'lat')
      const relapse = (await ingest([{ service: 'quiet', metric: 'lat', value: 900 }])).json().incidents[0]
      expect(relapse).toMatchObject({ id: opened.id, status: 'open', created: false })
      expect(await get()).toMatchObject({ status: 'open', flapping: true, resolvedAt: null })
      expect(await openIncidents(service.id)).toHaveLength(1)

      // A full quiet period later it resolves again and the flapping mark clears.
      await expect.poll(async () => (await get()).status, { timeout: 5000, interval: 100 }).toBe('resolved')
      expect((await get()).flapping).toBe(false)

      // It flaps once more; an operator resolving it by hand clears the mark too.
      await calm('quiet', 'lat')
      expect((await ingest([{ service: 'quiet', metric: 'lat', value: 900 }])).json().incidents[0]).toMatchObject({ id: opened.id })
      expect((await get()).flapping).toBe(true)
      const manual = await call(ctx.app, org.token, { method: 'POST', url: `/v1/incidents/${opened.id}/resolve`, payload: { note: 'fixed' } })
      expect(manual.statusCode, manual.body).toBe(200)
      expect(await get()).toMatchObject({ status: 'resolved', flapping: false })
    } finally {
      await stopWorker()
    }
  })

  it('acknowledged incidents keep collecting anomalies; a resolved one lets the next anomalies open a new one', async () => {
    const service = await makeService(org, 'ack', { quietPeriodSeconds: 1 })
    await warm('ack', ['lat'])
    const first = (await ingest([{ service: 'ack', metric: 'lat', value: 500 }])).json().incidents[0]
    await call(ctx.app, org.token, { method: 'POST', url: `/v1/incidents/${first.id}/acknowledge` })
    await calm('ack', 'lat') // the next spike is a new episode
    const again = (await ingest([{ service: 'ack', metric: 'err', value: 1 }, { service: 'ack', metric: 'lat', value: 900 }])).json()
    expect(again.incidents[0]).toMatchObject({ id: first.id, status: 'acknowledged', created: false })
    await call(ctx.app, org.token, { method: 'POST', url: `/v1/incidents/${first.id}/resolve` })
    // Resolved by a person 3 quiet periods ago or more: not flapping, a new incident.
    await calm('ack', 'lat')
    await new Promise((resolve) => setTimeout(resolve, 3100))
    const next = (await ingest([{ service: 'ack', metric: 'lat', value: 5000 }])).json().incidents[0]
    expect(next).toMatchObject({ created: true })
    expect(next.id).not.toBe(first.id)
    expect(await openIncidents(service.id)).toHaveLength(1)
  })
})

describe('Redis flushed mid-stream (private redis-server)', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>
  let app: Awaited<ReturnType<typeof buildApp>>
  beforeAll(async () => {
    redis = await startRedis()
    app = await buildApp(testConfig({ REDIS_URL: redis.url }), { logger: false })
  })
  afterAll(async () => {
    await app?.close()
    await redis?.stop()
  })

  it('baselines relearn, the open incident is found through Postgres, and no duplicate is created', async () => {
    const org = await signup(app)
    const key = (await apiKey(app, org)).key
    const send = (samples: object[]) => ingestVia(app, key, samples)
    const created = await call(app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'phoenix', detection: { minSamples: 5, confirmSeconds: 0 } } })
    const serviceId = created.json().id
    // Timestamped samples 5 minutes apart: enough sample time (minSpanSeconds 1800) to score.
    await send(warmSamples('phoenix', 'lat', 10, { stepMs: 300_000 }))
    const opened = (await send([{ service: 'phoenix', metric: 'lat', value: 999 }])).json().incidents[0]
    expect(opened.created).toBe(true)

    await redis.flushAll()

    const baselines = async () => (await call(app, key, { method: 'GET', url: `/v1/services/${serviceId}/baselines` })).json().items
    expect(await baselines()).toEqual([])
    const relearn = warmSamples('phoenix', 'lat', 8, { stepMs: 300_000 })
    const relearning = await send(relearn.slice(0, 3))
    expect(relearning.json().learning).toBe(3)
    expect((await baselines())[0]).toMatchObject({ state: 'learning', samples: 3 })

    await send(relearn.slice(3))
    const after = (await send([{ service: 'phoenix', metric: 'lat', value: 999 }])).json()
    expect(after.anomalies).toHaveLength(1)
    expect(after.incidents).toEqual([expect.objectContaining({ id: opened.id, created: false })])
    const open = await app.db.select().from(incidents).where(and(eq(incidents.serviceId, serviceId), ne(incidents.status, 'resolved')))
    expect(open.map((i) => i.id)).toEqual([opened.id])
  })
})
