import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { beforeAll, describe, expect, it } from 'vitest'
import { manualClock } from '../../../src/lib/clock.js'
import { apiKey, call, clockStoppedInAMinute, createService, expectProblem, signup, useApp, type Org } from '../../helpers.js'
import { gaussian } from '../../random.js'

/*
 * POST /v1/services/:id/backtest: history replayed through the live scoring script (on scratch keys) and the
 * incident lifecycle (on a simulated clock). Every series below is built from explicit timestamps and seeded
 * noise, so every outcome is deterministic.
 */

const MINUTE = 60_000
const DAY = 86_400_000
const STEP = 5 * MINUTE
const PER_DAY = DAY / STEP
/** Monday 1 January 2024, 00:00 UTC. */
const T0 = Date.UTC(2024, 0, 1)
const SIGMA = 2


interface Sample {
  value: number
  timestamp: number
}

/** `days` of 100 + 50·sin(2πt/day) + N(0, σ=2), every 5 minutes from T0. */
function dailySine(days = 14, seed = 42): Sample[] {
  const noise = gaussian(seed)
  return Array.from({ length: days * PER_DAY }, (_, i) => {
    const timestamp = T0 + i * STEP
    return { timestamp, value: 100 + 50 * Math.sin((2 * Math.PI * (timestamp % DAY)) / DAY) + SIGMA * noise() }
  })
}

/** Sample index of day `day` (0-based) at hh:mm UTC. */
const indexAt = (day: number, hh: number, mm = 0) => day * PER_DAY + (hh * 60 + mm) / 5

/** The injections, days apart and all after the season is learned (a full day seen). */
const SPIKE_AT = indexAt(4, 3) // one sample +30σ, day 4 03:00
const DROPOUT_AT = indexAt(7, 12) // 12 samples at 0, day 7 12:00
const DROPOUT_LENGTH = 12
const SHIFT_AT = indexAt(10, 18) // +20σ from day 10 18:00 to the end

function withSpike(series: Sample[]): Sample[] {
  return series.map((s, i) => (i === SPIKE_AT ? { ...s, value: s.value + 30 * SIGMA } : s))
}
function injected(series = dailySine()): Sample[] {
  return withSpike(series).map((s, i) => {
    if (i >= DROPOUT_AT && i < DROPOUT_AT + DROPOUT_LENGTH) return { ...s, value: 0 }
    if (i >= SHIFT_AT) return { ...s, value: s.value + 20 * SIGMA }
    return s
  })
}

const toCsv = (series: Sample[]) =>
  ['timestamp,value', ...series.map((s) => `${new Date(s.timestamp).toISOString()},${s.value}`)].join('\n')

interface Reply {
  rows: number
  metrics: number
  learning: number
  stale: number
  from: string | null
  to: string | null
  counts: Record<'episodes' | 'escalations' | 'incidentsOpened' | 'incidentsEscalated' | 'incidentsReopened' | 'incidentsResolved', number>
  episodes: { metric: string; startedAt: string; severity: string; peakZScore: number; lastAt: string | null }[]
  incidents: { openedAt: string; severity: string; reopenedAt: string[]; resolvedAt: string | null }[]
  detection: Record<string, unknown>
}

const ctx = useApp()

/**
 * Backtests are limited per organization (free plan: 2 a minute, enterprise 60): the organizations that run
 * many are on the enterprise plan, and every call goes through an operator API key.
 */
async function backtest(app: FastifyInstance, org: Org, serviceId: string, payload: object, token?: string) {
  const credential = token ?? (await apiKey(app, org, 'operator')).key
  return call(app, credential, { method: 'POST', url: `/v1/services/${serviceId}/backtest`, payload })
}
async function backtestOk(org: Org, serviceId: string, payload: object): Promise<Reply> {
  const res = await backtest(ctx.app, org, serviceId, payload)
  expect(res.statusCode, res.body).toBe(200)
  return res.json()
}

describe('backtest', () => {
  let org: Org
  let serviceId: string
  beforeAll(async () => {
    org = await signup(ctx.app)
    const upgraded = await call(ctx.app, org.token, { method: 'PUT', url: '/v1/subscription', payload: { plan: 'enterprise' } })
    expect(upgraded.statusCode, upgraded.body).toBe(200)
    serviceId = (await createService(ctx.app, org)).id
  })

  describe('detection on a seasonal series', () => {
    it('14 days of a daily sine with σ=2 noise open no incident (and no episode once the season is learned)', async () => {
      const series = dailySine()
      const reply = await backtestOk(org, serviceId, { samples: series })
      expect(reply).toMatchObject({
        rows: 14 * PER_DAY,
        metrics: 1,
        stale: 0,
        from: new Date(T0).toISOString(),
        to: new Date(series.at(-1)!.timestamp).toISOString()
      })
      expect(reply.learning).toBeGreaterThanOrEqual(30)
      expect(reply.counts.incidentsOpened).toBe(0)
      expect(reply.incidents).toEqual([])
      expect(reply.episodes.filter((e) => Date.parse(e.startedAt) >= T0 + 2 * DAY)).toEqual([])
    })

    it('a spike, a dropout and a level shift, days apart, each open exactly one incident within 3 samples', async () => {
      const reply = await backtestOk(org, serviceId, { samples: injected() })
      const starts = [SPIKE_AT, DROPOUT_AT, SHIFT_AT].map((i) => T0 + i * STEP)
      const opened = reply.incidents.map((i) => Date.parse(i.openedAt))
      expect(reply.counts.incidentsOpened, JSON.stringify(reply.incidents)).toBe(3)
      for (const [k, start] of starts.entries()) {
        const delay = opened[k]! - start
        expect(delay, `injection ${k}: opened ${reply.incidents[k]?.openedAt}`).toBeGreaterThanOrEqual(0)
        expect(delay, `injection ${k}: opened ${reply.incidents[k]?.openedAt}`).toBeLessThanOrEqual(3 * STEP)
      }
    })

    // Episodes that go on keep their incident open, as live ingestion does: resolved a quiet period after the last anomaly.
    it('an incident stays open while its episode goes on (resolved a quiet period after its last anomaly)', async () => {
      const series = dailySine().map((s, i) => (i >= DROPOUT_AT && i < DROPOUT_AT + DROPOUT_LENGTH ? { ...s, value: 0 } : s))
      const reply = await backtestOk(org, serviceId, { samples: series })
      const dropout = reply.episodes.find((e) => Date.parse(e.startedAt) === T0 + DROPOUT_AT * STEP)!
      expect(dropout.lastAt).not.toBeNull()
      const incident = reply.incidents.find((i) => Date.parse(i.openedAt) === T0 + DROPOUT_AT * STEP)!
      expect(incident.resolvedAt).not.toBeNull()
      expect(Date.parse(incident.resolvedAt!)).toBeGreaterThanOrEqual(Date.parse(dropout.lastAt!) + 600_000)
    })

    it('a detection override is applied and echoed: zThreshold 100 finds nothing in the spike series', async () => {
      const spiky = withSpike(dailySine())
      const plain = await backtestOk(org, serviceId, { samples: spiky })
      expect(plain.counts.episodes).toBeGreaterThanOrEqual(1)
      expect(plain.detection).toMatchObject({ zThreshold: 4 })

      const lax = await backtestOk(org, serviceId, { samples: spiky, detection: { zThreshold: 100 } })
      expect(lax.counts.episodes).toBe(0)
      expect(lax.episodes).toEqual([])
      expect(lax.counts.incidentsOpened).toBe(0)
      expect(lax.detection).toMatchObject({ zThreshold: 100, minSamples: 30, minSpanSeconds: 1800, quietPeriodSeconds: 600 })

      // Tried, not stored.
      const service = await call(ctx.app, org.token, { method: 'GET', url: `/v1/services/${serviceId}` })
      expect(service.json().detection.zThreshold).toBe(4)
    })
  })

  describe('input', () => {
    it('CSV (with a header line) gives the same result as the equivalent JSON samples', async () => {
      const series = injected(dailySine(5, 7)).slice(0, 5 * PER_DAY)
      const fromJson = await backtestOk(org, serviceId, { samples: series })
      const fromCsv = await backtestOk(org, serviceId, { csv: toCsv(series) })
      expect(fromJson.counts.episodes).toBeGreaterThanOrEqual(1)
      expect(fromCsv).toEqual(fromJson)
      // Without a header, with epoch-millisecond timestamps and the metric column, too.
      const named = await backtestOk(org, serviceId, { csv: series.map((s) => `${s.timestamp},${s.value},value`).join('\n') })
      expect(named).toEqual(fromJson)
    })

    it('a bad CSV row is a 400 naming its line, and nothing runs', async () => {
      const csv = ['timestamp,value', '2024-01-01T00:00:00Z,1', '2024-01-01T00:05:00Z,oops', '2024-01-01T00:10:00Z,3'].join('\n')
      const body = expectProblem(await backtest(ctx.app, org, serviceId, { csv }), 400, 'validation_failed')
      expect(body.errors).toEqual([expect.objectContaining({ path: '/body/csv/line 3' })])
      const missing = expectProblem(await backtest(ctx.app, org, serviceId, { csv: '2024-01-01T00:00:00Z,1\n2024-01-01T00:05:00Z' }), 400, 'validation_failed')
      expect(missing.errors).toEqual([expect.objectContaining({ path: '/body/csv/line 2' })])
    })

    it('samples and csv together, or neither, are a 400', async () => {
      const samples = [{ value: 1, timestamp: T0 }]
      expectProblem(await backtest(ctx.app, org, serviceId, { samples, csv: '2024-01-01T00:00:00Z,1' }), 400, 'validation_failed')
      expectProblem(await backtest(ctx.app, org, serviceId, {}), 400, 'validation_failed')
    })

    it('more than 100,000 rows is a 400', async () => {
      const csv = Array.from({ length: 100_001 }, (_, i) => `${i},1`).join('\n')
      const body = expectProblem(await backtest(ctx.app, org, serviceId, { csv }), 400, 'validation_failed')
      expect(body.errors).toEqual([expect.objectContaining({ path: '/body/csv/line 100001', message: expect.stringMatching(/100000/) })])
    })

    it('a body of millions of bad lines is refused after the first 20, without parsing the rest', async () => {
      const body = expectProblem(await backtest(ctx.app, org, serviceId, { csv: 'x\n'.repeat(2_000_000) }), 400, 'validation_failed')
      expect(body.errors).toHaveLength(20)
      expect(body.errors![0]).toMatchObject({ path: '/body/csv/line 1' })
    })

    it('a timestamp beyond what a date can hold is a 400, not a 500', async () => {
      const body = expectProblem(await backtest(ctx.app, org, serviceId, { samples: [{ value: 1, timestamp: 1e17 }] }), 400, 'validation_failed')
      expect(body.errors).toEqual([{ path: '/body/samples/0', message: 'timestamp is not a valid time' }])
    })

    it('a value past what the model holds is a 400 naming its row', async () => {
      const res = await backtest(ctx.app, org, serviceId, { samples: [{ value: 1, timestamp: T0 }, { value: -1e31, timestamp: T0 + STEP }] })
      expectProblem(res, 400, 'validation_failed')
      expect(res.body).toContain('/body/samples/1')
    })

    it('a value far beyond a tiny spread is an episode with a bounded z, not a 500', async () => {
      const samples = [...Array.from({ length: 40 }, (_, i) => ({ value: 0.5, timestamp: T0 + i * STEP })), { value: 1e30, timestamp: T0 + 40 * STEP }]
      const reply = await backtestOk(org, serviceId, { samples })
      expect(reply.episodes).toEqual([expect.objectContaining({ severity: 'critical', peakZScore: 1e12 })])
    })
  })

  describe('isolation', () => {
    it('times near the epoch leave no scratch key behind either (a new model is indexed at once)', async () => {
      await backtestOk(org, serviceId, { samples: Array.from({ length: 5 }, (_, i) => ({ value: i, timestamp: i * 1000 })) })
      const [, left] = await ctx.app.redis.scan('0', 'MATCH', 'backtest:*', 'COUNT', 10_000)
      expect(left).toEqual([])
    })

    it('leaves no live trace: no baseline, anomaly, incident, scratch key or event', async () => {
      const service = await createService(ctx.app, org)
      const eventsKey = `events:${org.organizationId}`
      const eventsBefore = await ctx.app.redis.xlen(eventsKey)

      const reply = await backtestOk(org, service.id, { samples: injected() })
      // The history would have opened incidents: the live state must still show none of it.
      expect(reply.counts.incidentsOpened).toBeGreaterThanOrEqual(1)

      const baselines = await call(ctx.app, org.token, { method: 'GET', url: `/v1/services/${service.id}/baselines` })
      expect(baselines.statusCode, baselines.body).toBe(200)
      expect(baselines.json().items).toEqual([])
      const anomalies = await call(ctx.app, org.token, { method: 'GET', url: `/v1/services/${service.id}/anomalies` })
      expect(anomalies.statusCode, anomalies.body).toBe(200)
      expect(anomalies.json().items).toEqual([])
      const incidents = await call(ctx.app, org.token, { method: 'GET', url: `/v1/incidents?service=${service.id}` })
      expect(incidents.statusCode, incidents.body).toBe(200)
      expect(incidents.json().items).toEqual([])

      const left: string[] = []
      let cursor = '0'
      do {
        const [next, found] = await ctx.app.redis.scan(cursor, 'MATCH', 'backtest:*', 'COUNT', 1000)
        left.push(...found)
        cursor = next
      } while (cursor !== '0')
      expect(left).toEqual([])

      expect(await ctx.app.redis.xlen(eventsKey)).toBe(eventsBefore)
    })
  })

  describe('tenancy and roles', () => {
    const samples = [{ value: 1, timestamp: T0 }]

    it("another organization's service is a 404", async () => {
      const other = await signup(ctx.app, 'Other')
      const theirs = await createService(ctx.app, other)
      expectProblem(await backtest(ctx.app, org, theirs.id, { samples }), 404, 'not_found')
    })

    it('an agent key is a 403', async () => {
      const agent = (await apiKey(ctx.app, org, 'agent')).key
      expectProblem(await backtest(ctx.app, org, serviceId, { samples }, agent), 403, 'forbidden')
    })

    it('a missing service is a 404', async () => {
      expectProblem(await backtest(ctx.app, org, randomUUID(), { samples }), 404, 'not_found')
    })
  })
})

describe('backtest rate limit', () => {
  const clock = clockStoppedInAMinute()
  const limited = useApp({}, { clock })

  it('on the free plan, the third backtest of an organization within a minute is a 429 with Retry-After', async () => {
    const org = await signup(limited.app)
    const service = await createService(limited.app, org)
    const payload = { samples: [{ value: 1, timestamp: T0 }, { value: 2, timestamp: T0 + STEP }] }
    const first = await backtest(limited.app, org, service.id, payload, org.token)
    expect(first.statusCode, first.body).toBe(200)
    const second = await backtest(limited.app, org, service.id, payload, org.token)
    expect(second.statusCode, second.body).toBe(200)
    const third = await backtest(limited.app, org, service.id, payload, org.token)
    expectProblem(third, 429, 'rate_limited')
    expect(Number(third.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(Number(third.headers['retry-after'])).toBeLessThanOrEqual(60)

    // The budget is the organization's: another of its credentials is refused too, another organization runs.
    expectProblem(await backtest(limited.app, org, service.id, payload), 429, 'rate_limited')
    const stranger = await signup(limited.app)
    const theirs = await createService(limited.app, stranger)
    const other = await backtest(limited.app, stranger, theirs.id, payload, stranger.token)
    expect(other.statusCode, other.body).toBe(200)
  })
})

describe('backtest on an app clock behind real time', () => {
  const behind = useApp({}, { clock: manualClock(Date.now() - 60_000) })

  // The 20 s budget is real computing time, whatever the app's clock says.
  it('still runs a one-row backtest', async () => {
    const org = await signup(behind.app)
    const service = await createService(behind.app, org)
    const res = await backtest(behind.app, org, service.id, { samples: [{ value: 1, timestamp: T0 }] }, org.token)
    expect(res.statusCode, res.body).toBe(200)
  })
})
