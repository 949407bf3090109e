import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DetectionConfig } from '../../../src/db/schema/index.js'
import { scoreServiceBatch, type SampleInput, type ScoredBatch } from '../../../src/modules/detection/detector.js'
import { defineScripts } from '../../../src/redis/scripts.js'

let redis: Redis
beforeAll(() => {
  redis = new Redis(process.env.REDIS_URL!)
  defineScripts(redis)
})
afterAll(() => redis.quit())

const config = (overrides: Partial<DetectionConfig> = {}): DetectionConfig => ({
  zThreshold: 3,
  minSamples: 10,
  quietPeriodSeconds: 600,
  openAfterWarnings: 3,
  warningWindowSeconds: 300,
  metrics: {},
  ...overrides
})
const T0 = Date.now() - 30 * 60_000

/** Feeds values one per second from T0 (explicit timestamps: deterministic). */
function series(detection: DetectionConfig, serviceId = randomUUID()) {
  let i = 0
  return {
    serviceId,
    async feed(values: number[], metric = 'latency_ms') {
      const out = []
      for (const value of values) {
        const sample: SampleInput = { metric, value, time: T0 + i++ * 1000, suppressedUpTo: null }
        out.push(single(await scoreServiceBatch(redis, serviceId, detection, [sample])))
      }
      return out
    },
    baseline: (metric = 'latency_ms') => redis.hgetall(`baseline:{${serviceId}}:${metric}`)
  }
}
/** What happened to the one sample of a batch. */
function single(batch: ScoredBatch) {
  const anomaly = batch.anomalies[0]
  const state = batch.learning ? 'learning' : batch.stale ? 'stale' : 'scored'
  return { state, severity: anomaly?.severity ?? null, zScore: anomaly?.zScore ?? null, expected: anomaly?.expected ?? null, suppressed: anomaly?.suppressed ?? false }
}

// Noise with mean 100, population stddev ~2.
const noise = (n: number) => Array.from({ length: n }, (_, i) => 100 + [2, -2, 1, -1, 3, -3, 0, 2, -2, 0][i % 10]!)

describe('detector (Lua scoring script, real Redis)', () => {
  it('does not score before minSamples, then scores', async () => {
    const s = series(config())
    const warmup = await s.feed(noise(10))
    expect(warmup.every((r) => r.state === 'learning' && r.zScore === null)).toBe(true)
    const [next] = await s.feed([101])
    expect(next).toMatchObject({ state: 'scored', severity: null })
    const [spike] = await s.feed([150])
    expect(spike).toMatchObject({ state: 'scored', severity: 'critical' })
  })

  it('detects a spike with the right z and severity', async () => {
    const s = series(config())
    await s.feed(noise(40))
    const before = await s.baseline()
    const mean = Number(before.mean)
    const sd = Math.sqrt(Number(before.var))
    const [warning] = await s.feed([mean + 4 * sd])
    expect(warning!.severity).toBe('warning')
    expect(warning!.zScore!).toBeCloseTo(4, 5)
    expect(warning!.expected!).toBeCloseTo(mean, 6)
    const after = await s.baseline()
    const [critical] = await s.feed([Number(after.mean) + 10 * Math.sqrt(Number(after.var))])
    expect(critical!.severity).toBe('critical')
    expect(critical!.zScore!).toBeCloseTo(10, 5)
  })

  it('counts only the configured direction', async () => {
    const up = series(config({ metrics: { latency_ms: { direction: 'up' } } }))
    await up.feed(noise(30))
    expect((await up.feed([60]))[0]!.severity).toBeNull()
    expect((await up.feed([140]))[0]!.severity).toBe('critical')

    const down = series(config({ metrics: { latency_ms: { direction: 'down' } } }))
    await down.feed(noise(30))
    expect((await down.feed([140]))[0]!.severity).toBeNull()
    const [drop] = await down.feed([60])
    expect(drop!.severity).toBe('critical')
    expect(drop!.zScore!).toBeLessThan(0)
  })

  it('a flat series does not divide by zero, and a real change on it is detected', async () => {
    const s = series(config())
    const flat = await s.feed(Array(20).fill(50))
    expect(flat.at(-1)).toMatchObject({ state: 'scored', severity: null })
    const [change] = await s.feed([60])
    expect(Number.isFinite(change!.zScore!)).toBe(true)
    expect(change!.severity).toBe('critical')

    const zero = series(config())
    await zero.feed(Array(20).fill(0))
    expect((await zero.feed([1]))[0]!.severity).toBe('critical')
  })

  it('one spike barely moves the mean; a sustained shift stops alerting within a bounded number of samples', async () => {
    const s = series(config())
    await s.feed(noise(50))
    const before = Number((await s.baseline()).mean)
    await s.feed([10_000])
    const after = Number((await s.baseline()).mean)
    expect(Math.abs(after - before)).toBeLessThan(1.5)

    const shifted = await s.feed(Array(40).fill(130))
    const alerting = shifted.filter((r) => r.severity !== null).length
    expect(alerting).toBeGreaterThan(0)
    expect(alerting).toBeLessThanOrEqual(15)
    expect(shifted.slice(-10).every((r) => r.severity === null)).toBe(true)
  })

  it('older samples are accepted but do not move the baseline', async () => {
    const s = series(config())
    await s.feed(noise(20))
    const before = await s.baseline()
    const stale = await scoreServiceBatch(redis, s.serviceId, config(), [
      { metric: 'latency_ms', value: 5000, time: T0 - 60_000, suppressedUpTo: null }
    ])
    expect(single(stale)).toMatchObject({ state: 'stale', severity: null })
    expect(await s.baseline()).toEqual(before)
  })

  it('marks anomalies suppressed up to the given severity and keeps them in the window', async () => {
    const s = series(config())
    await s.feed(noise(30))
    const batch = await scoreServiceBatch(redis, s.serviceId, config(), [
      { metric: 'latency_ms', value: 111, time: T0 + 31_000, suppressedUpTo: 'warning' },
      { metric: 'latency_ms', value: 200, time: T0 + 32_000, suppressedUpTo: 'warning' }
    ])
    expect(batch.anomalies.map((r) => [r.index, r.severity, r.suppressed])).toEqual([
      [0, 'warning', true],
      [1, 'critical', false]
    ])
    const window = (await redis.zrange(`recent_anomalies:{${s.serviceId}}`, 0, "-1")) as string[]
    expect(window.map((m) => m.slice(0, 2))).toEqual(['s|', 'u|'])
    expect(await redis.pttl(`recent_anomalies:{${s.serviceId}}`)).toBeGreaterThan(0)
  })

  it('a timestamp ahead of the clock counts as arriving now, so it cannot hold back the samples after it', async () => {
    const serviceId = randomUUID()
    const now = Date.now()
    const at = (value: number, time: number, clock = now) =>
      scoreServiceBatch(redis, serviceId, config(), [{ metric: 'latency_ms', value, time, suppressedUpTo: null }], clock).then(single)
    const values = noise(20)
    for (const [i, value] of values.entries()) await at(value, now - 60_000 + i * 1000)
    // One agent's clock runs 4 minutes fast.
    expect(await at(100, now + 4 * 60_000)).toMatchObject({ state: 'scored' })
    // A correctly timed spike a second later is still scored.
    expect(await at(1000, now + 1000, now + 1000)).toMatchObject({ state: 'scored', severity: 'critical' })
  })

  it('keeps at most 10,000 anomalies per service in the window (bounded work in a storm)', async () => {
    const s = series(config())
    await s.feed(noise(20))
    const window = `recent_anomalies:{${s.serviceId}}`
    const now = Date.now()
    const members = Array.from({ length: 10_050 }, (_, i) => [now - 60_000 + i, `u|storm-${i}`]).flat()
    await redis.zadd(window, ...(members as (string | number)[]))
    expect(await redis.zcard(window)).toBe(10_050)
    const [spike] = await s.feed([1000])
    expect(spike!.severity).toBe('critical')
    expect(await redis.zcard(window)).toBe(10_000)
  })

  it('samples without a timestamp use the Redis clock, so concurrent callers never look stale', async () => {
    const serviceId = randomUUID()
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        scoreServiceBatch(redis, serviceId, config(), [{ metric: 'rps', value: 10 + (i % 3), suppressedUpTo: null }])
      )
    )
    expect(Number(await redis.hget(`baseline:{${serviceId}}:rps`, 'n'))).toBe(50)
  })
})
