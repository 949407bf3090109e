import { sql } from 'drizzle-orm'
import snappy from 'snappyjs'
import { describe, expect, it } from 'vitest'
import { globMatches } from '../../src/modules/suppression/matcher.js'
import { PLAN_LIMITS } from '../../src/modules/subscription/plans.js'
import { MODEL_BYTES } from '../../src/modules/detection/detector.js'
import { seriesIdOf } from '../../src/modules/detection/series.js'
import { encodeWriteRequest } from '../../src/modules/integrations/remote-write.js'
import { keys } from '../../src/redis/keys.js'
import { apiKey, call, clockStoppedInAMinute, expectProblem, signup, useApp } from '../helpers.js'

/*
 * Regressions of the holes an attacker's review found (issue 13), against a real app. Each of these failed
 * on the code before its fix.
 */
const clock = clockStoppedInAMinute()
const ctx = useApp({}, { clock })

describe('suppression globs (ReDoS)', () => {
  it('match without backtracking, correctly', () => {
    const cases: [string, string, boolean][] = [
      ['*', 'anything', true],
      ['api', 'api', true],
      ['api', 'apis', false],
      ['api-*', 'api-eu', true],
      ['*-eu', 'api-eu', true],
      ['*-eu', 'api-us', false],
      ['a*b*c', 'aXbYc', true],
      ['a*b*c', 'acb', false],
      ['a*a', 'a', false],
      ['a**b', 'ab', true],
      ['*b*b*', 'bb', true],
      ['*b*b*', 'b', false],
      ['latency.*.p99', 'latency.eu.p99', true]
    ]
    for (const [pattern, value, expected] of cases) expect(globMatches(pattern, value), `${pattern} ~ ${value}`).toBe(expected)
  })

  it('a rule of twenty stars against a long near-miss metric does not hold the process', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    const rule = await call(ctx.app, org.token, {
      method: 'POST',
      url: '/v1/suppression-rules',
      payload: { metric: `${'a*'.repeat(20)}c`, startsAt: clock.now().toISOString(), endsAt: new Date(clock.now().getTime() + 3_600_000).toISOString(), reason: 'abuse' }
    })
    expect(rule.statusCode, rule.body).toBe(201)
    const started = process.hrtime.bigint()
    const res = await call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: [{ service: 'api', metric: `${'a'.repeat(100)}ca`, value: 1 }] } })
    expect(res.statusCode, res.body).toBe(202)
    // The backtracking matcher never returned; linear matching takes microseconds (bound kept generous).
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(2000)
  })

  it('rules not yet ended are bounded per plan (402), and ending one makes room', async () => {
    const org = await signup(ctx.app)
    const rule = () =>
      call(ctx.app, org.token, {
        method: 'POST',
        url: '/v1/suppression-rules',
        payload: { metric: 'm*', startsAt: clock.now().toISOString(), endsAt: new Date(clock.now().getTime() + 3_600_000).toISOString(), reason: 'many' }
      })
    const limit = PLAN_LIMITS.free.suppressionRules
    const ids: string[] = []
    for (let i = 0; i < limit; i++) ids.push((await rule()).json().id)
    const refused = await rule()
    expectProblem(refused, 402, 'plan_limit')
    expect(refused.json().detail).toContain(`${limit} suppression rules`)
    const ended = await call(ctx.app, org.token, { method: 'DELETE', url: `/v1/suppression-rules/${ids[0]}` })
    expect(ended.statusCode, ended.body).toBeLessThan(300)
    expect((await rule()).statusCode).toBe(201)
  })
})

describe('Idempotency-Key and refusals', () => {
  it('a request refused by the ingest quota (429) does not keep its key: the retry after Retry-After runs', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    const batch = Array.from({ length: 1000 }, (_, i) => ({ service: 'quota', metric: `m${i % 10}`, value: i % 7 }))
    for (let sent = 0; sent < PLAN_LIMITS.free.ingestPerMinute; sent += batch.length) {
      expect((await call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: batch } })).statusCode).toBe(202)
    }
    await new Promise((resolve) => setTimeout(resolve, 300)) // the quota reaches Redis every 100 ms
    const send = () =>
      call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: [{ service: 'quota', metric: 'm0', value: 1 }] }, headers: { 'idempotency-key': 'retry-me' } })
    const refused = await send()
    expectProblem(refused, 429, 'rate_limited')
    clock.advance(60_000) // Retry-After passes: a new minute
    const retried = await send()
    expect(retried.statusCode, retried.body).toBe(202)
    expect(retried.headers['idempotent-replayed']).toBeUndefined()
    expect(retried.json().accepted).toBe(1)
    // Executed answers are kept: the same key again is a replay now.
    const again = await send()
    expect(again.headers['idempotent-replayed']).toBe('true')
  })
})

describe('times beyond what a Date holds', () => {
  it('?since=1e17 and a rule starting at 1e17 are 400s, not 500s', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    await call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: [{ service: 'web', metric: 'm', value: 1 }] } })
    const [service] = (await call(ctx.app, key, { method: 'GET', url: '/v1/services' })).json().items
    expectProblem(await call(ctx.app, key, { method: 'GET', url: `/v1/services/${service.id}/anomalies?since=1e17` }), 400, 'validation_failed')
    expectProblem(
      await call(ctx.app, org.token, { method: 'POST', url: '/v1/suppression-rules', payload: { metric: 'm', startsAt: 1e17, endsAt: 1e17 + 1, reason: 'far' } }),
      400,
      'validation_failed'
    )
  })
})

describe('validation errors are not an amplifier', () => {
  it('a batch of a thousand empty samples gets one small error', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    const res = await call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: Array.from({ length: 1000 }, () => ({})) } })
    expectProblem(res, 400, 'validation_failed')
    expect(res.body.length).toBeLessThan(2000)
  })

  it('an unauthenticated login with ninety thousand unknown properties gets one small error', async () => {
    const body = Object.fromEntries(Array.from({ length: 90_000 }, (_, i) => [`p${i}`, i]))
    const res = await ctx.app.inject({ method: 'POST', url: '/v1/auth/login', payload: body })
    expect(res.statusCode).toBe(400)
    expect(res.body.length).toBeLessThan(2000)
  })
})

describe('numeric poisoning', () => {
  it('values the model cannot hold are refused per sample; nothing stored turns NaN; the series still alerts', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    const post = (samples: object[]) => call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples } })
    const start = clock.now().getTime() - 10 * 86_400_000
    const at = (i: number) => new Date(start + i * 60_000).toISOString()
    const huge = await post([1e200, -1e39, 3.5e38, 1e31].map((value, i) => ({ service: 'poison', metric: 'm', value, timestamp: at(i) })))
    expect(huge.statusCode, huge.body).toBe(202)
    expect(huge.json().accepted).toBe(0)
    expect(huge.json().rejected.map((r: { code: string }) => r.code)).toEqual(Array(4).fill('value_out_of_range'))
    // The largest values allowed, on another series: its model stays finite.
    expect((await post([{ service: 'poison', metric: 'edge', value: 1e30, timestamp: at(5) }])).json().accepted).toBe(1)
    expect((await post([{ service: 'poison', metric: 'edge', value: -1e30, timestamp: at(6) }])).json().accepted).toBe(1)
    for (let i = 7; i < 1200; i += 100) {
      const samples = Array.from({ length: 100 }, (_, j) => ({ service: 'poison', metric: 'm', value: 100 + ((i + j) % 5), timestamp: at(i + j) }))
      expect((await post(samples)).statusCode).toBe(202)
    }
    const [service] = (await call(ctx.app, key, { method: 'GET', url: '/v1/services' })).json().items
    const baselines = await call(ctx.app, key, { method: 'GET', url: `/v1/services/${service.id}/baselines` })
    expect(baselines.statusCode, baselines.body).toBe(200)
    expect(baselines.json().items).toHaveLength(2)
    for (const baseline of baselines.json().items) {
      for (const value of Object.values(baseline).filter((v) => typeof v === 'number')) expect(Number.isFinite(value)).toBe(true)
    }
    // A counter's rate over a millisecond of the largest values stays representable.
    const counter = await post([0, 4e29, 8e29, 1e30].map((value, i) => ({ service: 'poison', metric: 'c_total', value, timestamp: new Date(start + i).toISOString() })))
    expect(counter.json(), counter.body).toMatchObject({ accepted: 4, rejected: [] })
    const spike = await post([{ service: 'poison', metric: 'm', value: 10_000, timestamp: at(1300) }])
    expect(spike.json().anomalies).toHaveLength(1)
  })

  it('a stored model that is not finite (written before these bounds) starts afresh and never answers 500', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    const post = (value: number) => call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: [{ service: 'old', metric: 'm', value }] } })
    expect((await post(1)).statusCode).toBe(202)
    const [service] = (await call(ctx.app, key, { method: 'GET', url: '/v1/services' })).json().items
    const poisoned = Buffer.alloc(MODEL_BYTES)
    for (let offset = 0; offset < MODEL_BYTES - 8; offset += 8) poisoned.writeDoubleLE(Number.NaN, offset)
    poisoned.writeDoubleLE(7, 0) // the model version
    poisoned.writeDoubleLE(5000, 8) // n
    poisoned.writeDoubleLE(0, 29 * 8) // k: a gauge
    await ctx.app.redis.set(keys.model(service.id, seriesIdOf('m', {})), poisoned)
    const listed = await call(ctx.app, key, { method: 'GET', url: `/v1/services/${service.id}/baselines` })
    expect(listed.statusCode, listed.body).toBe(200)
    const relearned = await post(2)
    expect(relearned.json()).toMatchObject({ accepted: 1, learning: 1 })
    const [baseline] = (await call(ctx.app, key, { method: 'GET', url: `/v1/services/${service.id}/baselines` })).json().items
    expect(baseline).toMatchObject({ samples: 1, mean: 2 })
  })
})

describe('remote_write is bounded before work', () => {
  const write = (key: string, payload: Buffer) =>
    call(ctx.app, key, { method: 'POST', url: '/v1/integrations/prometheus/write', payload, headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy' } })

  it('one series of 300,000 samples on the free plan is a 402 at once, and charges nothing', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    const start = clock.now().getTime() - 3_600_000
    const samples = Array.from({ length: 300_000 }, (_, i) => ({ value: i % 7, timestamp: start + i }))
    const refused = await write(key, encodeWriteRequest([{ labels: { __name__: 'm', job: 'huge' }, samples }]))
    expectProblem(refused, 402, 'plan_limit')
    expect(refused.json().detail).toContain(`more than ${PLAN_LIMITS.free.maxSamplesPerWrite} samples`)
    expect((await call(ctx.app, key, { method: 'GET', url: '/v1/services' })).json().items).toEqual([])
    // Nothing was charged: a whole minute's allowance is still there.
    const batch = Array.from({ length: 1000 }, (_, i) => ({ service: 'after', metric: `m${i % 10}`, value: 1 }))
    for (let sent = 0; sent < PLAN_LIMITS.free.ingestPerMinute; sent += batch.length) {
      expect((await call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: batch } })).statusCode).toBe(202)
    }
  })

  it('a small body of millions of empty series stops decoding at the plan bound', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    // 16,000,000 empty TimeSeries (field 1, length 0): 32 MB raw, about 1.5 MB compressed.
    const refused = await write(key, snappy.compress(Buffer.alloc(32_000_000, Buffer.from([0x0a, 0x00]))))
    expectProblem(refused, 402, 'plan_limit')
    expect(refused.json().detail).toContain(`more than ${PLAN_LIMITS.free.maxSeriesPerWrite} series`)
  })

  it('a batch that does not fit the rest of the minute is refused whole before scoring (429): nothing learned', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    const batch = (service: string) => Array.from({ length: 1000 }, (_, i) => ({ service, metric: `m${i % 10}`, value: i % 5 }))
    for (let sent = 0; sent < PLAN_LIMITS.free.ingestPerMinute - 500; sent += 1000) {
      expect((await call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: batch('fill') } })).statusCode).toBe(202)
    }
    await new Promise((resolve) => setTimeout(resolve, 300)) // the counts reach Redis every 100 ms
    const over = await call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: batch('late') } })
    expectProblem(over, 429, 'rate_limited')
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0)
    const services = (await call(ctx.app, key, { method: 'GET', url: '/v1/services' })).json().items.map((s: { name: string }) => s.name)
    expect(services).toEqual(['fill'])
  })
})

describe('batches of unknown service names', () => {
  it('register within the plan in one transaction, and past the limit take no lock at all', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    // Write transactions get an id from one counter: the ids taken while a batch runs bound how many it ran.
    const xid = async () => Number((await ctx.app.db.execute(sql`select txid_current() as id`)).rows[0]!.id)
    const batch = (prefix: string) => Array.from({ length: 1000 }, (_, i) => ({ service: `${prefix}-${i}`, metric: 'm', value: 1 }))

    const before = await xid()
    const first = await call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: batch('a') } })
    const during = (await xid()) - before
    expect(first.statusCode, first.body).toBe(202)
    expect(first.json().accepted).toBe(PLAN_LIMITS.free.maxServices)
    expect(first.json().rejected).toHaveLength(1000 - PLAN_LIMITS.free.maxServices!)
    expect(first.json().rejected[0]).toMatchObject({ code: 'plan_limit' })
    expect(during).toBeLessThan(100) // one per name before: over a thousand

    const again = await xid()
    const second = await call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: batch('b') } })
    expect(second.json().rejected).toHaveLength(1000)
    expect((await xid()) - again).toBeLessThan(20)
    const services = (await call(ctx.app, key, { method: 'GET', url: '/v1/services' })).json().items
    expect(services).toHaveLength(PLAN_LIMITS.free.maxServices!)
    const audit = await call(ctx.app, org.token, { method: 'GET', url: '/v1/audit?resourceType=service&limit=100' })
    expect(audit.json().items.filter((e: { action: string }) => e.action === 'service.created')).toHaveLength(PLAN_LIMITS.free.maxServices!)
  })
})
