import { beforeAll, describe, expect, it } from 'vitest'
import { PLAN_LIMITS } from '../../../src/modules/subscription/plans.js'
import { apiKey, calmSamples, call, createService, expectProblem, signup, clockStoppedInAMinute, useApp, warmSamples, type Org } from '../../helpers.js'

const ctx = useApp()


async function ingest(key: string, samples: object[]) {
  return call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples } })
}

describe('POST /v1/metrics', () => {
  let org: Org
  let key: string
  beforeAll(async () => {
    org = await signup(ctx.app)
    key = (await apiKey(ctx.app, org, 'agent')).key
  })

  it('rejects bad samples one by one with a code and accepts the rest', async () => {
    const future = Date.now() + 10 * 60_000
    const res = await call(ctx.app, key, {
      method: 'POST',
      url: '/v1/metrics',
      headers: { 'content-type': 'application/json' },
      payload: `{"samples":[
        {"service":"web","metric":"rps","value":1},
        {"service":"web","metric":"rps","value":1e999},
        {"service":"Bad Name","metric":"rps","value":1},
        {"service":"web","metric":"bad metric!","value":1},
        {"service":"web","metric":"rps","value":1,"timestamp":${future}},
        {"service":"web","metric":"rps","value":1,"timestamp":"2026-02-30T99:00:00Z"},
        {"service":"web","metric":"rps","value":2,"timestamp":"${new Date(Date.now() + 60_000).toISOString()}"}
      ]}`
    })
    expect(res.statusCode, res.body).toBe(202)
    const body = res.json()
    expect(body.accepted).toBe(2)
    expect(body.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
      [1, 'non_finite_value'],
      [2, 'invalid_service_name'],
      [3, 'invalid_metric_name'],
      [4, 'timestamp_in_future'],
      [5, 'invalid_timestamp']
    ])
    expect(body.learning).toBe(2)
    // The unknown service name was registered.
    const services = await call(ctx.app, org.token, { method: 'GET', url: '/v1/services' })
    expect(services.json().items.map((s: { name: string }) => s.name)).toContain('web')
  })

  it('refuses malformed batches as a whole: 0 or 1001 samples, wrong types, unknown fields', async () => {
    const sample = { service: 'web', metric: 'rps', value: 1 }
    expectProblem(await ingest(key, []), 400, 'validation_failed')
    expectProblem(await ingest(key, Array(1001).fill(sample)), 400, 'validation_failed')
    expectProblem(await ingest(key, [{ ...sample, value: '1' }]), 400, 'validation_failed')
    expectProblem(await ingest(key, [{ ...sample, unit: 'ms' }]), 400, 'validation_failed')
    expect((await ingest(key, Array(1000).fill(sample))).statusCode).toBe(202)
  })

  it('auto-registers unknown services within the plan; beyond it those samples get plan_limit and the rest are accepted', async () => {
    const small = await signup(ctx.app)
    const agent = (await apiKey(ctx.app, small)).key
    const samples = Array.from({ length: 7 }, (_, i) => ({ service: `svc-${i}`, metric: 'rps', value: 1 }))
    const res = await ingest(agent, samples)
    const body = res.json()
    expect(body.accepted).toBe(5)
    expect(body.rejected).toHaveLength(2)
    expect(body.rejected.every((r: { code: string }) => r.code === 'plan_limit')).toBe(true)
  })

  it('20 parallel requests for one series: the baseline counts every sample', async () => {
    const service = await createService(ctx.app, org, 'parallel')
    await Promise.all(Array.from({ length: 20 }, (_, i) => ingest(key, [{ service: 'parallel', metric: 'cpu', value: 50 + (i % 3) }])))
    const baselines = await call(ctx.app, key, { method: 'GET', url: `/v1/services/${service.id}/baselines` })
    // Samples without a timestamp arrive "now", never stale, so concurrent ones all count; 20 of them within
    // milliseconds are still a baseline warming up (minSamples 30, minSpanSeconds 1800).
    expect(baselines.json().items).toEqual([
      expect.objectContaining({ metric: 'cpu', samples: 20, state: 'learning', mean: expect.any(Number), stddev: expect.any(Number) })
    ])
  })

  it('reports learning until minSamples, then scores and detects a spike (paging at once with confirmSeconds 0)', async () => {
    const service = await createService(ctx.app, org, 'spiky', { confirmSeconds: 0 })
    // 40 samples a minute apart, in two batches: the baseline scores from the 31st (minSamples 30, and by
    // then more than minSpanSeconds 1800 of sample time).
    const series = warmSamples('spiky', 'latency', 40)
    const warm = await ingest(key, series.slice(0, 9))
    expect(warm.json().learning).toBe(9)
    const learning = await call(ctx.app, key, { method: 'GET', url: `/v1/services/${service.id}/baselines` })
    expect(learning.json().items[0]).toMatchObject({ state: 'learning', samples: 9 })

    const rest = await ingest(key, series.slice(9))
    expect(rest.json()).toMatchObject({ learning: 21, anomalies: [] })
    const ready = await call(ctx.app, key, { method: 'GET', url: `/v1/services/${service.id}/baselines` })
    expect(ready.json().items[0]).toMatchObject({ state: 'ready', samples: 40 })
    const spike = await ingest(key, [{ service: 'spiky', metric: 'latency', value: 180 }])
    const body = spike.json()
    expect(body.anomalies).toEqual([
      expect.objectContaining({ kind: 'start', service: 'spiky', metric: 'latency', value: 180, severity: 'critical', suppressed: false, confirmed: true })
    ])
    expect(body.anomalies[0].zScore).toBeGreaterThan(8)
    // The level follows the 100 ± 2 cycle a little: within a point of 100.
    expect(Math.abs(body.anomalies[0].expected - 100)).toBeLessThan(1)
    expect(body.incidents).toEqual([expect.objectContaining({ service: 'spiky', status: 'open', severity: 'critical', created: true })])

    const anomalies = await call(ctx.app, key, { method: 'GET', url: `/v1/services/${service.id}/anomalies` })
    expect(anomalies.json().items).toEqual([expect.objectContaining({ metric: 'latency', value: 180, severity: 'critical', suppressed: false })])
    const incident = await call(ctx.app, key, { method: 'GET', url: `/v1/incidents/${body.incidents[0].id}` })
    expect(incident.json()).toMatchObject({ source: 'detector', metrics: ['latency'], anomalyCount: 1, status: 'open' })
    expect(incident.json().timeline.map((e: { action: string }) => e.action)).toEqual(['incident.opened'])
  })

  it('three warnings within the window open an incident; fewer do not', async () => {
    const service = await createService(ctx.app, org, 'warny', { confirmSeconds: 0 })
    await ingest(key, warmSamples('warny', 'q', 40))
    // 7 spreads above the current baseline: z ≈ 5.3 after the warm-up shrink sqrt(40 / 70), a warning
    // (4 ≤ z < 8). Each warning is a new episode (the calm samples end the one before), so each one counts.
    const warn = async () => {
      const [baseline] = (await call(ctx.app, key, { method: 'GET', url: `/v1/services/${service.id}/baselines` })).json().items
      const res = (await ingest(key, [{ service: 'warny', metric: 'q', value: baseline.mean + 7 * baseline.stddev }])).json()
      expect((await ingest(key, calmSamples('warny', 'q'))).json().anomalies).toEqual([])
      return res
    }
    const first = await warn()
    expect(first.anomalies).toEqual([expect.objectContaining({ kind: 'start', severity: 'warning' })])
    expect(first.incidents).toEqual([])
    expect((await warn()).incidents).toEqual([])
    const third = await warn()
    expect(third.anomalies).toEqual([expect.objectContaining({ kind: 'start', severity: 'warning' })])
    expect(third.incidents).toEqual([expect.objectContaining({ created: true, severity: 'warning' })])
  })
})

describe('ingest quota', () => {
  // A stopped clock: the minute the quota counts in cannot end mid-test.
  const quota = useApp({}, { clock: clockStoppedInAMinute() })

  it("answers 429 with Retry-After once the organization's samples per minute are used up", async () => {
    const small = await signup(quota.app)
    const agent = (await apiKey(quota.app, small)).key
    const other = await signup(quota.app)
    const key = (await apiKey(quota.app, other, 'agent')).key
    const ingest = (apiKey: string, samples: object[]) => call(quota.app, apiKey, { method: 'POST', url: '/v1/metrics', payload: { samples } })
    const limit = PLAN_LIMITS.free.ingestPerMinute
    const batch = Array.from({ length: 1000 }, (_, i) => ({ service: 'quota', metric: `m${i % 10}`, value: i % 7 }))
    // Counts reach Redis every 100 ms; pause once past the allowance so the flush has happened.
    for (let sent = 0; sent < limit; sent += batch.length) {
      expect((await ingest(agent, batch)).statusCode).toBe(202)
    }
    await new Promise((resolve) => setTimeout(resolve, 300))
    const refused = await ingest(agent, batch)
    expectProblem(refused, 429, 'rate_limited')
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0)
    // Other organizations are not affected.
    expect((await ingest(key, [{ service: 'web', metric: 'rps', value: 1 }])).statusCode).toBe(202)
  })
})
