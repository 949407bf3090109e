import { describe, expect, it } from 'vitest'
import { kindOf, seriesIdOf } from '../../../src/modules/detection/series.js'
import { encodeWriteRequest } from '../../../src/modules/integrations/remote-write.js'
import { PLAN_LIMITS } from '../../../src/modules/subscription/plans.js'
import { apiKey, call, expectProblem, signup, useApp, type Org } from '../../helpers.js'

/*
 * Series identity (metric name + label set), metric kinds (gauges, counters scored on their rate, time-like
 * gauges, histogram buckets) and the plan's active-series limit, through the public API.
 */
const ctx = useApp()
const MINUTE = 60_000

interface JsonSample {
  service: string
  metric: string
  value: number
  labels?: Record<string, string>
  type?: 'gauge' | 'counter'
  timestamp?: number
}
const post = (token: string, samples: JsonSample[]) => call(ctx.app, token, { method: 'POST', url: '/v1/metrics', payload: { samples } })
const write = (token: string, body: Buffer) =>
  call(ctx.app, token, { method: 'POST', url: '/v1/integrations/prometheus/write', payload: body, headers: { 'content-type': 'application/x-protobuf' } })
async function serviceId(token: string, name: string): Promise<string> {
  return (await call(ctx.app, token, { method: 'GET', url: '/v1/services' })).json().items.find((s: { name: string }) => s.name === name).id
}
interface Baseline {
  metric: string
  series: string
  labels: Record<string, string>
  kind: string
  mean: number
  samples: number
  state: string
}
/** Every baseline of the service, following nextCursor page by page. */
async function baselines(token: string, service: string, query = '', pages: number[] = []): Promise<Baseline[]> {
  const id = await serviceId(token, service)
  const out: Baseline[] = []
  let cursor: string | null = null
  do {
    const separator = query ? '&' : '?'
    const res = await call(ctx.app, token, { method: 'GET', url: `/v1/services/${id}/baselines${query}${cursor ? `${separator}cursor=${cursor}` : ''}` })
    expect(res.statusCode, res.body).toBe(200)
    out.push(...res.json().items)
    pages.push(res.json().items.length)
    cursor = res.json().nextCursor
  } while (cursor !== null)
  return out
}
/** `n` samples a minute apart ending a minute ago, value(i). */
const history = (n: number, sample: (i: number) => Omit<JsonSample, 'timestamp'>, end = Date.now() - MINUTE) =>
  Array.from({ length: n }, (_, i) => ({ ...sample(i), timestamp: end - (n - 1 - i) * MINUTE }))
const wobble = (i: number) => [0.2, -0.2, 0.1, -0.1, 0][i % 5]!

async function agentOf(): Promise<{ org: Org; key: string }> {
  const org = await signup(ctx.app)
  return { org, key: (await apiKey(ctx.app, org)).key }
}

describe('series identity', () => {
  it('one metric with two label sets is two baselines; label order does not matter; anomalies and incidents name the series', async () => {
    const { key } = await agentOf()
    const end = Date.now() - 2 * MINUTE
    const samples = [
      ...history(40, (i) => ({ service: 'web', metric: 'cpu_usage', labels: { cpu: '0', mode: 'user' }, value: 10 + wobble(i) }), end),
      ...history(40, (i) => ({ service: 'web', metric: 'cpu_usage', labels: { mode: 'user', cpu: '1' }, value: 80 + wobble(i) }), end)
    ]
    expect((await post(key, samples)).json()).toMatchObject({ accepted: 80, rejected: [] })
    // The same labels in another order: the same series.
    expect((await post(key, [{ service: 'web', metric: 'cpu_usage', labels: { mode: 'user', cpu: '0' }, value: 10, timestamp: end + 30_000 }])).json().anomalies).toEqual([])

    const found = await baselines(key, 'web')
    expect(found).toEqual([
      expect.objectContaining({ metric: 'cpu_usage', labels: { cpu: '0', mode: 'user' }, kind: 'gauge', samples: 41, series: seriesIdOf('cpu_usage', { cpu: '0', mode: 'user' }) }),
      expect.objectContaining({ metric: 'cpu_usage', labels: { cpu: '1', mode: 'user' }, kind: 'gauge', samples: 40 })
    ])
    expect(found[0]!.mean).toBeCloseTo(10, 0)
    expect(found[1]!.mean).toBeCloseTo(80, 0)
    expect(found[0]!.series).not.toBe(found[1]!.series)

    // cpu 0 at cpu 1's level is anomalous for cpu 0 (folded into one mean, it would not be); twice, so the
    // episode of this young series is confirmed and opens an incident.
    const high = { service: 'web', metric: 'cpu_usage', labels: { cpu: '0', mode: 'user' }, value: 80 }
    const spike = (await post(key, [{ ...high, timestamp: Date.now() - 70_000 }, { ...high, timestamp: Date.now() - 5000 }])).json()
    expect(spike.anomalies).toEqual([
      expect.objectContaining({ metric: 'cpu_usage', labels: { cpu: '0', mode: 'user' }, series: found[0]!.series, severity: 'critical', confirmed: false })
    ])
    const id = await serviceId(key, 'web')
    const listed = (await call(ctx.app, key, { method: 'GET', url: `/v1/services/${id}/anomalies` })).json().items
    expect(listed).toEqual([expect.objectContaining({ labels: { cpu: '0', mode: 'user' }, series: found[0]!.series })])
    const incident = (await call(ctx.app, key, { method: 'GET', url: `/v1/incidents/${spike.incidents[0].id}` })).json()
    expect(incident.series).toEqual([{ id: found[0]!.series, metric: 'cpu_usage', labels: { cpu: '0', mode: 'user' } }])

    // One metric's series; another metric has none.
    expect((await baselines(key, 'web', '?metric=cpu_usage&limit=1')).map((b) => b.series).sort()).toEqual(found.map((b) => b.series).sort())
    expect(await baselines(key, 'web', '?metric=other')).toEqual([])
  })

  it('ids are unambiguous: a label value holding separators is not another label set', () => {
    expect(seriesIdOf('m', { a: '1\u0000b\u00002' })).not.toBe(seriesIdOf('m', { a: '1', b: '2' }))
    expect(seriesIdOf('m', { a: '1', b: '2' })).toBe(seriesIdOf('m', { b: '2', a: '1' }))
    expect(seriesIdOf('m', {})).not.toBe(seriesIdOf('m', { a: '' }))
  })

  it('refuses labels past the bounds with a clear 400, learning nothing', async () => {
    const { key } = await agentOf()
    const tooMany = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`l${i}`, 'x']))
    expectProblem(await post(key, [{ service: 'web', metric: 'm', labels: tooMany, value: 1 }]), 400, 'validation_failed')
    expectProblem(await post(key, [{ service: 'web', metric: 'm', labels: { 'bad name': 'x' }, value: 1 }]), 400, 'validation_failed')
    expectProblem(await post(key, [{ service: 'web', metric: 'm', labels: { a: 'x'.repeat(1025) }, value: 1 }]), 400, 'validation_failed')
    expect((await call(ctx.app, key, { method: 'GET', url: '/v1/services' })).json().items).toEqual([])
  })

  it('isolates tenants: the same series in two organizations is two baselines, and one cannot read the other', async () => {
    const a = await agentOf()
    const b = await agentOf()
    const sample = (value: number) => ({ service: 'web', metric: 'cpu_usage', labels: { cpu: '0' }, value })
    await post(a.key, history(40, () => sample(10)))
    await post(b.key, history(5, () => sample(99)))
    expect(await baselines(a.key, 'web')).toEqual([expect.objectContaining({ samples: 40, mean: 10 })])
    expect(await baselines(b.key, 'web')).toEqual([expect.objectContaining({ samples: 5, mean: 99 })])
    const aService = await serviceId(a.key, 'web')
    expectProblem(await call(ctx.app, b.key, { method: 'GET', url: `/v1/services/${aService}/baselines` }), 404, 'not_found')
    expectProblem(await call(ctx.app, b.key, { method: 'GET', url: `/v1/services/${aService}/anomalies` }), 404, 'not_found')
  })
})

describe('confirmation', () => {
  it("a young series' lone extreme sample is listed unconfirmed and opens nothing; a run of anomalous samples lasting confirmSeconds (60) opens the incident", async () => {
    const { key } = await agentOf()
    const now = Date.now()
    await post(key, history(40, (i) => ({ service: 'db', metric: 'latency_ms', value: 100 + 10 * wobble(i) }), now - 3 * MINUTE))
    const blip = (await post(key, [{ service: 'db', metric: 'latency_ms', value: 500, timestamp: now - 120_000 }])).json()
    expect(blip.anomalies).toEqual([expect.objectContaining({ kind: 'start', severity: 'critical', confirmed: false })])
    expect(blip.incidents).toEqual([])
    const id = await serviceId(key, 'db')
    expect((await call(ctx.app, key, { method: 'GET', url: `/v1/services/${id}/anomalies` })).json().items).toEqual([expect.objectContaining({ confirmed: false })])

    // 20 s later, still anomalous: not yet sustained.
    expect((await post(key, [{ service: 'db', metric: 'latency_ms', value: 450, timestamp: now - 100_000 }])).json()).toMatchObject({ anomalies: [], incidents: [] })
    const again = (await post(key, [{ service: 'db', metric: 'latency_ms', value: 450, timestamp: now - 30_000 }])).json()
    // The confirmation is not listed again (the episode's start was); it pages with the episode's severity.
    expect(again.anomalies).toEqual([])
    expect(again.incidents).toEqual([expect.objectContaining({ created: true, severity: 'critical' })])
  })
})

describe('metric kinds', () => {
  it('a counter is scored on its per-second rate; a reset is not an anomaly; a burst is', async () => {
    const { key } = await agentOf()
    // 10 requests per second, counted every minute; the process restarts at sample 25 (the counter starts over).
    let total = 0
    const counter = history(40, (i) => {
      total = i === 25 ? 600 : total + 600 + 6 * wobble(i)
      return { service: 'api', metric: 'http_requests_total', labels: { code: '200' }, value: total }
    })
    const fed = (await post(key, counter)).json()
    expect(fed).toMatchObject({ accepted: 40, anomalies: [] })
    const [baseline] = await baselines(key, 'api')
    expect(baseline).toMatchObject({ kind: 'counter', samples: 39, state: 'ready' })
    expect(baseline!.mean).toBeCloseTo(10, 0)

    // A minute of 100 requests per second.
    const burst = (await post(key, [{ service: 'api', metric: 'http_requests_total', labels: { code: '200' }, value: total + 6000, timestamp: Date.now() - 1000 }])).json()
    expect(burst.anomalies).toEqual([expect.objectContaining({ metric: 'http_requests_total', severity: 'critical' })])
    expect(burst.anomalies[0].value).toBeGreaterThan(90)
    expect(burst.anomalies[0].expected).toBeCloseTo(10, 0)
  })

  it('values past what the model holds are refused per sample; a counter of the largest ones over a millisecond learns a finite rate', async () => {
    const { key } = await agentOf()
    const t = Date.now() - 10 * MINUTE
    const res = await post(key, [
      { service: 'api', metric: 'odd_total', value: 0, timestamp: t },
      { service: 'api', metric: 'odd_total', value: 1e306, timestamp: t + 1 },
      { service: 'api', metric: 'odd_total', value: 1e30, timestamp: t + 2 },
      { service: 'api', metric: 'odd_total', value: 1e30, timestamp: t + 60_000 }
    ])
    expect(res.statusCode, res.body).toBe(202)
    expect(res.json()).toMatchObject({ accepted: 3, stale: 0, rejected: [{ index: 1, code: 'value_out_of_range' }] })
    const [baseline] = await baselines(key, 'api')
    expect(baseline).toMatchObject({ kind: 'counter', samples: 2 })
    expect(Number.isFinite(baseline!.mean)).toBe(true)
  })

  it('a JSON sample may declare its type: a counter whose name does not say so', async () => {
    const { key } = await agentOf()
    let total = 0
    await post(key, history(40, (i) => ({ service: 'api', metric: 'bytes_out', type: 'counter', value: (total += 6000 + 60 * wobble(i)) })))
    const [baseline] = await baselines(key, 'api')
    expect(baseline).toMatchObject({ kind: 'counter', samples: 39 })
    expect(baseline!.mean).toBeCloseTo(100, -1)
  })

  it('a counter known from remote_write metadata (sent apart from samples, as Prometheus does); the series restarts as a counter', async () => {
    const { key } = await agentOf()
    const now = Date.now()
    const series = (from: number, n: number) => ({
      labels: { __name__: 'node_disk_read_bytes', job: 'node', device: 'sda' },
      samples: Array.from({ length: n }, (_, i) => ({ value: (from + i) * 1000, timestamp: now - (60 - from - i) * 10_000 }))
    })
    expect((await write(key, encodeWriteRequest([series(0, 5)]))).statusCode).toBe(200)
    expect((await baselines(key, 'node'))[0]).toMatchObject({ kind: 'gauge', samples: 5 })

    const metadata = await write(key, encodeWriteRequest([], [{ family: 'node_disk_read_bytes', type: 'counter' }, { family: 'node_uname_info', type: 'info' }]))
    expect(metadata.json()).toMatchObject({ series: 0, accepted: 0 })
    expect((await write(key, encodeWriteRequest([series(5, 11)]))).statusCode).toBe(200)
    // 100 bytes per second, learned from its rate (the first value after the change starts the rate).
    const [baseline] = await baselines(key, 'node')
    expect(baseline).toMatchObject({ kind: 'counter', samples: 10 })
    expect(baseline!.mean).toBeCloseTo(100, 5)
  })

  it('time-like gauges are learned but never alert', async () => {
    const { key } = await agentOf()
    const start = Date.now() / 1000
    const samples = history(40, (i) => ({ service: 'node', metric: 'node_time_seconds', value: start + i * 60 }))
    samples.push(...history(40, () => ({ service: 'node', metric: 'process_start_time_seconds', value: start - 86_400 })))
    expect((await post(key, samples)).json().anomalies).toEqual([])
    // The clock jumps by a day, the process restarts: still nothing.
    const jumped = await post(key, [
      { service: 'node', metric: 'node_time_seconds', value: start + 86_400 },
      { service: 'node', metric: 'process_start_time_seconds', value: start }
    ])
    expect(jumped.json()).toMatchObject({ accepted: 2, anomalies: [] })
    expect((await baselines(key, 'node')).map((b) => [b.metric, b.kind])).toEqual([
      ['node_time_seconds', 'time'],
      ['process_start_time_seconds', 'time']
    ])
  })

  it('histogram buckets are taken but not scored one by one; their _sum and _count are counters', async () => {
    const { key } = await agentOf()
    const now = Date.now()
    const body = encodeWriteRequest([
      ...['0.1', '1', '+Inf'].map((le) => ({ labels: { __name__: 'rpc_seconds_bucket', job: 'api', le }, samples: [{ value: 5, timestamp: now }] })),
      { labels: { __name__: 'rpc_seconds_count', job: 'api' }, samples: [{ value: 5, timestamp: now }] }
    ])
    expect((await write(key, body)).json()).toMatchObject({ series: 4, accepted: 4, rejected: 0 })
    // (A counter's first value only starts its rate: no baseline is listed yet.)
    expect(await baselines(key, 'api')).toEqual([])
    expect((await post(key, [{ service: 'api', metric: 'rpc_seconds_bucket', labels: { le: '1' }, value: 7 }])).json()).toMatchObject({ accepted: 1, ignored: 1 })
  })

  it('reads kinds from metadata first, then names', () => {
    const none = () => undefined
    const meta = (types: Record<string, string>) => (family: string) => types[family] as never
    expect(kindOf('http_requests_total', undefined, none, 1)).toBe('counter')
    expect(kindOf('rpc_seconds_count', undefined, none, 1)).toBe('counter')
    expect(kindOf('rpc_seconds_bucket', undefined, none, 1)).toBe('bucket')
    expect(kindOf('node_load1', undefined, none, 1)).toBe('gauge')
    expect(kindOf('node_boot_time_seconds', undefined, none, 1_796_000_000)).toBe('time')
    expect(kindOf('prometheus_config_last_reload_success_timestamp_seconds', undefined, none, 1_796_000_000)).toBe('time')
    expect(kindOf('prometheus_tsdb_head_max_time', undefined, none, 1_796_000_000_000)).toBe('time')
    // A latency named like a time is a gauge: its value is no Unix time.
    expect(kindOf('api_response_time_ms', undefined, none, 120)).toBe('gauge')
    expect(kindOf('request_time_seconds', 'gauge', none, 0.25)).toBe('gauge')
    expect(kindOf('node_load1', 'counter', none, 1)).toBe('counter')
    expect(kindOf('weird_total', undefined, meta({ weird_total: 'gauge' }), 1)).toBe('gauge')
    expect(kindOf('rpc_seconds_sum', undefined, meta({ rpc_seconds: 'summary' }), 1)).toBe('counter')
    expect(kindOf('go_gc_duration_seconds', undefined, meta({ go_gc_duration_seconds: 'summary' }), 1)).toBe('gauge')
    expect(kindOf('x_bucket', undefined, meta({ x: 'gaugehistogram' }), 1)).toBe('bucket')
    expect(kindOf('events', undefined, meta({ events: 'counter' }), 1)).toBe('counter')
  })
})

describe('the active-series limit', () => {
  it('refuses samples of new series past the plan (JSON: per sample; remote_write: 402 after the rest is taken), learning nothing of them', async () => {
    const { org, key } = await agentOf()
    const limit = PLAN_LIMITS.free.activeSeries
    for (let from = 0; from < limit; from += 1000) {
      const samples = Array.from({ length: 1000 }, (_, i) => ({ service: 'wide', metric: 'm', labels: { i: String(from + i) }, value: 1 }))
      expect((await post(key, samples)).json()).toMatchObject({ accepted: 1000, rejected: [] })
    }
    const mixed = await post(key, [
      { service: 'wide', metric: 'm', labels: { i: '0' }, value: 1 },
      { service: 'wide', metric: 'm', labels: { i: 'new' }, value: 1 }
    ])
    expect(mixed.statusCode).toBe(202)
    expect(mixed.json()).toMatchObject({ accepted: 1, rejected: [{ index: 1, code: 'series_limit' }] })
    expect(mixed.json().rejected[0].detail).toContain(`${limit} active series`)

    const remote = await write(
      key,
      encodeWriteRequest([
        { labels: { __name__: 'm', job: 'wide', i: '1' }, samples: [{ value: 1, timestamp: Date.now() }] },
        { labels: { __name__: 'm', job: 'wide', i: 'other' }, samples: [{ value: 1, timestamp: Date.now() }] }
      ])
    )
    expectProblem(remote, 402, 'plan_limit')
    expect(remote.json().detail).toMatch(/1 samples of new series refused: the free plan allows 5000 active series .* the other 1 samples were taken/)

    // Every admitted series, none past the limit, page by page (each page about its limit).
    const pages: number[] = []
    const all = await baselines(key, 'wide', '?limit=1000', pages)
    expect(all).toHaveLength(limit)
    expect(new Set(all.map((b) => b.series)).size).toBe(limit)
    expect(all.some((b) => b.labels.i === 'new' || b.labels.i === 'other')).toBe(false)
    expect(pages.length).toBeGreaterThan(1)
    expect(Math.max(...pages)).toBeLessThan(2000)
    expect(all.find((b) => b.labels.i === '0')).toMatchObject({ samples: 2 })
    expect((await call(ctx.app, key, { method: 'GET', url: '/v1/integrations/prometheus/settings' })).json()).toMatchObject({ activeSeries: limit, activeSeriesLimit: limit })
    const metrics = (await ctx.app.inject({ method: 'GET', url: '/metrics' })).body
    expect(metrics).toContain(`autopilot_active_series{organization_id="${org.organizationId}"} ${limit}`)
    expect(metrics).toMatch(/autopilot_series_limit_refused_samples_total \d+/)

    // Another organization is not held by this one's series.
    const other = await agentOf()
    expect((await post(other.key, [{ service: 'wide', metric: 'm', labels: { i: 'new' }, value: 1 }])).json()).toMatchObject({ accepted: 1, rejected: [] })
  }, 60_000)
})
