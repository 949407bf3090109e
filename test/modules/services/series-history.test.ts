import { describe, expect, it } from 'vitest'
import { seriesIdOf } from '../../../src/modules/detection/series.js'
import { call, createService, expectProblem, signup, steady, useApp, warmSamples } from '../../helpers.js'

const ctx = useApp()
const MINUTE = 60_000

describe("a series' recent values (GET /v1/services/:id/series/:series/history)", () => {
  it('keeps one point per minute: last, lowest and highest value, and the band once the baseline scores', async () => {
    const org = await signup(ctx.app)
    const service = await createService(ctx.app, org)
    // 40 samples a minute apart, the last one second into the previous minute.
    const lastMinute = Math.floor(Date.now() / MINUTE) * MINUTE - MINUTE
    const warm = warmSamples(service.name, 'latency_ms', 40, { endAt: lastMinute + 1000 })
    const send = (samples: object[]) => call(ctx.app, org.token, { method: 'POST', url: '/v1/metrics', payload: { samples } })
    expect((await send(warm)).statusCode).toBe(202)
    // Two more samples in that same minute, in two more calls: the minute's point carries on across calls.
    expect((await send([{ service: service.name, metric: 'latency_ms', value: 103, timestamp: lastMinute + 20_000 }])).statusCode).toBe(202)
    expect((await send([{ service: service.name, metric: 'latency_ms', value: 98.5, timestamp: lastMinute + 30_000 }])).statusCode).toBe(202)

    const series = seriesIdOf('latency_ms', {})
    const res = await call(ctx.app, org.token, { method: 'GET', url: `/v1/services/${service.id}/series/${series}/history` })
    expect(res.statusCode, res.body).toBe(200)
    const body = res.json()
    expect(body).toMatchObject({ metric: 'latency_ms', series, labels: {}, kind: 'gauge' })
    const points = body.points as { at: string; value: number; min: number; max: number; expected: number | null; lower: number | null; upper: number | null }[]
    expect(points).toHaveLength(40)
    expect(points.map((p) => Date.parse(p.at))).toEqual(warm.map((s) => Math.floor(s.timestamp / MINUTE) * MINUTE))
    // While learning (30 samples over 30 minutes by default) there is no band; then there is one around ~100.
    expect(points[0]).toMatchObject({ value: steady(0), lower: null, upper: null })
    expect(points[10]!.lower).toBeNull()
    const scored = points.slice(32)
    for (const point of scored) {
      expect(point.lower).toBeLessThan(point.expected!)
      expect(point.upper).toBeGreaterThan(point.expected!)
      expect(point.expected).toBeGreaterThan(95)
      expect(point.expected).toBeLessThan(105)
    }
    const last = points.at(-1)!
    expect(last).toMatchObject({ value: 98.5, min: Math.min(steady(39), 98.5), max: 103 })
    expect(last.at).toBe(new Date(lastMinute).toISOString())
  })

  it('shows only the side of the band the metric alerts on', async () => {
    const org = await signup(ctx.app)
    const service = await createService(ctx.app, org, undefined, { metrics: { latency_ms: { direction: 'up' } } })
    const samples = warmSamples(service.name, 'latency_ms', 40)
    expect((await call(ctx.app, org.token, { method: 'POST', url: '/v1/metrics', payload: { samples } })).statusCode).toBe(202)
    const res = await call(ctx.app, org.token, { method: 'GET', url: `/v1/services/${service.id}/series/${seriesIdOf('latency_ms', {})}/history` })
    const last = res.json().points.at(-1)
    expect(last.lower).toBeNull()
    expect(last.upper).toBeGreaterThan(last.expected)
  })

  it("404 for another organization's service, an unknown series or a malformed id", async () => {
    const org = await signup(ctx.app)
    const service = await createService(ctx.app, org)
    await call(ctx.app, org.token, { method: 'POST', url: '/v1/metrics', payload: { samples: [{ service: service.name, metric: 'm', value: 1 }] } })
    const url = (id: string, series: string) => `/v1/services/${id}/series/${series}/history`
    expect((await call(ctx.app, org.token, { method: 'GET', url: url(service.id, seriesIdOf('m', {})) })).statusCode).toBe(200)
    const stranger = await signup(ctx.app)
    expectProblem(await call(ctx.app, stranger.token, { method: 'GET', url: url(service.id, seriesIdOf('m', {})) }), 404, 'not_found')
    expectProblem(await call(ctx.app, org.token, { method: 'GET', url: url(service.id, seriesIdOf('other', {})) }), 404, 'not_found')
    expectProblem(await call(ctx.app, org.token, { method: 'GET', url: url(service.id, 'not-a-series') }), 400, 'validation_failed')
  })

  it('a backtest keeps no history', async () => {
    const org = await signup(ctx.app)
    const service = await createService(ctx.app, org)
    const samples = warmSamples(service.name, 'latency_ms', 40).map(({ metric, value, timestamp }) => ({ metric, value, timestamp }))
    const res = await call(ctx.app, org.token, { method: 'POST', url: `/v1/services/${service.id}/backtest`, payload: { samples } })
    expect(res.statusCode, res.body).toBe(200)
    const [, found] = await ctx.app.redis.scan('0', 'MATCH', `history:*${service.id}*`, 'COUNT', 10_000)
    expect(found).toEqual([])
    expectProblem(await call(ctx.app, org.token, { method: 'GET', url: `/v1/services/${service.id}/series/${seriesIdOf('latency_ms', {})}/history` }), 404, 'not_found')
  })
})
